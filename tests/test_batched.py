"""Batched multi-configuration training: every run of a batch ends where the same run trained
alone ends, its run directory is the one ``train`` writes (and resumes across both trainers),
and runs that cannot share a batch are refused or trained one by one."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from vaecollapse.core.data import load_dataset
from vaecollapse.core.errors import InputError
from vaecollapse.core.models.factory import build_model, config_to_json, model_config
from vaecollapse.core.rundir import load_checkpoint, read_metrics
from vaecollapse.training.batched import Run, batch_refusal, train_batched
from vaecollapse.training.config import TrainConfig
from vaecollapse.training.loop import TrainingDivergedError
from vaecollapse.training.many import train_many
from vaecollapse.training.trainer import train

# Stacking turns each matmul into a batched one, whose kernels may sum in another order: allow
# float32 rounding accumulated over a few hundred steps, far below any training effect (a single
# Adam step at lr 1e-3 moves a weight by ~1e-3).
TOLERANCE = {"rtol": 1e-4, "atol": 2e-5}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def quadrant():
    return load_dataset("digits-quadrant")


def _run(family, dataset, settings, training, run_dir) -> Run:
    config = model_config(family, dataset, **settings)
    torch.manual_seed(training.seed)  # as train_run initialises
    return Run(build_model(config), training, run_dir, {"model": config_to_json(config)})


def _alone(run: Run, dataset, **overrides) -> list[dict]:
    training = replace(run.config, **overrides)
    return train(
        run.model, dataset, training, run.run_dir, run_config=run.run_config, device="cpu",
        progress=False,
    )  # fmt: skip


def _assert_same(batched: Run, alone: Run, batched_history, alone_history) -> None:
    for (name, p), q in zip(
        batched.model.state_dict().items(), alone.model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(p, q, **TOLERANCE, msg=f"{name} differs")
    assert len(batched_history) == len(alone_history)
    for b, a in zip(batched_history, alone_history, strict=True):
        for key in ("train_loss", "recon", "test_loss"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-5), key
        assert b["kl"] == pytest.approx(a["kl"], rel=1e-4, abs=1e-6)


def _compare(family, dataset, settings_and_seeds, training, tmp_path) -> list[Run]:
    """Train each (settings, seed) alone and all batched; assert they agree; return the batch."""
    batch = [
        _run(family, dataset, s, replace(training, seed=seed), tmp_path / f"batched{i}")
        for i, (s, seed) in enumerate(settings_and_seeds)
    ]
    assert batch_refusal(batch) is None
    histories = train_batched(batch, dataset, device="cpu", progress=False)
    for i, (s, seed) in enumerate(settings_and_seeds):
        alone = _run(family, dataset, s, replace(training, seed=seed), tmp_path / f"alone{i}")
        _assert_same(batch[i], alone, histories[i], _alone(alone, dataset))
    return batch


def test_stochastic_mlp_runs_match_alone_across_betas_decoder_stds_and_seeds(digits, tmp_path):
    base = {"latent_dim": 4, "backbone": "mlp", "hidden": 32}
    runs = [
        (base | {"beta": 1.0}, 0),
        (base | {"beta": 0.3, "eta_dec": 0.5}, 0),  # same seed: the same batches and noise
        (base | {"beta": 2.0, "eta_dec": 0.8}, 3),  # its own batch order and noise
    ]
    training = TrainConfig(epochs=3, batch_size=64, lr=3e-3, samples=2, kl_warmup_epochs=2)
    batch = _compare("vae", digits, runs, training, tmp_path)
    # the runs really differ: a shared update would have left them equal
    first, second = (r.model.decoder[1].weight for r in batch[:2])
    assert (first - second).abs().max() > 1e-3


def test_linear_analytic_runs_with_learnt_decoder_std_clipping_and_schedule(digits, tmp_path):
    base = {"latent_dim": 6, "encoder_variance": "shared", "learn_eta_dec": True}
    runs = [(base | {"beta": b, "eta_dec": e}, 0) for b, e in ((0.5, 1.0), (2.0, 0.6), (1.0, 2.0))]
    training = TrainConfig(
        epochs=4, batch_size=200, lr=1e-2, analytic=True, clip_grad_norm=5.0,
        lr_scheduler="CosineAnnealingLR", lr_scheduler_args={"T_max": 4},
    )  # fmt: skip
    _compare("vae", digits, runs, training, tmp_path)


def test_clipping_acts_per_run(digits, tmp_path):
    """A clip that binds for one run only: the batch must clip that run's norm, not the
    batch's, or the other runs would be slowed too."""
    base = {"latent_dim": 4, "encoder_variance": "shared"}
    runs = [(base | {"eta_dec": 0.05}, 0), (base | {"eta_dec": 3.0}, 0)]
    training = TrainConfig(epochs=2, batch_size=300, lr=1e-2, analytic=True, clip_grad_norm=50.0)
    _compare("vae", digits, runs, training, tmp_path)


