"""The trainer: run directory contents, exact resume, the NaN guard, configuration checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vaecollapse.core.data import load_dataset
from vaecollapse.core.errors import InputError
from vaecollapse.core.models import VAE, VAEConfig
from vaecollapse.training.config import TrainConfig
from vaecollapse.training.loop import TrainingDivergedError
from vaecollapse.training.trainer import train

MODEL = VAEConfig(data_dim=64, latent_dim=4, backbone="mlp", hidden=16)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _run(directory: Path, digits, epochs: int, model=MODEL, **overrides) -> list[dict]:
    torch.manual_seed(123)  # model initialisation; the trainer seeds everything after it
    config = TrainConfig(
        **({"epochs": epochs, "batch_size": 64, "lr": 3e-3, "seed": 7} | overrides)
    )
    return train(
        VAE(model), digits, config, directory, run_config={"model": model.__dict__}, progress=False
    )


def test_run_directory_and_learning(tmp_path: Path, digits) -> None:
    history = _run(tmp_path, digits, epochs=3)
    assert {p.name for p in tmp_path.iterdir()} == {
        ".vaecollapse.lock",
        ".vaecollapse-folder.json",
        "config.json",
        "metrics.jsonl",
        "checkpoint.pt",
        "model.pt",
    }
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3] and lines == json.loads(json.dumps(history))
    for record in lines:
        assert {"train_loss", "test_loss", "recon", "kl"} <= set(record) and "z" in record["kl"]
        assert record["train_loss"] == pytest.approx(record["recon"] + record["kl"]["z"], rel=1e-6)
    assert lines[-1]["train_loss"] < lines[0]["train_loss"]
    stored = json.loads((tmp_path / "config.json").read_text())
    assert stored["train"]["epochs"] == 3 and stored["model"]["latent_dim"] == 4


def test_resume_is_bit_identical(tmp_path: Path, digits) -> None:
    straight = _run(tmp_path / "a", digits, epochs=4)
    _run(tmp_path / "b", digits, epochs=2)
    resumed = _run(tmp_path / "b", digits, epochs=4)  # same command, larger --epochs
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(resumed) == strip(straight)
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_sparse_checkpoints_save_the_last_epoch_and_resume_exactly(
    tmp_path: Path, digits, monkeypatch
) -> None:
    import vaecollapse.training.loop as loop

    saved = []
    write = loop.write_metrics
    monkeypatch.setattr(
        loop,
        "write_metrics",
        lambda path, rows: (saved.append(len(rows)), write(path, rows)),
    )
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    straight = _run(tmp_path / "a", digits, epochs=5)
    _run(tmp_path / "b", digits, epochs=2, checkpoint_every=3)  # a checkpoint at epoch 2 only
    checkpoint = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 2 and len(checkpoint["history"]) == 2
    # resumed with another frequency (it does not change the result): saves at 3 and 5 only
    saved.clear()
    resumed = _run(tmp_path / "b", digits, epochs=5, checkpoint_every=3)
    assert saved == [3, 5] and strip(resumed) == strip(straight)
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4, 5]
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    _run(tmp_path / "b", digits, epochs=6, checkpoint_every=1)  # another frequency resumes


def test_sparse_records_keep_checkpoint_epochs_and_all_the_seconds(
    tmp_path: Path, digits, monkeypatch
) -> None:
    import types

    import vaecollapse.training.loop as loop

    straight = _run(tmp_path / "a", digits, epochs=7)
    ticks = iter(range(10**6))  # a clock on which every epoch lasts one second
    monkeypatch.setattr(loop, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))
    sparse = _run(tmp_path / "b", digits, epochs=7, record_every=3, checkpoint_every=2)
    assert [r["epoch"] for r in sparse] == [2, 3, 4, 6, 7]  # every 3rd, each checkpoint, the last
    assert [r["seconds"] for r in sparse] == [2, 1, 1, 2, 1]  # the epochs since the record before
    by_epoch = {r["epoch"]: r for r in straight}
    for record in sparse:
        assert record["train_loss"] == by_epoch[record["epoch"]]["train_loss"]
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [2, 3, 4, 6, 7]
    # a checkpoint whose history does not reach its epoch is refused, not resumed
    checkpoint = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    torch.save(
        checkpoint | {"history": checkpoint["history"][:-1]}, tmp_path / "b" / "checkpoint.pt"
    )
    with pytest.raises(InputError, match="does not end there"):
        _run(tmp_path / "b", digits, epochs=8, record_every=3, checkpoint_every=2)


def test_changed_configuration_is_refused(tmp_path: Path, digits) -> None:
    _run(tmp_path, digits, epochs=1)
    with pytest.raises(InputError, match="different configuration"):
        _run(tmp_path, digits, epochs=2, lr=1e-2)


def test_a_stored_run_that_lacks_a_setting_is_refused_not_resumed_at_a_guess(
    tmp_path: Path, digits
) -> None:
    _run(tmp_path, digits, epochs=1)
    path = tmp_path / "config.json"
    stored = json.loads(path.read_text())
    del stored["model"]["noise_scale"]
    path.write_text(json.dumps(stored))
    with pytest.raises(InputError, match="different configuration"):
        _run(tmp_path, digits, epochs=2)
    assert json.loads(path.read_text()) == stored  # nothing changed


def test_nan_guard_keeps_the_last_good_checkpoint(tmp_path: Path, digits) -> None:
    _run(tmp_path, digits, epochs=1)
    good = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    poisoned = digits.train.x.clone()
    poisoned[5] = float("nan")
    bad = type(digits)(
        **{**digits.__dict__, "train": type(digits.train)(poisoned, None, digits.train.labels)}
    )
    with pytest.raises(TrainingDivergedError, match=r"epoch 2, step \d+"):
        _run(tmp_path, bad, epochs=3)
    kept = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert kept["epoch"] == good["epoch"] == 1
    assert all(torch.equal(kept["model"][k], good["model"][k]) for k in good["model"])


@pytest.mark.parametrize(
    "kwargs", [{"epochs": 0}, {"lr": -1.0}, {"batch_size": 0}, {"kl_warmup_epochs": -1}]
)
def test_bad_train_config(kwargs) -> None:
    with pytest.raises(InputError):
        TrainConfig(**kwargs)


def test_learnable_decoder_std_reaches_the_ppca_likelihood(tmp_path: Path) -> None:
    """Lucas et al.: the linear VAE with learnable η_dec is pPCA. Trained by the trainer, its exact
    ELBO reaches scikit-learn's pPCA log-likelihood (an outside oracle; see the theory tests for
    the n − 1 rescaling) and its η_dec² sklearn's noise variance."""
    import math

    import numpy as np
    from sklearn.decomposition import PCA

    from vaecollapse.core.data import gaussian_with_spectrum, synthetic_dataset

    x = gaussian_with_spectrum(500, [6.0, 3.0, 1.0, 0.4, 0.3, 0.2], seed=4)
    x = x - x.mean(0)
    n = len(x)
    oracle = PCA(n_components=2).fit(x * math.sqrt((n - 1) / n))
    config = VAEConfig(data_dim=6, latent_dim=2, encoder_variance="shared", learn_eta_dec=True)
    torch.manual_seed(0)
    model = VAE(config)
    train(
        model,
        synthetic_dataset("ppca", x),
        TrainConfig(epochs=300, batch_size=100, lr=1e-2, analytic=True),
        tmp_path,
        progress=False,
    )
    with torch.no_grad():
        elbo = -float(model(torch.tensor(x, dtype=torch.float32), analytic=True).loss())
    assert elbo == pytest.approx(oracle.score(x), abs=2e-3 * abs(oracle.score(x)))
    assert elbo <= oracle.score(x) + 1e-4  # the ELBO is a lower bound
    eta2 = float(torch.exp(2 * model.log_eta_dec.detach()))
    assert eta2 == pytest.approx(oracle.noise_variance_, rel=2e-2)
    assert np.isfinite(eta2)


