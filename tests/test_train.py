"""The trainer: run directory contents, exact resume, the NaN guard, configuration checks."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from vaecollapse.data import load_dataset
from vaecollapse.errors import InputError
from vaecollapse.models import VAE, VAEConfig
from vaecollapse.train import TrainConfig, TrainingDivergedError, train

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


def test_changed_configuration_is_refused(tmp_path: Path, digits) -> None:
    _run(tmp_path, digits, epochs=1)
    with pytest.raises(InputError, match="different configuration"):
        _run(tmp_path, digits, epochs=2, lr=1e-2)


def test_a_run_stored_before_a_setting_existed_resumes_at_its_default(
    tmp_path: Path, digits
) -> None:
    def forget_noise_scale() -> None:
        path = tmp_path / "config.json"
        stored = json.loads(path.read_text())
        del stored["model"]["noise_scale"]
        path.write_text(json.dumps(stored))

    _run(tmp_path, digits, epochs=1)
    forget_noise_scale()
    assert len(_run(tmp_path, digits, epochs=2)) == 2
    forget_noise_scale()
    with pytest.raises(InputError, match="different configuration"):
        _run(tmp_path, digits, epochs=3, model=replace(MODEL, noise_scale="variance"))


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

    from vaecollapse.data import gaussian_with_spectrum, synthetic_dataset

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
