"""The README's "Diagnose your own VAE" examples run as written: a plain PyTorch loop with the
monitor and the verdict, a pythae model, a Lightning module stopped when it collapses, the
remedy pieces in a hand-written loop, and a diffusers autoencoder's latent grid."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO_ROOT


def readme_examples() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Diagnose your own VAE", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_section_has_the_five_examples() -> None:
    examples = readme_examples()
    assert len(examples) == 5
    assert "CollapseMonitor" in examples[0] and "pythae" in examples[1]
    assert "CollapseCallback" in examples[2] and "free_bits" in examples[3]
    assert "AutoencoderKL" in examples[4]


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (
            0,
            r"collapsed at epoch \d+(.|\n)*\n  z: collapsed as a whole(.|\n)*"
            r"cause \[over-regularised\]",
        ),
        (1, r"^\[.*\] -\d+\.\d+"),
        (2, r"^every dimension of z has been collapsed for 2 checks .* - weights of epoch \d+$"),
        (3, r"^collapsed with warm-up and free bits: \[\]$"),
        (
            4,
            r"^latent \[4, 4, 4\] KL per channel \[(\d+\.\d, ){3}\d+\.\d\]\n"
            r"scaling factor \d\.\d+$",
        ),
    ],
    ids=["plain-pytorch-monitor", "pythae", "lightning", "remedy-pieces", "diffusers-grid"],
)
def test_example_runs_as_written(tmp_path: Path, index: int, expected: str) -> None:
    script = tmp_path / "example.py"
    script.write_text(readme_examples()[index], encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env,
        timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(expected, done.stdout, flags=re.MULTILINE), done.stdout[-2000:]