def test_any_torch_optimizer_and_scheduler_by_name_resume_exactly(tmp_path: Path, digits) -> None:
    chosen = {
        "optimizer": "SGD",
        "optimizer_args": {"momentum": 0.9, "nesterov": True},
        "lr_scheduler": "StepLR",
        "lr_scheduler_args": {"step_size": 2, "gamma": 0.5},
    }
    straight = _run(tmp_path / "a", digits, epochs=5, **chosen)
    assert [r["lr"] for r in straight] == pytest.approx([3e-3, 3e-3, 1.5e-3, 1.5e-3, 7.5e-4])
    _run(tmp_path / "b", digits, epochs=3, **chosen)
    resumed = _run(tmp_path / "b", digits, epochs=5, **chosen)  # scheduler state restored
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(resumed) == strip(straight)
    stored = json.loads((tmp_path / "a" / "config.json").read_text())["train"]
    assert stored["optimizer"] == "SGD" and stored["lr_scheduler_args"] == {
        "step_size": 2,
        "gamma": 0.5,
    }


def test_optimizers_take_torchs_fused_kernels_unless_told_otherwise() -> None:
    from vaecollapse.training.optimizers import build_optimizer

    weights = [torch.nn.Parameter(torch.randn(3, 4)), torch.nn.Parameter(torch.randn(4))]
    assert build_optimizer("Adam", weights, 1e-3, None).defaults["fused"] is True
    assert build_optimizer("SGD", weights, 1e-3, {"momentum": 0.9}).defaults["fused"] is True
    chosen = build_optimizer("Adam", weights, 1e-3, {"foreach": False})
    assert chosen.defaults["foreach"] is False and not chosen.defaults["fused"]
    # an optimizer without fused kernels takes the multi-tensor ones
    assert build_optimizer("RMSprop", weights, 1e-3, None).defaults["foreach"] is True
    # and the fused update is the same update, to float rounding
    for name in ("Adam", "AdamW", "SGD"):
        steps = {}
        for kernel in ("fused", "foreach"):
            params = [torch.nn.Parameter(torch.ones(5) * k) for k in (1.0, -2.0)]
            optimizer = build_optimizer(name, params, 0.1, {kernel: True})
            for step in range(3):
                for p in params:
                    p.grad = torch.arange(5.0) - step
                optimizer.step()
            steps[kernel] = torch.cat([p.detach() for p in params])
        torch.testing.assert_close(steps["fused"], steps["foreach"], rtol=1e-6, atol=1e-6)


