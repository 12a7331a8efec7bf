"""The timings the documentation cites are generated pages (docs/benchmarks), each naming the
command that wrote it, and `benchmarks/record.py` turns a benchmark's output into such a page."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from .conftest import REPO_ROOT

PAGES = sorted((REPO_ROOT / "docs" / "benchmarks").glob("*.md"))
MADE_BY = re.compile(r"`(?:VAECOLLAPSE_DATA=\S+ )?python benchmarks/(\w+)\.py( [^`]*)?`")


def _record_module():
    spec = importlib.util.spec_from_file_location("record", REPO_ROOT / "benchmarks" / "record.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_each_page_names_the_benchmark_that_wrote_it(page: Path) -> None:
    made_by = MADE_BY.search(page.read_text(encoding="utf-8"))
    assert made_by, f"{page.name} does not name the command that wrote it"
    script, arguments = made_by.group(1), made_by.group(2) or ""
    if script == "record":  # the recorded benchmark is the first argument, the page its name
        script = arguments.split()[0]
        assert page.stem == script.replace("_", "-")
    assert (REPO_ROOT / "benchmarks" / f"{script}.py").is_file()


def test_the_guides_cite_every_page_and_no_missing_one() -> None:
    cited = set()
    for guide in (REPO_ROOT / "docs").glob("*.md"):
        cited |= set(re.findall(r"\(benchmarks/([\w-]+)\.md\)", guide.read_text(encoding="utf-8")))
    written = {p.stem for p in PAGES}
    assert cited <= written, f"cited but not written: {cited - written}"
    assert written <= cited, f"pages no guide points to: {written - cited}"


def test_output_becomes_tables_and_text_blocks_in_order() -> None:
    output = "threads 2\nmedian of 3\n| case | s |\n|---|---|\n| a | 1.0 |\ndone\n"
    assert _record_module().as_markdown(output) == (
        "```text\nthreads 2\nmedian of 3\n```\n\n| case | s |\n|---|---|\n| a | 1.0 |\n\n"
        "```text\ndone\n```\n"
    )


def test_the_title_is_the_docstrings_first_sentence(tmp_path: Path) -> None:
    script = tmp_path / "bench.py"
    script.write_text('"""IWAE speed: the vectorised estimate\nagainst a loop.\n\nMore."""\n')
    assert _record_module().title(script) == "IWAE speed"
