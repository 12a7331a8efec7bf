"""A pythae VAE, trained for one epoch on MNIST, diagnosed through the adapter: its IWAE agrees
with pythae's own get_nll, and the per-dimension KL and active units equal a computation from
scratch on its encoder's outputs."""

from __future__ import annotations

import pytest
import torch

import vaecollapse
from vaecollapse.core.data import load_dataset
from vaecollapse.core.errors import InputError


@pytest.fixture(scope="module")
def trained(mnist_dir):
    from pythae.models import VAE, VAEConfig

    data = load_dataset("mnist", data_dir=mnist_dir)
    x = data.train.x.reshape(-1, 1, 28, 28)
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=8, reconstruction_loss="bce"))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for start in range(0, len(x), 128):  # one epoch
        loss = model({"data": x[start : start + 128]}).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), data.test.x[:1000].reshape(-1, 1, 28, 28)


def test_iwae_agrees_with_pythaes_get_nll(trained) -> None:
    model, test = trained
    torch.manual_seed(1)
    theirs = model.get_nll(test, n_samples=500, batch_size=500)  # one pass of 500 per image
    ours = vaecollapse.diagnose(model, test, iwae_k=500).iwae
    # two estimates on the same images: their difference is far below the per-image spread
    assert abs(ours.mean - theirs) < 3 * ours.standard_error
    assert abs(ours.mean - theirs) < 0.5  # nats: what K = 500 leaves of the sampling noise


def test_kl_and_active_units_equal_a_computation_from_scratch(trained) -> None:
    model, test = trained
    report = vaecollapse.diagnose(model, test)
    with torch.no_grad():
        out = model.encoder(test)
    mean, logvar = out.embedding.double(), out.log_covariance.double()
    kl = 0.5 * (mean**2 + logvar.exp() - 1 - logvar)
    assert torch.allclose(torch.as_tensor(report.kl_per_dim), kl.mean(0), atol=1e-5)
    assert report.active_units == int((mean.var(0, unbiased=False) > 0.01).sum())


def test_a_pythae_model_without_a_gaussian_prior_is_refused() -> None:
    from pythae.models import AE, AEConfig

    with pytest.raises(InputError, match="supported: VAE"):
        vaecollapse.diagnose(
            AE(AEConfig(input_dim=(1, 8, 8), latent_dim=2)), torch.rand(5, 1, 8, 8)
        )
