"""Sweeps declared in a file: validation, the points' order, training batched where points can
share a batch, a job array's one-point calls, collecting what is finished, and resuming."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from vaecollapse.core.data import load_dataset
from vaecollapse.core.rundir import read_run_config
from vaecollapse.training.batched import batch_groups
from vaecollapse.training.config import TrainConfig
from vaecollapse.training.runs import prepared_run

SWEEP = """
model = "vae"
dataset = "digits"
backbone = "mlp"
hidden = 16
latent_dim = 3
epochs = 3
lr = 3e-3

[grid]
beta = [0.5, 4]
seed = [0, 1]
"""


def _said(result) -> str:
    """The error message with its line wrapping undone."""
    return " ".join(result.err.split())


def _file(tmp_path: Path, text: str = SWEEP, name: str = "sweep.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_points_are_the_grids_product_in_file_order(run_cli, tmp_path):
    result = run_cli("sweep", _file(tmp_path), "--list-runs")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "   0  beta=0.5, seed=0",
        "   1  beta=0.5, seed=1",
        "   2  beta=4, seed=0",
        "   3  beta=4, seed=1",
    ]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (SWEEP.split("[grid]")[0], "no [grid] table"),
        (SWEEP + "latent-size = [1]\n", "not a setting of train"),
        (SWEEP + "dataset = ['mnist']\n", "one model family on one data set"),
        (SWEEP + "epochs = [1, 2]\n", "both fixed and in [grid]"),
        (SWEEP.replace("beta = [0.5, 4]", "beta = []"), "non-empty list"),
        (SWEEP.replace("beta = [0.5, 4]", "beta = [1, 1.0]"), "repeats a value"),
        (SWEEP.replace("beta = [0.5, 4]", "beta = [0.5, -4]"), "beta"),
        (SWEEP.replace('dataset = "digits"', ""), "names no dataset"),
        (SWEEP.replace("hidden = 16", "hiden = 16"), "unknown setting 'hiden'"),
        (SWEEP.replace("[grid]", "[grid]\nfree_bits = [0.1]\nkl_schedule = ['cyclical']"), "cycl"),
    ],
)
def test_a_bad_sweep_file_exits_2_before_anything_is_written(run_cli, tmp_path, text, message):
    result = run_cli("sweep", _file(tmp_path, text), "--out", str(tmp_path / "out"))
    assert result.code == 2 and message in _said(result), result.err
    assert not (tmp_path / "out").exists()


def test_a_sweep_trains_batched_summarises_and_resumes(run_cli, tmp_path):
    out = tmp_path / "out"
    result = run_cli("sweep", _file(tmp_path), "--out", str(out))
    assert result.code == 0, result.err
    with (out / "sweep.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["beta"], r["seed"]) for r in rows] == [
        ("0.5", "0"),
        ("0.5", "1"),
        ("4", "0"),
        ("4", "1"),
    ]
    assert (out / "sweep.png").stat().st_size > 10_000 and "4 of 4 points finished" in result.out
    for index, row in enumerate(rows):
        stored = read_run_config(out / "runs" / f"p{index:03d}")
        assert stored["model"]["beta"] == float(row["beta"])
        assert stored["train"]["seed"] == int(row["seed"])
        history = (out / "runs" / f"p{index:03d}" / "metrics.jsonl").read_text().splitlines()
        assert json.loads(history[-1])["batched_runs"] == 4  # β and seed share a batch
    # a larger β collapses more: the sweep measured what it says (KL per point)
    kl = {(r["beta"], r["seed"]): float(r["kl"]) for r in rows}
    assert kl[("4", "0")] < kl[("0.5", "0")] and kl[("4", "1")] < kl[("0.5", "1")]

    weights = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/model.pt")}
    again = run_cli("sweep", _file(tmp_path), "--out", str(out))
    assert again.code == 0 and {p: p.stat().st_mtime_ns for p in weights} == weights
    assert (out / "sweep.csv").read_text() == (out / "sweep.csv").read_text()

    other = run_cli("sweep", _file(tmp_path, SWEEP.replace("0.5, 4", "0.5, 2")), "--out", str(out))
    assert other.code == 2 and "holds another sweep" in _said(other)
    longer = run_cli(
        "sweep", _file(tmp_path, SWEEP.replace("epochs = 3", "epochs = 4")), "--out", str(out)
    )
    assert longer.code == 0, longer.err  # more epochs continue the same runs
    assert len((out / "runs" / "p000" / "metrics.jsonl").read_text().splitlines()) == 4


def test_a_job_array_trains_one_point_per_call_and_collect_gathers_them(run_cli, tmp_path):
    out, sweep = tmp_path / "out", _file(tmp_path)
    for index in (0, 3):
        result = run_cli("sweep", sweep, "--out", str(out), "--run", str(index))
        assert result.code == 0, result.err
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["p000", "p003"]
    collected = run_cli("sweep", sweep, "--out", str(out), "--collect")
    assert collected.code == 0, collected.err
    assert "2 of 4 points finished; not yet: 1, 2." in collected.out
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["p000", "p003"]  # none trained
    missing = run_cli("sweep", sweep, "--out", str(out), "--run", "4")
    assert missing.code == 2 and "no point 4" in _said(missing)
    nothing = run_cli("sweep", sweep, "--out", str(tmp_path / "empty"), "--collect")
    assert nothing.code == 2 and "no point of the sweep" in _said(nothing)


def test_points_that_cannot_share_a_batch_form_groups(tmp_path):
    data = load_dataset("digits")
    training = TrainConfig(epochs=1)
    base = {"backbone": "mlp", "hidden": 8}
    runs = [
        prepared_run(tmp_path / str(i), "vae", data, base | settings, training)
        for i, settings in enumerate(
            [
                {"latent_dim": 2, "beta": 1.0},
                {"latent_dim": 3, "beta": 1.0},
                {"latent_dim": 2, "beta": 2.0},
                {"latent_dim": 3, "beta": 0.5},
                {"latent_dim": 2, "backbone": "cnn"},  # not a batched backbone: alone
                {"latent_dim": 2, "backbone": "cnn"},
            ]
        )
    ]
    assert batch_groups(runs) == [[0, 2], [1, 3], [4], [5]]


def test_the_documented_sweep_file_is_valid(run_cli, tmp_path):
    from .conftest import REPO_ROOT

    text = (REPO_ROOT / "docs" / "sweeps.md").read_text(encoding="utf-8")
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    result = run_cli("sweep", _file(tmp_path, example), "--list-runs")
    assert result.code == 0, result.err
    assert len(result.out.splitlines()) == 5 * 2 * 3
    assert result.out.splitlines()[1].strip() == "1  beta=0.25, eta_dec=0.5, seed=1"
