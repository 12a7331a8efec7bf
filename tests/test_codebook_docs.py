"""docs/codebooks.md's example runs as written: the VQ autoencoder's codebook collapses to one code
a token position, its dead codes stranded far from the data, and the page's remedy (k-means
initialisation and dead-code replacement) keeps every code in use."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from .conftest import REPO_ROOT

EPOCHS = re.compile(r"^epoch (\d): (\d+) codes used$", flags=re.MULTILINE)
COLLAPSE = re.compile(
    r"^4 of 512 codes used .* 508 dead .*\n.* distinct token sequences .*\n"
    r"per position \(4\): 1 to 1 codes used.*\n"
    r".*the dead codes sit (\d+(\.\d+)?)× as far from the data",
    flags=re.MULTILINE,
)
REMEDY = "VectorQuantize(dim=16, codebook_size=512, decay=0.99, kmeans_init=True, " \
    "threshold_ema_dead_code=2)"  # fmt: skip


def _example() -> str:
    text = (REPO_ROOT / "docs/codebooks.md").read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    return code


def _run(code: str, tmp_path: Path) -> str:
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)], capture_output=True, text=True,
        cwd=tmp_path, env=env, timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_example_shows_a_collapsed_codebook_with_stranded_dead_codes(tmp_path: Path) -> None:
    out = _run(_example(), tmp_path)
    verdict = [line.split("]")[0] + "]" for line in out.splitlines() if line.startswith("[")]
    assert verdict == ["[codebook-collapsing]", "[codes-stranded]"]
    found = COLLAPSE.search(out)
    assert found, "the example no longer prints a codebook collapsed to one code a position"
    assert float(found.group(1)) > 100
    used = [int(count) for _, count in EPOCHS.findall(out)]
    assert len(used) == 5 and used[-1] == 4 and max(used) < 512 // 4  # it falls within epochs
    records = (tmp_path / "codebook.jsonl").read_text().splitlines()
    assert len(records) == 5


def test_the_pages_remedy_keeps_every_code_in_use(tmp_path: Path) -> None:
    code = _example()
    original = "VectorQuantize(dim=16, codebook_size=512, decay=0.99)"
    assert original in code
    out = _run(code.replace(original, REMEDY), tmp_path)
    assert re.search(r"^512 of 512 codes used .* 0 dead", out, flags=re.MULTILINE), out
    assert "[codebook-collapsing]" not in out
