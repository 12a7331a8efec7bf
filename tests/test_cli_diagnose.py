"""`vaecollapse diagnose` and `vaecollapse demo` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from vaecollapse.core.data import synthetic_dataset
from vaecollapse.core.diagnostics import diagnose_model, explain
from vaecollapse.core.models import MHVAE, MHVAEConfig


def test_diagnose_a_trained_run(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "run"
    trained = run_cli(
        "train", "--dataset", "digits", "--latent-dim", "6", "--encoder-variance", "shared",
        "--beta", "4", "--epochs", "30", "--analytic", "--lr", "0.01", "--out", str(out),
    )  # fmt: skip
    assert trained.code == 0, trained.err
    result = run_cli("diagnose", str(out), "--iwae-k", "20")
    assert result.code == 0, result.err
    assert "level z: 6 dimensions" in result.out and "cause [over-regularised]" in result.out
    assert result.out.index("cause [over-regularised]") < result.out.index("level z:")
    for name in ("diagnosis.json", "collapse_curve.png", "kl_per_dim.png", "encoder_std.png"):
        assert (out / name).stat().st_size > 0
    report = json.loads((out / "diagnosis.json").read_text())
    level = report["levels"]["z"]
    # θ_1 = 3.23 is the only mode above √β·η_dec = 2 on the digits: the theory keeps one dimension
    assert report["theory"]["predicted_active"] == {"z": 1}
    assert len(level["collapsed_dims"]) == 5 and report["iwae"]["k"] == 20
    assert report["theory"]["maps"]["U"]["d_ma"] < 0.02
    # the page: the verdict first, then the run's settings, then the table; text that wraps
    page = (out / "report.html").read_text(encoding="utf-8")
    order = [page.index(s) for s in (
        "<h1>Diagnosis: run</h1>", "<h2>Verdict</h2>", "cause [over-regularised]",
        "<h2>Settings</h2>", "<td><code>beta</code></td><td>4.0</td>", "<h2>Level z: 6 dimensions",
    )]  # fmt: skip
    assert order == sorted(order) and "<pre>" not in page
    as_json = run_cli("diagnose", str(out), "--json", "--epsilon", "1e-6")
    assert as_json.code == 0 and json.loads(as_json.out)["epsilon"] == 1e-6


def test_diagnose_rejects_what_is_not_a_run(run_cli, tmp_path: Path) -> None:
    result = run_cli("diagnose", str(tmp_path))
    assert result.code == 2 and "no config.json" in result.err
    (tmp_path / "config.json").write_text("{not json")
    result = run_cli("diagnose", str(tmp_path))
    assert result.code == 2 and "Traceback" not in result.err


def test_hierarchical_terms_are_kls_and_a_silenced_level_is_named() -> None:
    torch.manual_seed(0)
    config = MHVAEConfig(data_dim=5, latent_dim=3, encoder_variances=("fixed", "shared"), sigma=1.0)
    model = MHVAE(config)
    x = torch.randn(400, 5)
    report = diagnose_model(model, x)
    assert set(report.levels) == {"z1", "z2"}
    assert all(bool((level.kl >= 0).all()) for level in report.levels.values())
    assert report.levels["z1"].active_units == 3
    with torch.no_grad():  # z1 carries nothing about x and matches p(z1 | z2) = N(0, I) exactly
        model.encoders[0].head.mean.weight.zero_()
        model.decoders[1].weight.zero_()
    report = diagnose_model(model, x)
    assert report.levels["z1"].collapsed_dims == [0, 1, 2]
    verdict = explain(report, model, synthetic_dataset("noise", x.numpy()))
    silenced = [f for f in verdict["findings"] if f["code"] == "silenced-level"]
    assert silenced and silenced[0]["level"] == "z2"


def test_a_runs_iwae_estimate_is_stored_and_renewed_with_its_weights(
    run_cli, tmp_path: Path
) -> None:
    from vaecollapse.training.runs import diagnose_run

    out = tmp_path / "run"
    arguments = ("--dataset", "digits", "--latent-dim", "3", "--epochs", "2", "--out", str(out))
    assert run_cli("train", *arguments).code == 0
    first, _ = diagnose_run(out, iwae_k=7)
    # training a complete run again only saves model.pt anew (other bytes, the same weights); the
    # estimate is random, so a second one that matches to the last bit was read from the store
    assert run_cli("train", *arguments).code == 0
    again, _ = diagnose_run(out, iwae_k=7)
    assert torch.equal(first.iwae.values, again.iwae.values)
    assert diagnose_run(out, iwae_k=8)[0].iwae.samples == 8
    state = torch.load(out / "model.pt", weights_only=True)
    torch.save({name: value * 1.01 for name, value in state.items()}, out / "model.pt")
    renewed, _ = diagnose_run(out, iwae_k=7)
    assert not torch.equal(first.iwae.values, renewed.iwae.values)
    stored = out / "iwae-test-k7.pt"
    assert stored.exists()
    stored.write_bytes(b"damaged")
    assert diagnose_run(out, iwae_k=7)[0].iwae.values.shape == first.iwae.values.shape
