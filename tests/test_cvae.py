"""The CVAE family: shapes, conditional prior, analytic vs sampled reconstruction, ELBO training
that reaches Theorem 2, and training through the trainer on the quadrant task."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaecollapse.core.data import load_dataset
from vaecollapse.core.errors import InputError
from vaecollapse.core.models import CVAE, CVAEConfig
from vaecollapse.core.theory import cvae_closed_form, cvae_spectrum
from vaecollapse.training.config import TrainConfig
from vaecollapse.training.trainer import train


@pytest.mark.parametrize("backbone", ["linear", "mlp"])
@pytest.mark.parametrize("conditional_prior", [False, True])
def test_shapes(backbone: str, conditional_prior: bool) -> None:
    model = CVAE(
        CVAEConfig(
            x_dim=4,
            y_dim=6,
            latent_dim=3,
            backbone=backbone,
            hidden=8,
            conditional_prior=conditional_prior,
        )
    )
    terms = model(torch.rand(5, 4), torch.rand(5, 6), n_samples=2)
    assert (
        terms.recon.shape == (5,) and terms.kl["z"].shape == (5, 3) and terms.z.shape == (2, 5, 3)
    )
    assert torch.all(terms.kl["z"] >= 0)
    with pytest.raises(InputError):
        model(torch.rand(5, 6), torch.rand(5, 4))


def test_analytic_reconstruction_is_the_expectation() -> None:
    torch.manual_seed(0)
    model = CVAE(CVAEConfig(x_dim=3, y_dim=4, latent_dim=2, encoder_variance="shared"))
    x, y = torch.randn(3, 3), torch.randn(3, 4)
    with torch.no_grad():
        exact = model(x, y, analytic=True).recon
        sampled = model(x, y, n_samples=100_000).recon
    assert torch.allclose(sampled, exact, rtol=2e-2)


def test_elbo_training_reaches_theorem_2() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 5)) * [2, 1.5, 1, 0.7, 0.5]
    y = x[:, :4] @ rng.standard_normal((4, 4)) * 0.5
    y = y + rng.standard_normal((512, 4)) * [1.6, 1.2, 0.8, 0.4]
    x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    model = CVAE(CVAEConfig(x_dim=5, y_dim=4, latent_dim=3, encoder_variance="shared", beta=0.8))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    for _ in range(3000):
        optimizer.zero_grad()
        loss = model(x, y, analytic=True).loss()
        loss.backward()
        optimizer.step()
    theory = cvae_closed_form(cvae_spectrum(x, y), 3, beta=0.8)
    learned = torch.linalg.svdvals(model.decoder.weight[:, :3].detach().double()).numpy()
    assert np.mean(np.abs(learned - theory.singular_values["U1"])) < 0.02
    assert float(loss.detach()) == pytest.approx(theory.loss, rel=1e-4)
    assert theory.active_dims["z"] == 2  # the regime is partial collapse


def test_trainer_handles_paired_data(tmp_path) -> None:
    data = load_dataset("digits-quadrant")
    torch.manual_seed(0)
    model = CVAE(CVAEConfig(x_dim=16, y_dim=48, latent_dim=4, backbone="mlp", hidden=16))
    history = train(
        model, data, TrainConfig(epochs=2, batch_size=128, lr=3e-3), tmp_path, progress=False
    )
    assert len(history) == 2 and history[1]["train_loss"] < history[0]["train_loss"]
    assert "test_loss" in history[-1]
