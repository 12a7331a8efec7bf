"""IWAE and theory-vs-learned for the CVAE and the MHVAE."""

from __future__ import annotations

import torch

from vaecollapse.core.data import gaussian_with_spectrum, synthetic_dataset
from vaecollapse.core.diagnostics import (
    importance_log_likelihood,
    model_log_weights,
    theory_comparison,
)
from vaecollapse.core.models import CVAE, MHVAE, CVAEConfig, MHVAEConfig


def _shrunk(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.5)
    return model


def test_cvae_iwae_with_one_sample_is_the_elbo() -> None:
    torch.manual_seed(0)
    model = _shrunk(CVAE(CVAEConfig(x_dim=3, y_dim=4, latent_dim=2, encoder_variance="shared")))
    x, y = torch.randn(4000, 3), torch.randn(4000, 4)
    torch.manual_seed(1)
    estimate = importance_log_likelihood(model_log_weights(model), x, y, k=1)
    with torch.no_grad():
        elbo = -float(model(x, y, analytic=True).loss())
    assert abs(estimate.mean - elbo) < 3 * estimate.standard_error
    many = importance_log_likelihood(model_log_weights(model), x[:300], y[:300], k=200)
    assert many.mean > float(estimate.values[:300].mean())


def test_mhvae_iwae_with_one_sample_is_the_elbo() -> None:
    torch.manual_seed(0)
    config = MHVAEConfig(
        data_dim=4, latent_dims=(3, 2), latent_dim=3, encoder_variances=("fixed", "shared"),
        sigmas=(0.8, None), eta_dec=0.9,
    )  # fmt: skip
    model = _shrunk(MHVAE(config))
    x = torch.randn(4000, 4)
    torch.manual_seed(1)
    estimate = importance_log_likelihood(model_log_weights(model), x, k=1)
    with torch.no_grad():
        elbo = -float(model(x, analytic=True).loss())  # β1 = β2 = 1: the true ELBO
    assert abs(estimate.mean - elbo) < 3 * estimate.standard_error


def test_mhvae_and_cvae_theory_comparison_after_training() -> None:
    x = gaussian_with_spectrum(512, [9, 4, 2, 0.8, 0.3], seed=0)
    data = synthetic_dataset("spectrum", x)
    torch.manual_seed(0)
    mhvae = MHVAE(
        MHVAEConfig(
            data_dim=5, latent_dim=3, encoder_variances=("fixed", "shared"), sigmas=(0.7, None),
            betas=(1.0, 1.5), eta_dec=0.8,
        )
    )  # fmt: skip
    optimizer = torch.optim.Adam(mhvae.parameters(), lr=3e-2)
    for _ in range(3000):
        optimizer.zero_grad()
        mhvae(data.train.x, analytic=True).loss().backward()
        optimizer.step()
    comparison = theory_comparison(mhvae, data)
    assert set(comparison["maps"]) == {"V1", "U1", "W2", "U2"}
    assert all(v["d_ma"] < 0.02 for v in comparison["maps"].values()), comparison["maps"]
    assert comparison["encoder_std"]["z2"]["d_ma"] < 0.02

    rng = torch.Generator().manual_seed(0)
    xc = torch.randn(512, 4, generator=rng) * torch.tensor([2.0, 1.5, 1.0, 0.5])
    yc = xc[:, :3] * 0.5 + torch.randn(512, 3, generator=rng) * torch.tensor([1.6, 1.0, 0.4])
    paired = synthetic_dataset("pairs", xc.numpy(), yc.numpy())
    torch.manual_seed(0)
    cvae = CVAE(CVAEConfig(x_dim=4, y_dim=3, latent_dim=3, encoder_variance="shared", beta=0.8))
    optimizer = torch.optim.Adam(cvae.parameters(), lr=3e-2)
    for _ in range(3000):
        optimizer.zero_grad()
        cvae(paired.train.x, paired.train.y, analytic=True).loss().backward()
        optimizer.step()
    comparison = theory_comparison(cvae, paired)
    assert comparison["maps"]["U1"]["d_ma"] < 0.02 and comparison["encoder_std"]["z"]["d_ma"] < 0.02
