"""The codebook remedy bench from the command line, on MNIST as its default: every remedy at every
seed, the table with the seeds' spread, dead-code replacement against none, a second call that
measures nothing again, and bad input refused before training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vaecollapse.studies.codebook_bench import REMEDIES

pytestmark = pytest.mark.slow


def test_the_default_bench_tables_every_remedy_with_its_seeds_spread(
    run_cli, mnist_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bench"
    args = ("codebook-remedies", "--out", str(out), "--data-dir", str(mnist_dir.parent))
    done = run_cli(*args)
    assert done.code == 0, done.err
    table = (out / "codebook-remedies.md").read_text()
    for remedy in REMEDIES:
        (row,) = [line for line in table.splitlines() if line.startswith(f"| {remedy} |")]
        assert row.count(" ± ") == 5  # used, dead, perplexity, reconstruction, time
    rows = {row["remedy"]: row for row in json.loads((out / "summary.json").read_text())["rows"]}
    assert all(row["seeds"] == 3 for row in rows.values())
    assert rows["dead-code-replacement"]["used"] > rows["none"]["used"] + 3 * max(
        rows["none"]["used_sd"], rows["dead-code-replacement"]["used_sd"], 1.0
    )
    assert "codebook-collapsing" in rows["none"]["findings"]
    runs = sorted((out / "runs").glob("*.json"))
    assert len(runs) == 3 * len(REMEDIES) and (out / "codebook-remedies.png").stat().st_size
    written = {path: path.stat().st_mtime_ns for path in runs}
    again = run_cli(*args)
    assert again.code == 0 and (out / "codebook-remedies.md").read_text() == table
    assert {path: path.stat().st_mtime_ns for path in runs} == written  # nothing retrained


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--fsq-levels", "8,8,8"), "multiply to it"),
        (("--remedies", "kmeans-init"), "must include none"),
        (("--remedies", "none,magic"), "must include none and be among"),
    ],
)
def test_bad_settings_are_refused_with_one_paragraph(
    run_cli, tmp_path: Path, extra: tuple[str, ...], message: str
) -> None:
    done = run_cli("codebook-remedies", "--out", str(tmp_path / "bench"), *extra)
    assert done.code == 2 and message in " ".join(done.err.split()) and "Traceback" not in done.err


def test_a_users_folder_is_not_written_into(run_cli, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    done = run_cli("codebook-remedies", "--out", str(tmp_path))
    assert done.code == 2 and "never writes over them" in done.err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