def test_gradient_clipping_bounds_every_step(tmp_path: Path, digits) -> None:
    # plain SGD with lr 1: a clipped step moves the weights by at most the clipping norm
    torch.manual_seed(123)
    model = VAE(MODEL)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    config = TrainConfig(epochs=1, batch_size=64, lr=1.0, optimizer="SGD", clip_grad_norm=1e-3)
    train(model, digits, config, tmp_path, run_config={"model": MODEL.__dict__}, progress=False)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    steps = -(-len(digits.train) // 64)
    assert float((after - before).norm()) <= steps * 1e-3 * 1.001
    assert float((after - before).norm()) > 0.5 * 1e-3  # it did train


def test_an_optimizer_made_in_python_is_used_and_recorded(tmp_path: Path, digits) -> None:
    torch.manual_seed(123)
    model = VAE(MODEL)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
    history = train(
        model, digits, TrainConfig(epochs=2), tmp_path, run_config={"model": MODEL.__dict__},
        progress=False, optimizer=optimizer, lr_scheduler=scheduler,
    )  # fmt: skip
    assert [r["lr"] for r in history] == pytest.approx([2e-3, 1.8e-3])
    stored = json.loads((tmp_path / "config.json").read_text())["train"]
    assert stored["optimizer"] == "AdamW" and stored["lr"] == 2e-3
    assert stored["optimizer_args"]["weight_decay"] == 0.05
    assert stored["lr_scheduler"] == "ExponentialLR"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"optimizer": "SGD", "optimizer_args": {"momentum": "lots"}}, "does not accept"),
        ({"optimizer": "Adam", "optimizer_args": {"nonsense": 1}}, "does not accept"),
        ({"lr_scheduler": "StepLR"}, "does not accept"),  # step_size is required
        ({"lr_scheduler_args": {"gamma": 0.5}}, "without an lr_scheduler"),
    ],
)
def test_bad_optimizer_settings_are_refused_before_training(
    tmp_path: Path, digits, overrides, message
) -> None:
    with pytest.raises(InputError, match=message):
        _run(tmp_path / "run", digits, epochs=1, **overrides)
    assert not (tmp_path / "run").exists()
