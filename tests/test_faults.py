"""Every fault and bad-input case of ``tests/fault_cases.py`` (crafted pickles, concurrent
trainers, kill -9, Ctrl-C, a full disk, read-only and forbidden folders, damaged runs, folders of
the user's own files, settings outside their domains, bad data) behaves as stated, and
``docs/reliability.md`` lists exactly these cases."""

from __future__ import annotations

import pytest

from .fault_cases import CASES, REPO_ROOT, run_case


@pytest.mark.parametrize("chosen", CASES, ids=[c.name for c in CASES])
def test_fault_case(chosen) -> None:
    outcome = run_case(chosen)
    assert outcome.as_expected, f"{chosen.what}: {outcome.failure}\nmessage: {outcome.message}"


def test_reliability_document_lists_every_case() -> None:
    text = (REPO_ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(CASES) >= 40
    assert [row.split(" | ")[2] for row in rows] == [c.what.replace("|", "\\|") for c in CASES]
    assert "| **no**" not in text, "the document records a case that did not behave as expected"