def test_mhvae_with_per_level_betas_and_fixed_sigmas(digits, tmp_path):
    base = {"latent_dim": 4, "latent_dims": (4, 2), "encoder_variances": ("fixed", "fixed")}
    runs = [
        (base | {"betas": (1.0, 0.5), "sigmas": (0.5, 0.5)}, 1),
        (base | {"betas": (0.3, 2.0), "sigmas": (0.2, 0.9)}, 1),
    ]
    _compare("mhvae", digits, runs, TrainConfig(epochs=2, batch_size=128, lr=3e-3), tmp_path)


def test_cvae_with_free_bits(quadrant, tmp_path):
    base = {"latent_dim": 3, "backbone": "mlp", "hidden": 16}
    runs = [(base | {"beta": 1.0}, 0), (base | {"beta": 4.0}, 2)]
    training = TrainConfig(epochs=2, batch_size=128, lr=3e-3, free_bits=0.2)
    _compare("cvae", quadrant, runs, training, tmp_path)


def test_runs_resume_across_the_two_trainers(digits, tmp_path):
    """Two epochs batched then two alone, and two alone then two batched, both end where four
    epochs alone end: a batched checkpoint is a plain run's checkpoint."""
    settings = {"latent_dim": 4, "backbone": "mlp", "hidden": 16, "beta": 0.7}
    two = TrainConfig(epochs=2, batch_size=128, lr=3e-3, seed=5)
    four = replace(two, epochs=4)
    reference = _run("vae", digits, settings, four, tmp_path / "reference")
    reference_history = _alone(reference, digits)

    batched_first = _run("vae", digits, settings, two, tmp_path / "batched-first")
    partner = _run("vae", digits, settings | {"beta": 3.0}, two, tmp_path / "partner")
    train_batched([batched_first, partner], digits, device="cpu", progress=False)
    assert load_checkpoint(batched_first.run_dir / "checkpoint.pt")["epoch"] == 2
    resumed = _run("vae", digits, settings, four, batched_first.run_dir)
    _assert_same(resumed, reference, _alone(resumed, digits), reference_history)

    alone_first = _run("vae", digits, settings, two, tmp_path / "alone-first")
    _alone(alone_first, digits)
    later = [
        _run("vae", digits, settings, four, alone_first.run_dir),
        _run("vae", digits, settings | {"beta": 3.0}, four, partner.run_dir),
    ]
    histories = train_batched(later, digits, device="cpu", progress=False)
    _assert_same(later[0], reference, histories[0], reference_history)
    assert len(read_metrics(partner.run_dir / "metrics.jsonl")) == 4


