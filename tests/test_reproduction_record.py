"""docs/reproduction.md against the committed records of the full runs (docs/records, written by
`vaecollapse reproduce --collect --out DIR --record docs/records`): every recorded entry's table
is in the document exactly as generated, with its verdict and times, and every generated table
in the document has a record or is named below as older than the records."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from vaecollapse.reproductions.paper_pages import COMMAND, page_name, paper_pages
from vaecollapse.reproductions.registry import (
    REGISTRY,
    by_paper,
    collect_report,
    of_earlier_definition,
    outcome_mode,
)

from .conftest import REPO_ROOT

RECORDS = REPO_ROOT / "docs" / "records"
DOCUMENT = (REPO_ROOT / "docs" / "reproduction.md").read_text(encoding="utf-8")
# Generated tables of full runs whose folders were not kept as records; an entry leaves this set
# when it is run again and recorded.
BEFORE_RECORDS = {"table5", "fig9"}


def recorded() -> list[str]:
    return sorted(p.name for p in RECORDS.iterdir() if (p / "result.json").is_file())


def as_generated(folder: Path) -> str:
    """The entry's table as ``collect_report`` sets it in the document."""
    return (folder / "comparison.md").read_text(encoding="utf-8").replace("# ", "### ", 1)


@pytest.mark.parametrize("name", recorded())
def test_a_recorded_entrys_table_is_in_the_document_as_generated(name: str) -> None:
    folder = RECORDS / name
    table = as_generated(folder)
    assert table.rstrip("\n") in DOCUMENT, (
        f"docs/reproduction.md's {name} table is not its record's"
    )
    outcome = json.loads((folder / "result.json").read_text())
    verdict = "holds" if outcome["claim_holds"] else "does not hold"
    assert outcome["mode"] == "full" and f"— **{verdict}**." in table
    assert list(csv.DictReader((folder / "results.csv").read_text().splitlines()))
    # a status row of the entry, where the document has one, states the record's outcome, and
    # says so when the record is of an earlier definition of the entry
    mode = outcome_mode(REGISTRY[name], outcome)
    for row in re.findall(rf"^\| {re.escape(name)} \|.*$", DOCUMENT, re.M):
        assert row == (
            f"| {name} | {mode} | {verdict} | {outcome['seconds']:.1f} | "
            f"{outcome['train_seconds']:.1f} |"
        )


def test_every_generated_table_has_a_record_or_predates_them() -> None:
    generated = re.findall(r"^### ([\w-]+): ", DOCUMENT, re.M)
    assert len(generated) == len(set(generated))
    assert not BEFORE_RECORDS & set(recorded()), "a recorded entry is still listed as older"
    assert set(generated) == set(recorded()) | BEFORE_RECORDS


def test_collect_regenerates_every_recorded_table(tmp_path: Path) -> None:
    records = shutil.copytree(RECORDS, tmp_path / "records")
    report = collect_report(records)
    for name in recorded():
        assert as_generated(RECORDS / name).rstrip("\n") in report


def test_the_paper_pages_are_as_generated_from_the_records() -> None:
    pages = paper_pages(RECORDS)
    on_disk = {
        p.name: p.read_text(encoding="utf-8") for p in (REPO_ROOT / "docs/papers").glob("*.md")
    }
    assert on_disk == pages, f"regenerate them: {COMMAND}"


@pytest.mark.parametrize("name", recorded())
def test_a_recorded_entry_stands_on_its_papers_page_with_its_verdict(name: str) -> None:
    result = json.loads((RECORDS / name / "result.json").read_text(encoding="utf-8"))
    paper = next(p for p, entries in by_paper().items() if name in {e.name for e in entries})
    rows = [
        line
        for line in paper_pages(RECORDS)[page_name(paper)].splitlines()
        if line.startswith(f"| {name} |")
    ]
    verdict = "**holds**" if result["claim_holds"] else "**does not hold**"
    if of_earlier_definition(REGISTRY[name], result):
        verdict += " (an earlier definition)"
    assert len(rows) == 1 and f"| {verdict} |" in rows[0]
    assert f"(../records/{name}/comparison.md)" in rows[0]


def test_every_paper_has_its_page_in_the_site() -> None:
    nav = (REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for paper in by_paper():
        assert f"papers/{page_name(paper)}" in nav, paper
