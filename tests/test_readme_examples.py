"""The examples of docs/own-model.md ("Diagnose your own VAE") run as written — a plain PyTorch
loop with the monitor and the verdict, a pythae model, a Lightning module stopped when it
collapses, the remedy pieces in a hand-written loop, a diffusers autoencoder's latent grid — as do
docs/pyro.md's Pyro VAE and the README's quick starts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO_ROOT


def _blocks(path: str, language: str) -> list[str]:
    text = (REPO_ROOT / path).read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def readme_examples() -> list[str]:
    return _blocks("docs/own-model.md", "python")


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


def test_the_pyro_example_warns_of_both_misreadings_and_reads_the_guide_right(
    tmp_path: Path,
) -> None:
    (code,) = _blocks("docs/pyro.md", "python")
    script = tmp_path / "pyro_vae.py"
    script.write_text(code, encoding="utf-8")
    done = _run([sys.executable, str(script)], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    warned = re.findall(r"^warning: \[([a-z-]+)\]$", done.stdout, flags=re.MULTILINE)
    assert warned == ["scale-read-as-logvar", "probabilities-read-as-logits"], done.stdout
    assert "read-as-" not in done.stderr  # the right reading raises none
    assert re.search(r"^  z: .* nats of KL, I\(x;z\) ", done.stdout, flags=re.MULTILINE)
    assert "cause [" in done.stdout and "IWAE log-likelihood (K=100)" in done.stdout
    read, guide, misread = map(float, re.search(
        r"^KL of z: read as Pyro means it (\S+) nats \(the guide's own (\S+)\), misread (\S+)$",
        done.stdout, flags=re.MULTILINE,
    ).groups())  # fmt: skip
    assert abs(read - guide) <= 2e-4  # both printed to four decimals
    assert misread > 2 * read  # a scale read as a log-variance inflates every σ


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), VAECOLLAPSE_OFFLINE="1")
    return subprocess.run(
        args, capture_output=True, text=True, cwd=cwd, env=env, timeout=600,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_the_readme_quick_start_diagnoses_a_collapsed_vae(tmp_path: Path) -> None:
    (code,) = _blocks("README.md", "python")
    script = tmp_path / "quick_start.py"
    script.write_text(code, encoding="utf-8")
    done = _run([sys.executable, str(script)], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[1].startswith("  z: collapsed as a whole"), done.stdout[-2000:]
    assert "cause [over-regularised]" in lines[2]


def test_the_readme_commands_run_offline(tmp_path: Path) -> None:
    first, *commands = _blocks("README.md", "sh")
    assert first.splitlines()[1] == "VAECOLLAPSE_DATA=../shared/data .venv/bin/python -m pytest"
    for block in commands:
        for line in block.strip().splitlines():
            words = line.split()
            assert words[0] == "vaecollapse", line
            done = _run([sys.executable, "-m", "vaecollapse", *words[1:]], tmp_path)
            assert done.returncode == 0, f"{line}: {done.stderr[-2000:]}"
            assert done.stdout.strip(), line
