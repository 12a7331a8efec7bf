"""The remedy bench: which settings each remedy's runs get, the summary's arithmetic on
constructed results, and a small bench end to end (outputs, resume, refusals)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from vaecollapse.core.data import load_dataset
from vaecollapse.core.errors import InputError
from vaecollapse.core.theory import predict
from vaecollapse.studies.remedy_bench import RunResult, remedy_runs, run_bench, summarise
from vaecollapse.training.config import TrainConfig


def test_each_remedy_gets_its_own_settings_and_strengths_stay_with_their_remedy() -> None:
    runs = {r.name: r for r in remedy_runs(
        ("none", "warmup", "cyclical", "free-bits", "aggressive", "bn-vae", "delta-vae"),
        epochs=40, strengths={"free_bits": 1.5, "free_bits_kind": "sample"}, family="vae",
    )}  # fmt: skip
    assert runs["none"].model == {} and runs["none"].train == {}
    assert runs["warmup"].train == {"kl_warmup_epochs": 10}
    assert runs["cyclical"].train == {
        "kl_schedule": "cyclical", "kl_cycle_epochs": 10, "kl_cycle_ratio": 0.5,
    }  # fmt: skip
    assert runs["free-bits"].train == {"free_bits": 1.5, "free_bits_kind": "sample"}
    assert runs["aggressive"].train == {"aggressive_encoder": True}
    assert runs["bn-vae"].model == {"mean_batchnorm": 0.6} and runs["bn-vae"].train == {}
    assert runs["delta-vae"].model == {"delta_rate": 0.1}
    with pytest.raises(InputError, match="unknown remedies"):
        remedy_runs(("none", "dropout"), 10, {}, "vae")
    with pytest.raises(InputError, match="MHVAE"):
        remedy_runs(("none", "bn-vae"), 10, {}, "mhvae")


def _result(remedy: str, seed: int, kl: float, seconds: float) -> RunResult:
    return RunResult(
        remedy, seed, kl, active_units=seed + 1, mutual_information=kl / 2, collapsed=2 - seed,
        iwae=-10.0 - seed, iwae_error=0.1 * (seed + 1), reconstruction=5.0, seconds=seconds,
        gradient_steps=int(10 * seconds), latent_total=4, predicted_active=None,
        kl_per_dim=[kl, 0, 0, 0], kl_curve=[kl], information_curve=[(1, kl / 2)],
    )  # fmt: skip


def test_summary_means_spreads_and_relative_time() -> None:
    rows = summarise([
        _result("none", 0, 1.0, 2.0), _result("none", 1, 3.0, 4.0),
        _result("free-bits", 0, 5.0, 6.0), _result("free-bits", 1, 5.0, 12.0),
    ])  # fmt: skip
    assert [r["remedy"] for r in rows] == ["none", "free-bits"]
    none, freed = rows
    assert none["kl"] == 2.0 and none["kl_sd"] == pytest.approx(math.sqrt(2))
    assert none["active_units"] == 1.5 and none["collapsed"] == 1.5
    assert none["iwae"] == -10.5 and none["iwae_se"] == pytest.approx(0.15)
    assert none["relative_time"] == 1.0  # the baseline's mean time is 3 s
    assert freed["relative_time"] == 3.0 and freed["relative_time_sd"] == pytest.approx(
        math.sqrt(2)
    )
    assert freed["kl_sd"] == 0.0
    assert none["relative_steps"] == 1.0 and freed["relative_steps"] == 3.0


def test_a_small_bench_writes_its_outputs_and_resumes(tmp_path: Path) -> None:
    digits = load_dataset("digits")
    settings = {"backbone": "mlp", "hidden": 16, "latent_dim": 4, "eta_dec": 0.5}
    training = TrainConfig(epochs=3, batch_size=256, lr=1e-3)
    kwargs = {"remedies": ("none", "free-bits", "bn-vae"), "seeds": (0, 1), "iwae_k": 10}
    first = run_bench(tmp_path / "bench", "vae", digits, settings, training, **kwargs)
    assert [(r.remedy, r.seed) for r in first] == [
        (name, seed) for name in kwargs["remedies"] for seed in (0, 1)
    ]
    # without aggressive training a run takes one optimizer step per minibatch
    assert {r.gradient_steps for r in first} == {3 * math.ceil(len(digits.train) / 256)}
    out = tmp_path / "bench"
    assert {p.name for p in out.iterdir()} >= {
        "remedies.md", "remedies.csv", "remedies.png", "summary.json", "runs",
    }  # fmt: skip
    rows = list(csv.DictReader((out / "remedies.csv").read_text().splitlines()))
    assert [r["remedy"] for r in rows] == ["none", "free-bits", "bn-vae"]
    assert "| free-bits |" in (out / "remedies.md").read_text()
    stored = json.loads((out / "runs" / "bn-vae-seed1" / "config.json").read_text())
    assert stored["model"]["mean_batchnorm"] == 0.6 and stored["train"]["seed"] == 1
    assert stored["train"]["free_bits"] is None  # the free-bits strength stays with its remedy
    again = run_bench(tmp_path / "bench", "vae", digits, settings, training, **kwargs)
    for a, b in zip(again, first, strict=True):
        assert {k: v for k, v in a.__dict__.items() if v != b.__dict__[k]} == {}


def test_a_linear_bench_shows_the_theory_beside_each_covered_remedy(tmp_path: Path) -> None:
    digits = load_dataset("digits")
    settings = {"backbone": "linear", "latent_dim": 8, "encoder_variance": "shared"}
    results = run_bench(
        tmp_path, "vae", digits, settings, TrainConfig(epochs=2, batch_size=512, lr=1e-2),
        remedies=("none", "free-bits", "delta-vae"), seeds=(0,), iwae_k=5,
    )  # fmt: skip
    expected = {
        "none": predict("vae", digits, 8).optimum.active_dims["z"],
        "free-bits": None,  # no derivation: the column says so rather than guess
        "delta-vae": predict("vae", digits, 8, delta_rate=0.1).optimum.active_dims["z"],
    }
    assert {r.remedy: r.predicted_active for r in results} == expected
    assert expected["none"] < expected["delta-vae"]  # the cap's prediction is its own
    assert "theory: active" in (tmp_path / "remedies.md").read_text()


def test_the_bench_from_the_command_line(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    result = run_cli(
        "remedies", "--out", str(out), "--epochs", "2", "--seeds", "0", "--hidden", "16",
        "--remedies", "none,cyclical,delta-vae", "--kl-cycle-epochs", "1", "--iwae-k", "5",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "| delta-vae |" in result.out and (out / "remedies.png").exists()
    cyclical = json.loads((out / "runs" / "cyclical-seed0" / "config.json").read_text())
    assert cyclical["train"]["kl_cycle_epochs"] == 1.0
    for args, fragment in (
        (["--remedies", "none,cyclical", "--kl-cycle-epochs", "5"], "longer"),
        (["--remedies", "free-bits"], "include none"),
        (["--model", "mhvae", "--remedies", "none,bn-vae"], "MHVAE"),
        (["--remedies", "none,dropout"], "dropout"),
    ):
        refused = tmp_path / "refused"
        result = run_cli("remedies", "--out", str(refused), "--epochs", "2", *args)
        message = " ".join(result.err.split())  # the error is wrapped at 100 columns
        assert result.code == 2 and fragment in message and not refused.exists(), args
