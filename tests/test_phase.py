"""Phase diagrams: the second-moment rows give a linear model the data's full-batch objective, the
grid spans the theory's thresholds, a small diagram trains every point to the theory's optimum
and agrees with its counts, and a second call resumes instead of retraining."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from vaecollapse.core.data import load_dataset, second_moment_rows
from vaecollapse.core.models.factory import build_model, model_config
from vaecollapse.core.theory import predict
from vaecollapse.studies.phase import PhaseSettings, default_axes


@pytest.mark.parametrize(("family", "name"), [("vae", "digits"), ("cvae", "digits-quadrant")])
def test_second_moment_rows_give_a_linear_model_the_datas_objective(family, name):
    """Loss and gradients of the exact expected reconstruction, over the D rows and over the N
    data rows, at weights far from any optimum."""
    data = load_dataset(name)
    rows = second_moment_rows(data)
    assert len(rows.train) == data.x_dim + (data.y_dim or 0) and rows.test is None
    torch.manual_seed(4)
    model = build_model(
        model_config(family, data, latent_dim=5, encoder_variance="shared", beta=0.7, eta_dec=0.6)
    )
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0, 0.3)
    # in float64: a gradient entry is a small difference of sums over 1797 rows, whose float32
    # rounding alone (1.8e-5 on 6.7e-3, seen in CI) is the size of the tolerance
    model.double()

    def loss_and_grads(split):
        model.zero_grad()
        inputs = (split.x,) if split.y is None else (split.x, split.y)
        loss = model(*(part.double() for part in inputs), analytic=True).loss()
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters()]

    data_loss, data_grads = loss_and_grads(data.train)
    row_loss, row_grads = loss_and_grads(rows.train)
    assert row_loss == pytest.approx(data_loss, rel=1e-5)
    for on_rows, on_data in zip(row_grads, data_grads, strict=True):
        torch.testing.assert_close(on_rows, on_data, rtol=1e-3, atol=1e-5)
    # the tolerance tells them apart: as many data rows drawn at random miss by 100 times more
    drawn = data.train.select(torch.randperm(len(data.train))[: len(rows.train)])
    assert abs(loss_and_grads(drawn)[0] - data_loss) > 1e-3 * abs(data_loss)


def test_the_default_grid_spans_the_thresholds():
    data = load_dataset("digits")
    settings = PhaseSettings(grid=5)
    betas, etas = default_axes(settings, data)
    assert len(betas) == 5 and etas == pytest.approx(np.geomspace(0.5, 2.0, 5).tolist(), rel=1e-5)
    for eta, inside in ((etas[0], "last"), (etas[-1], "first")):
        thresholds = [m["beta"] for m in predict("vae", data, 8, eta_dec=eta).thresholds]
        # the smallest η_dec's last threshold and the largest's first lie inside the β range
        chosen = min(thresholds) if inside == "last" else max(thresholds)
        assert betas[0] < chosen < betas[-1]
    given = PhaseSettings(betas=(2.0, 0.5, 1.0), eta_decs=(1.0,))
    assert default_axes(given, data) == ([0.5, 1.0, 2.0], [1.0])


@pytest.mark.parametrize("family", ["vae", "cvae"])
def test_a_small_linear_diagram_reaches_the_optimum_and_the_theorys_counts(
    run_cli, tmp_path, family
):
    out = tmp_path / "phase"
    # 4000 steps: the all-active corner (smallest β·η_dec²) converges slowest; over seeds 0-3 and
    # 1 or 2 threads its D_MA ended at most 0.0058 (the CVAE's, seed 3); at 1500 steps up to 0.023
    args = ("phase", "--out", str(out), "--model", family, "--grid", "3", "--epochs", "4000")
    result = run_cli(*args)
    assert result.code == 0, result.err
    with (out / "phase.csv").open() as handle:
        points = list(csv.DictReader(handle))
    assert len(points) == 9 and (out / "phase.png").stat().st_size > 10_000
    for point in points:
        assert float(point["d_ma"]) < 0.01, point
        theory = int(point["predicted_active"])
        if point["agrees"] != "True":  # only where the theory's own mode is weaker than ε
            assert float(point["boundary_kl"]) < 0.01, point
        assert 0 <= theory <= 8
    counts = {int(p["predicted_active"]) for p in points}
    assert len(counts) >= 3  # the grid crosses thresholds: the diagram is not one colour
    summary = json.loads((out / "summary.json").read_text())
    assert summary["max_d_ma"] < 0.01 and summary["agreeing"] >= 7

    # a second call retrains nothing and reports the same
    weights = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/model.pt")}
    assert len(weights) == 9
    again = run_cli(*args)
    assert again.code == 0, again.err
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/model.pt")} == weights
    repeated = json.loads((out / "summary.json").read_text())
    assert repeated["points"] == summary["points"]

    other = run_cli("phase", "--out", str(out), "--model", family, "--grid", "3", "--seed", "1")
    assert other.code == 2 and "other settings" in other.err


def test_an_mhvae_diagram_counts_z2_against_theorem_3(run_cli, tmp_path):
    """(β2, η_dec) at β1 = 1.5, σ1 = 0.8: every point reaches Theorem 3's optimum and its z2
    count, and the theory's counts are the ones at this β1 (at another they differ). The grid
    leaves out the slow corner of small β2 and η_dec (docs/sweeps.md)."""
    out = tmp_path / "phase"
    args = (
        "phase", "--out", str(out), "--model", "mhvae", "--latent-dim", "4", "--betas",
        "1,2.5,8", "--eta-decs", "0.7,1.2,2", "--beta1", "1.5", "--sigma1", "0.8",
    )  # fmt: skip
    result = run_cli(*args)
    assert result.code == 0, result.err
    assert "β2 from" in result.out and "the count is z2's" in result.out
    summary = json.loads((out / "summary.json").read_text())
    points = summary["points"]
    assert len(points) == 9 and summary["max_d_ma"] < 0.01 and summary["agreeing"] == 9
    assert len({p["predicted_active"] for p in points}) >= 3
    data = load_dataset("digits")

    def theory(beta1: float, point: dict) -> int:
        options = {"betas": (beta1, point["beta"]), "sigmas": (0.8, None)}
        prediction = predict("mhvae", data, 4, eta_dec=point["eta_dec"], **options)
        return prediction.optimum.active_dims["z2"]

    assert [p["predicted_active"] for p in points] == [theory(1.5, p) for p in points]
    assert [p["predicted_active"] for p in points] != [theory(0.2, p) for p in points]


def test_an_mlp_diagram_draws_the_linear_theory_as_a_reference(run_cli, tmp_path):
    out = tmp_path / "phase"
    result = run_cli(
        "phase", "--out", str(out), "--backbone", "mlp", "--grid", "2", "--epochs", "2",
        "--hidden", "16",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "reference, not a prediction" in result.out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["max_d_ma"] is None and len(summary["points"]) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--betas", "0,1"), "betas"),
        (("--eta-decs", "1,1"), "repeats"),
        (("--grid", "1"), "grid"),
        (("--model", "gan"), "model"),
        (("--beta1", "2"), "first level"),
        (("--model", "mhvae", "--sigma1", "0"), "sigma1"),
    ],
)
def test_bad_settings_exit_2(run_cli, tmp_path, args, message):
    result = run_cli("phase", "--out", str(tmp_path / "p"), *args)
    assert result.code == 2 and message in result.err
    assert not (tmp_path / "p").exists()


def test_someone_elses_directory_is_refused(run_cli, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = run_cli("phase", "--out", str(tmp_path), "--grid", "2", "--epochs", "1")
    assert result.code == 2 and "never writes over them" in result.err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
