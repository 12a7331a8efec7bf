"""Remedies for collapse, each on a constructed case whose answer is known: schedule values at
given steps, free bits' objective and gradients, the BN-VAE floor, δ-VAE's committed rate,
aggressive training's encoder-only steps, and the refusals of combinations that make no sense."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from vaecollapse.core.data import load_dataset
from vaecollapse.core.errors import InputError
from vaecollapse.core.models import MHVAE, VAE, CVAEConfig, MHVAEConfig, VAEConfig
from vaecollapse.core.models.latent import GaussianHead
from vaecollapse.core.objectives import kl_to_prior
from vaecollapse.core.remedies import (
    KLSchedule,
    aggressive_steps,
    committed_variance_ratio,
    cyclical_weight,
    free_bits,
    kl_weights,
    linear_weight,
)
from vaecollapse.training.config import TrainConfig
from vaecollapse.training.trainer import Alone, train

from .linear_fits import train_to_optimum


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_linear_and_cyclical_schedules_at_given_steps() -> None:
    assert [linear_weight(p, 4) for p in (0, 1, 2, 4, 9)] == [0, 0.25, 0.5, 1, 1]
    assert linear_weight(0, 0) == 1
    # cycles of 4 epochs ramping over the first half: 0, ½, 1, 1, then again from 0
    values = [cyclical_weight(p, 4, 0.5) for p in (0, 1, 2, 3, 3.99, 4, 5, 6)]
    assert values == [0, 0.5, 1, 1, 1, 0, 0.5, 1]
    assert cyclical_weight(2.5, 10, 1.0) == 0.25  # ratio 1: a saw-tooth over the whole cycle
    config = TrainConfig(
        epochs=20, kl_schedule=("constant", "linear", "cyclical"), kl_warmup_epochs=8,
        kl_cycle_epochs=4, kl_cycle_ratio=0.5,
    )  # fmt: skip
    assert kl_weights(config, ("z1", "z2", "z3"), 5.0) == {"z1": 1, "z2": 0.625, "z3": 0.5}
    with pytest.raises(InputError, match="one per latent level"):
        kl_weights(config, ("z1", "z2"), 1.0)


def test_the_schedule_object_gives_the_trainers_weights() -> None:
    warmup = KLSchedule("linear", warmup_epochs=4)
    assert [warmup(p) for p in (0, 1, 2.5, 4, 7)] == [0, 0.25, 0.625, 1, 1]
    cycles = KLSchedule("cyclical", cycle_epochs=4, ratio=0.5)
    assert [cycles(p) for p in (0, 1, 2, 4.5)] == [0, 0.5, 1, 0.25]
    assert KLSchedule("constant")(0.0) == 1
    config = TrainConfig(epochs=10, kl_schedule="cyclical", kl_cycle_epochs=4, kl_cycle_ratio=0.5)
    assert kl_weights(config, ("z",), 4.5) == {"z": cycles(4.5)}
    with pytest.raises(InputError, match="one of"):
        KLSchedule("exponential")
    with pytest.raises(InputError, match="cycle_epochs"):
        KLSchedule("cyclical")


def test_aggressive_steps_stop_when_a_window_no_longer_improves() -> None:
    # losses fall for 2 windows of 3, then rise: the third window's mean (4) is not below the
    # second's (2.5), so the loop stops after 9 calls
    losses = iter([9, 8, 7, 3, 2, 2.5, 4, 4, 4, 1, 1, 1])
    calls = []

    def step() -> float:
        calls.append(1)
        return next(losses)

    assert aggressive_steps(step, max_steps=100, window=3) == 9 and len(calls) == 9
    falling = iter(range(100, 0, -1))
    assert aggressive_steps(lambda: next(falling), max_steps=10, window=3) == 10  # the cap
    with pytest.raises(InputError, match="at least 1"):
        aggressive_steps(lambda: 0.0, max_steps=0)


def test_free_bits_objective_and_gradients() -> None:
    target = 0.5
    # dimension 0: batch mean 1.0 (> λ, charged); dimension 1: mean 0.2 (< λ, free);
    # dimension 2's samples straddle λ: 0.1 and 0.7 (mean 0.4, free as a whole)
    kl = torch.tensor([[0.8, 0.1, 0.1], [1.2, 0.3, 0.7]], dtype=torch.float64, requires_grad=True)
    batch = free_bits(kl, target, "dimension", "batch")
    assert float(batch.detach().mean()) == pytest.approx(1.0 + 0.5 + 0.5)
    (gradient,) = torch.autograd.grad(batch.mean(), kl)
    assert gradient.tolist() == [[0.5, 0, 0], [0.5, 0, 0]]  # only the charged dimension, 1/B
    sample = free_bits(kl, target, "dimension", "sample")
    assert sample.tolist() == pytest.approx([0.8 + 0.5 + 0.5, 1.2 + 0.5 + 0.7])
    (gradient,) = torch.autograd.grad(sample.mean(), kl)
    assert gradient.tolist() == [[0.5, 0, 0], [0.5, 0, 0.5]]  # each sample over λ on its own
    # one target for the level's sum: sums 1.0 and 2.2 against λ = 2 -> batch mean 1.6 is free
    level = free_bits(kl, 2.0, "level", "batch")
    assert level.tolist() == [2.0, 2.0]
    assert free_bits(kl, 1.0, "level", "batch").tolist() == pytest.approx([1.0, 2.2])


@pytest.mark.parametrize("rate", [0.01, 0.1, 1.0, 5.0])
def test_committed_rate_bounds_every_samples_kl(rate: float) -> None:
    ratio = committed_variance_ratio(rate)
    assert 0 < ratio < 1 and ratio - 1 - math.log(ratio) == pytest.approx(2 * rate, rel=1e-12)
    torch.manual_seed(0)
    eta_enc = 2.0
    for variance in ("amortized", "amortized-tanh", "shared"):
        head = GaussianHead(8, 5, variance, variance_ceiling=ratio * eta_enc**2).double()
        with torch.no_grad():  # extreme weights: variances near their ceiling and near zero
            for parameter in head.parameters():
                parameter.normal_(0, 30)
            mean, logvar = head(torch.randn(400, 8, dtype=torch.float64))
            kl = kl_to_prior(mean, logvar, eta_enc)
        assert float(kl.min()) >= rate * (1 - 1e-9)
        assert float(torch.exp(logvar).max()) <= ratio * eta_enc**2
    with pytest.raises(InputError, match="fixed"):
        GaussianHead(8, 5, "fixed", sigma=0.5, variance_ceiling=0.5)


def test_batchnorm_means_have_the_fixed_spread() -> None:
    torch.manual_seed(0)
    head = GaussianHead(6, 3, mean_batchnorm=0.7).double()
    features = torch.randn(500, 6, dtype=torch.float64) * torch.tensor([5, 1, 0.1, 3, 2, 1])
    with torch.no_grad():
        head.mean_shift.copy_(torch.tensor([0.0, 0.3, -1.0], dtype=torch.float64))
        mean, _ = head(features)
    assert mean.var(0, unbiased=False).tolist() == pytest.approx([0.49] * 3, rel=1e-3)
    assert mean.mean(0).tolist() == pytest.approx([0.0, 0.3, -1.0], abs=1e-12)
    with torch.no_grad():
        head(features[:1])  # a batch of one uses the running statistics instead of failing
        head.eval()  # eval mode: the running statistics, not the batch's
        raw = head.mean(features)
        scale = torch.sqrt(head.running_var + 1e-5)
        expected = 0.7 * (raw - head.running_mean) / scale + head.mean_shift
        assert torch.allclose(head(features)[0], expected, rtol=1e-12, atol=1e-12)
        assert float(head.running_var.min()) > 0.5  # they did move from their start, 1


def _trained_kl(digits, model_config: VAEConfig, tmp_path: Path, **train_settings) -> torch.Tensor:
    """Per-dimension KL ``(N, d)`` of a linear VAE trained to its optimum in 400 epochs."""
    model = train_to_optimum(digits, model_config, tmp_path, 400, **train_settings)
    with torch.no_grad():
        return model(digits.train.x, analytic=True).kl["z"]


LINEAR = VAEConfig(data_dim=64, latent_dim=8, encoder_variance="shared")


def test_free_bits_hold_every_dimension_at_its_target(digits, tmp_path: Path) -> None:
    plain = _trained_kl(digits, LINEAR, tmp_path / "plain").mean(0)
    assert int((plain < 0.01).sum()) == 7  # at η_dec = 1 one direction carries the signal
    freed = _trained_kl(digits, LINEAR, tmp_path / "freed", free_bits=0.5).mean(0)
    # every dimension's KL is free up to λ, and reconstruction rewards using it: KL = λ
    # (measured within 0.001 of 0.5; a dimension left collapsed would be 0.5 away)
    assert float((freed - 0.5).abs().max()) < 0.05


def test_bn_vae_and_delta_vae_keep_every_dimension_above_their_floor(digits, tmp_path) -> None:
    gamma = 0.8
    bn = _trained_kl(digits, VAEConfig(**(LINEAR.__dict__ | {"mean_batchnorm": gamma})),
                     tmp_path / "bn").mean(0)  # fmt: skip
    assert float(bn.min()) >= gamma**2 / 2 - 0.01  # E[μ²] ≥ γ² for every dimension
    rate = 0.3
    delta = VAEConfig(**(LINEAR.__dict__ | {"delta_rate": rate, "eta_enc": 1.5}))
    kl = _trained_kl(digits, delta, tmp_path / "delta")
    assert float(kl.min()) >= rate * (1 - 1e-5)  # every sample, every dimension


def test_encoder_only_and_decoder_only_steps(digits, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = VAE(VAEConfig(data_dim=64, latent_dim=3, backbone="mlp", hidden=8))
    alone = Alone(
        model, TrainConfig(), ("z",), torch.optim.Adam(model.parameters(), 1e-2), None,
        torch.Generator(), digits, tmp_path,
    )  # fmt: skip
    encoder = {id(p) for p in model.encoder_parameters()}
    assert encoder and len(encoder) < len(list(model.parameters()))
    for keep in ("encoder", "decoder"):
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        alone.update(model(digits.train.x[:64]).loss(), keep=keep)
        for name, parameter in model.named_parameters():
            moved = not torch.equal(before[name], parameter)
            assert moved == ((id(parameter) in encoder) == (keep == "encoder")), name


def _aggressive_run(digits, directory: Path, epochs: int) -> list[dict]:
    model_config = VAEConfig(data_dim=64, latent_dim=4, backbone="mlp", hidden=16)
    torch.manual_seed(1)
    config = TrainConfig(
        epochs=epochs, batch_size=256, lr=3e-3, aggressive_encoder=True, aggressive_max_steps=30
    )
    model, stored = VAE(model_config), {"model": model_config.__dict__}
    return train(model, digits, config, directory, run_config=stored, progress=False)


def test_aggressive_training_takes_encoder_steps_and_measures_information(
    digits, tmp_path: Path
) -> None:
    (record,) = _aggressive_run(digits, tmp_path, 1)
    decoder_steps = math.ceil(len(digits.train) / 256)
    # each inner loop runs at least one window of 15 steps and at most aggressive_max_steps
    assert 15 * decoder_steps <= record["encoder_steps"] <= 30 * decoder_steps
    assert record["mutual_information"] > 0 and record["aggressive_next"] is True


def test_aggressive_training_stops_when_information_stops_rising_and_resumes(
    digits, tmp_path: Path, monkeypatch
) -> None:
    measured = [0.1, 0.2, 0.15, 0.3, 0.4]  # falls at epoch 3: epochs 4 and 5 train jointly
    monkeypatch.setattr(Alone, "mutual_information", lambda self, epoch: measured[epoch])
    straight = _aggressive_run(digits, tmp_path / "a", 5)
    assert ["encoder_steps" in r for r in straight] == [True, True, True, False, False]
    assert [r.get("aggressive_next") for r in straight] == [True, True, False, None, None]
    _aggressive_run(digits, tmp_path / "b", 2)
    resumed = _aggressive_run(digits, tmp_path / "b", 5)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(resumed) == strip(straight)


def test_cyclical_weights_are_recorded_and_resume(digits, tmp_path: Path) -> None:
    def run(directory: Path, epochs: int) -> list[dict]:
        torch.manual_seed(1)
        config = TrainConfig(
            epochs=epochs, batch_size=512, kl_schedule="cyclical", kl_cycle_epochs=2,
            kl_cycle_ratio=0.5,
        )  # fmt: skip
        stored = {"model": LINEAR.__dict__}
        return train(VAE(LINEAR), digits, config, directory, run_config=stored, progress=False)

    history = run(tmp_path / "a", 4)
    steps = math.ceil(len(digits.train) / 512)
    last = [cyclical_weight(e + (steps - 1) / steps, 2, 0.5) for e in range(4)]
    assert [r["kl_weight"]["z"] for r in history] == pytest.approx(last)
    run(tmp_path / "b", 3)
    assert json.loads(json.dumps(run(tmp_path / "b", 4)))[-1]["train_loss"] == pytest.approx(
        history[-1]["train_loss"], rel=1e-12
    )


@pytest.mark.parametrize(
    ("model", "settings", "fragment"),
    [
        (VAEConfig(data_dim=64, latent_dim=2, deterministic=True), {"free_bits": 0.5},
         "deterministic"),
        (LINEAR, {"kl_schedule": "cyclical", "kl_cycle_epochs": 50, "epochs": 10}, "longer"),
        (LINEAR, {"kl_schedule": "cyclical"}, "kl_cycle_epochs"),
        (LINEAR, {"kl_schedule": "constant", "kl_warmup_epochs": 5}, "no level"),
        (LINEAR, {"kl_cycle_epochs": 5}, "cyclical"),
        (LINEAR, {"free_bits_kind": "sample"}, "need free_bits"),
    ],
)  # fmt: skip
def test_senseless_combinations_are_refused_before_anything_is_written(
    digits, tmp_path: Path, model, settings: dict, fragment: str
) -> None:
    out = tmp_path / "run"
    with pytest.raises(InputError, match=fragment):
        train(VAE(model), digits, TrainConfig(**settings), out, progress=False)
    assert not out.exists()


def test_fixed_prior_remedies_need_a_fixed_prior() -> None:
    with pytest.raises(InputError, match="MHVAE"):
        MHVAE(MHVAEConfig(data_dim=8, latent_dim=2, mean_batchnorm=1.0))
    with pytest.raises(InputError, match="conditional_prior"):
        CVAEConfig(x_dim=4, y_dim=4, latent_dim=2, delta_rate=0.1, conditional_prior=True)
    with pytest.raises(InputError, match="fixed by sigma"):
        VAEConfig(data_dim=8, latent_dim=2, sigma=0.5, delta_rate=0.1)
    with pytest.raises(InputError, match="free_bits"):
        TrainConfig(free_bits=-1.0)


def test_remedies_from_the_command_line(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_cli(
        "train", "--dataset", "digits", "--latent-dim", "3", "--epochs", "2",
        "--free-bits", "0.2", "--free-bits-group", "level", "--kl-schedule", "cyclical",
        "--kl-cycle-epochs", "1", "--mean-batchnorm", "0.5", "--out", str(out),
    )  # fmt: skip
    assert result.code == 0, result.err
    stored = json.loads((out / "config.json").read_text())
    assert stored["train"]["free_bits"] == 0.2 and stored["model"]["mean_batchnorm"] == 0.5
    refused = tmp_path / "refused"
    result = run_cli(
        "train", "--dataset", "digits", "--latent-dim", "3", "--deterministic",
        "--aggressive-encoder", "--out", str(refused),
    )  # fmt: skip
    assert result.code == 2 and "deterministic" in result.err and not refused.exists()
