"""The command line: help, exit codes, and that no failure prints a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest


def test_help_lists_commands(run_cli) -> None:
    result = run_cli("--help")
    assert result.code == 0
    assert "data" in result.out and "demo" in result.out


def test_unknown_command_and_option_exit_2(run_cli) -> None:
    assert run_cli("frobnicate").code == 2
    assert run_cli("data", "info", "digits", "--bogus").code == 2


def test_unknown_data_set_exit_2(run_cli) -> None:
    result = run_cli("data", "info", "mnsit")
    assert result.code == 2 and "Unknown data set 'mnsit'" in result.err
    assert "Traceback" not in result.err


def test_data_info_text_and_list(run_cli) -> None:
    result = run_cli("data", "info", "digits-quadrant", "--digits", "3,8")
    assert result.code == 0
    assert "view: quadrant" in result.out and "digits      3, 8" in result.out
    assert run_cli("data", "list").out.split() == ["digits", "mnist", "fashion-mnist", "cifar10"]


def test_demo_runs_offline_as_console_script(tmp_path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "vaecollapse", "demo"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "VAECOLLAPSE_OFFLINE": "1"},
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert "| linear VAE d=8 |" in run.stdout and "| linear CVAE d=8 |" in run.stdout
    out = tmp_path / "vaecollapse-demo"
    rows = json.loads((out / "summary.json").read_text())
    assert len(rows) == 6
    assert all(r["predicted_active"] == r["observed_active"] for r in rows), rows
    assert len({r["predicted_active"] for r in rows if r["model"] == "vae"}) == 3
    for name in ("summary.md", "predicted_vs_observed.png", "collapse_curves_cvae.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "vae-beta2" / "diagnosis.json").exists()


@pytest.mark.parametrize("family", ["vae", "cvae"])
def test_the_demos_staircase_is_the_theorys_count_at_every_beta(family: str) -> None:
    from vaecollapse.core.data import load_dataset
    from vaecollapse.core.families import model_family
    from vaecollapse.core.theory import predict
    from vaecollapse.studies.demo import BETAS, LATENT_DIM, theory_staircase

    dataset = load_dataset(model_family(family).default_dataset)
    thresholds = predict(family, dataset, LATENT_DIM, beta=1.0).thresholds
    grid, counts = theory_staircase([mode["beta"] for mode in thresholds], 0.05, 5.0)
    assert counts[0] > counts[-1] and all(counts[:-1] >= counts[1:])  # a falling staircase
    for beta in (*BETAS[family], 0.07, 0.9, 3.0):
        expected = predict(family, dataset, LATENT_DIM, beta=beta).optimum.active_dims["z"]
        assert counts[np.searchsorted(grid, beta, side="right") - 1] == expected, beta
