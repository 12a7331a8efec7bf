"""One documentation page per paper, generated from the records of the full runs
(``docs/records``): each registered entry with what it tests, whether its claim holds (and
whether the record is of an earlier definition of the entry), the tightest check behind that
verdict, and a link to its record.

    python -m vaecollapse.reproductions.paper_pages --write docs/papers

A test keeps the committed pages equal to what this writes from the committed records.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from vaecollapse.core.fileio import write_text_atomic
from vaecollapse.reproductions.registry import Entry, by_paper, of_earlier_definition

COMMAND = "python -m vaecollapse.reproductions.paper_pages --write docs/papers"


def page_name(paper: str) -> str:
    """``Dang et al. (ICLR 2024)`` → ``dang-2024.md``: the first author and the year."""
    author = re.match(r"[A-Za-z]+", paper)
    year = re.search(r"\d{4}", paper)
    if author is None or year is None:
        raise ValueError(f"a paper is named by its first author and year, not {paper!r}")
    return f"{author.group(0).lower()}-{year.group(0)}.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _claim(comparison: str) -> str:
    """The claim an entry's comparison.md states, without its verdict."""
    found = re.search(r"^Claim: (.*?) — \*\*", comparison, re.M)
    return found.group(1) if found else ""


def _row(entry: Entry, result: dict | None, records: Path) -> str:
    if result is None:
        return f"| {entry.name} | {_cell(entry.title)} | no full run recorded | | |"
    claim = _claim((records / entry.name / "comparison.md").read_text(encoding="utf-8"))
    verdict = "**holds**" if result["claim_holds"] else "**does not hold**"
    if of_earlier_definition(entry, result):
        verdict += " (an earlier definition)"
    link = f"[record](../records/{entry.name}/comparison.md)"
    return (
        f"| {entry.name} | {_cell(entry.title)}: {_cell(claim)} | {verdict} "
        f"| {_cell(result['margin'].removeprefix('tightest check — '))} | {link} |"
    )


def _result(entry: Entry, records: Path) -> dict | None:
    path = records / entry.name / "result.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def paper_page(paper: str, entries: list[Entry], records: Path) -> str:
    """The page of ``paper``: a table of its entries, in registration order."""
    results = [_result(entry, records) for entry in entries]
    judged = [r for r in results if r is not None]
    held = sum(r["claim_holds"] for r in judged)
    rows = [_row(entry, result, records) for entry, result in zip(entries, results, strict=True)]
    return "\n".join(
        [
            f"# {paper}",
            "",
            f"Generated from the records of the full runs (`{COMMAND}`): of {len(entries)} "
            f"entries, {len(judged)} have a recorded full run, and the claim holds in {held} "
            "of them. "
            "[The record](../reproduction.md) discusses each entry against the paper; "
            "[how to reproduce](../reproducing.md) says how to run one.",
            "",
            "| entry | what it tests | claim | tightest check | record |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def paper_pages(records: Path) -> dict[str, str]:
    """``{file name: markdown}``, one page per paper of the registry."""
    return {
        page_name(paper): paper_page(paper, entries, records)
        for paper, entries in by_paper().items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", default="docs/records", type=Path)
    parser.add_argument("--write", required=True, type=Path, help="The folder of the pages.")
    args = parser.parse_args()
    args.write.mkdir(parents=True, exist_ok=True)
    for name, text in paper_pages(args.records).items():
        write_text_atomic(args.write / name, text)
        print(args.write / name)


if __name__ == "__main__":
    main()
