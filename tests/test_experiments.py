"""The experiment registry: every entry's quick variant runs, writes its files and holds its
claim; the reproduce command lists, runs and rejects."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from vaecollapse.experiments import REGISTRY, run_entry


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_quick_entry_holds_its_claim(name: str, tmp_path: Path) -> None:
    result = run_entry(name, tmp_path, quick=True)
    assert result.claim_holds, result.comparisons
    directory = tmp_path / name
    table = (directory / "comparison.md").read_text()
    assert "| quantity | paper | ours | agreement |" in table and "KL convention" in table
    rows = list(csv.DictReader((directory / "results.csv").read_text().splitlines()))
    assert rows and all(p.stat().st_size > 0 for p in result.figures)


def test_reproduce_command(run_cli, tmp_path: Path) -> None:
    listed = run_cli("reproduce", "--list")
    assert listed.code == 0 and all(name in listed.out for name in REGISTRY)
    result = run_cli("reproduce", "thm3-synthetic", "--quick", "--out", str(tmp_path))
    assert result.code == 0 and "claim holds" in result.out
    assert (tmp_path / "thm3-synthetic" / "comparison.md").exists()
    unknown = run_cli("reproduce", "fig99", "--out", str(tmp_path))
    assert unknown.code == 2 and "unknown experiment" in unknown.err
    assert run_cli("reproduce").code == 2