def test_train_many_skips_finished_runs_and_batches_by_starting_epoch(digits, tmp_path):
    settings = {"latent_dim": 4, "backbone": "mlp", "hidden": 16}
    training = TrainConfig(epochs=3, batch_size=128, lr=3e-3)
    done = _run("vae", digits, settings, training, tmp_path / "done")
    _alone(done, digits)
    finished_weights = (done.run_dir / "model.pt").read_bytes()
    halfway = _run("vae", digits, settings | {"beta": 2.0}, training, tmp_path / "halfway")
    _alone(halfway, digits, epochs=1)
    runs = [
        _run("vae", digits, settings, training, done.run_dir),
        _run("vae", digits, settings | {"beta": 2.0}, training, halfway.run_dir),
        _run("vae", digits, settings | {"beta": 0.5}, training, tmp_path / "fresh-a"),
        _run("vae", digits, settings | {"beta": 0.2}, training, tmp_path / "fresh-b"),
    ]
    histories = train_many(runs, digits, device="cpu", progress=False)
    assert [len(h) for h in histories] == [3, 3, 3, 3]
    assert (done.run_dir / "model.pt").read_bytes() == finished_weights  # not retrained
    assert "batched_runs" not in histories[0][-1]  # its history is the one it had
    assert histories[1][0].get("batched_runs") is None and histories[1][1]["batched_runs"] == 1
    assert histories[2][0]["batched_runs"] == 2
    alone = _run("vae", digits, settings | {"beta": 0.2}, training, tmp_path / "alone")
    _assert_same(runs[3], alone, histories[3], _alone(alone, digits))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"settings": {"latent_dim": 5}}, "model settings differ"),
        ({"settings": {"eta_enc": 2.0}}, "model settings differ"),
        ({"training": {"lr": 1e-2}}, "training settings differ"),
        ({"training": {"optimizer": "Adafactor"}}, "not an element-wise optimizer"),
        ({"training": {"lr_scheduler": "ReduceLROnPlateau"}}, "ReduceLROnPlateau"),
        ({"training": {"monitor": True}}, "collapse monitor"),
        ({"settings": {"mean_batchnorm": 0.5}}, "BN-VAE"),
    ],
)
def test_refusals_name_the_reason(digits, tmp_path, change, reason):
    settings = {"latent_dim": 4, "backbone": "mlp", "hidden": 16}
    training = TrainConfig(epochs=1)
    first = _run("vae", digits, settings, training, tmp_path / "a")
    other = _run(
        "vae", digits, settings | change.get("settings", {}),
        replace(training, **change.get("training", {})), tmp_path / "b",
    )  # fmt: skip
    pair = [other, first]  # the changed run first: what a run's own settings rule out is read there
    assert reason in batch_refusal(pair)
    with pytest.raises(InputError, match="cannot train as one batch"):
        train_batched(pair, digits, device="cpu", progress=False)


def test_a_diverging_run_stops_the_batch_naming_it(digits, tmp_path):
    settings = {"latent_dim": 4, "encoder_variance": "shared"}
    training = TrainConfig(epochs=2, batch_size=64, lr=1e3, optimizer="SGD", analytic=True)
    runs = [
        _run("vae", digits, settings | {"eta_dec": 1.0}, training, tmp_path / "calm"),
        _run("vae", digits, settings | {"eta_dec": 0.01}, training, tmp_path / "wild"),
    ]
    with pytest.raises(TrainingDivergedError, match="wild"):
        train_batched(runs, digits, device="cpu", progress=False)


def test_sparse_records_and_checkpoints_match_alone(digits, tmp_path):
    settings = {"latent_dim": 4, "encoder_variance": "shared"}
    training = TrainConfig(
        epochs=7, batch_size=2000, lr=1e-2, analytic=True, record_every=3, checkpoint_every=2
    )
    runs = [(settings | {"beta": 0.5}, 0), (settings | {"beta": 2.0}, 0)]
    batch = _compare("vae", digits, runs, training, tmp_path)
    history = read_metrics(batch[0].run_dir / "metrics.jsonl")
    assert [r["epoch"] for r in history] == [2, 3, 4, 6, 7]
