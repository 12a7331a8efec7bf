"""The hierarchical VAE: shapes per level, the analytic ELBO against Monte Carlo and against the
theory engine's independent objective, and ELBO training that reaches Theorem 3's optimum."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaecollapse.core.data import gaussian_with_spectrum
from vaecollapse.core.errors import InputError
from vaecollapse.core.models import MHVAE, MHVAEConfig
from vaecollapse.core.theory import mhvae_closed_form, vae_spectrum
from vaecollapse.core.theory.objective import hierarchical_loss


def _perturbed(config: MHVAEConfig, seed: int = 0) -> MHVAE:
    torch.manual_seed(seed)
    model = MHVAE(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    return model


@pytest.mark.parametrize("levels", [2, 3])
@pytest.mark.parametrize("backbone", ["linear", "mlp"])
def test_shapes_per_level(levels: int, backbone: str) -> None:
    dims = (4, 3, 2)[:levels]
    model = MHVAE(
        MHVAEConfig(
            data_dim=7,
            latent_dim=1,
            latent_dims=dims,
            levels=levels,
            backbone=backbone,
            hidden=8,
            encoder_variances=("fixed",) + ("amortized",) * (levels - 1),
            sigmas=(0.5,) + (None,) * (levels - 1),
            betas=tuple(float(i + 1) for i in range(levels)),
        )
    )
    terms = model(torch.rand(5, 7), n_samples=3)
    assert terms.recon.shape == (5,) and terms.z.shape == (3, 5, dims[0])
    for level, dim in enumerate(dims):
        name = f"z{level + 1}"
        assert terms.kl[name].shape == (5, dim) and terms.mean[name].shape == (5, dim)
        assert terms.betas[name] == level + 1
    assert torch.allclose(terms.logvar["z1"], torch.full((5, dims[0]), 2 * np.log(0.5)))
    assert terms.loss().ndim == 0


@pytest.mark.parametrize("levels", [2, 3])
def test_analytic_terms_are_the_expectation_of_the_sampled_ones(levels: int) -> None:
    config = MHVAEConfig(
        data_dim=6,
        latent_dim=3,
        levels=levels,
        encoder_variances=("amortized",) + ("shared",) * (levels - 1),
    )
    model = _perturbed(config)
    x = torch.randn(4, 6)
    torch.manual_seed(1)
    with torch.no_grad():
        exact, sampled = model(x, analytic=True), model(x, n_samples=200_000)
    assert torch.allclose(sampled.recon, exact.recon, rtol=5e-3)
    for name, value in exact.kl.items():
        assert torch.allclose(sampled.kl[name], value, rtol=0.02, atol=0.02), name
        assert torch.allclose(sampled.mean[name], exact.mean[name], atol=0.02), name


@pytest.mark.parametrize("learn_eta_dec", [False, True])
def test_analytic_loss_equals_the_theory_objective(learn_eta_dec: bool) -> None:
    """The model's exact ELBO, averaged over data, is the theory engine's second-moment objective
    (written independently) for the same matrices."""
    config = MHVAEConfig(
        data_dim=5,
        latent_dim=3,
        latent_dims=(3, 2),
        encoder_variances=("fixed", "shared"),
        sigmas=(0.8, None),
        betas=(1.3, 0.7),
        eta_enc=0.9,
        eta_dec=0.6,
        learn_eta_dec=learn_eta_dec,
    )
    model = _perturbed(config, seed=3).double()
    x = torch.randn(200, 5, dtype=torch.float64)
    with torch.no_grad():
        ours = model(x, analytic=True).loss()
        heads = [encoder.head for encoder in model.encoders]
        variances = [
            torch.exp(h(torch.zeros(1, h.mean.in_features, dtype=x.dtype))[1][0]) for h in heads
        ]
        theirs = hierarchical_loss(
            x.T @ x / len(x),
            [h.mean.weight for h in heads],
            [d.weight for d in model.decoders],
            variances,
            [1.3, 0.7],
            0.9,
            model.log_eta_dec,
        )
    assert float(ours) == pytest.approx(float(theirs), rel=1e-10)


def _sorted_mad(a: np.ndarray, b: np.ndarray) -> float:
    n = max(len(a), len(b))
    a, b = (np.sort(np.pad(v, (0, n - len(v))))[::-1] for v in (a, b))
    return float(np.mean(np.abs(a - b)))


@pytest.mark.parametrize(("beta2", "sigma2"), [(1.5, None), (0.8, 0.6)])
def test_elbo_training_reaches_theorem_3_and_5(beta2: float, sigma2) -> None:
    torch.manual_seed(0)
    x = torch.tensor(gaussian_with_spectrum(512, [9, 4, 2, 0.8, 0.3], seed=0), dtype=torch.float32)
    sigma1 = 0.7
    model = MHVAE(
        MHVAEConfig(
            data_dim=5,
            latent_dim=3,
            encoder_variances=("fixed", "shared" if sigma2 is None else "fixed"),
            sigmas=(sigma1, sigma2),
            betas=(1.0, beta2),
            eta_dec=0.8,
        )
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    for _ in range(3000):
        optimizer.zero_grad()
        loss = model(x, analytic=True).loss()
        loss.backward()
        optimizer.step()
    theory = mhvae_closed_form(
        vae_spectrum(x), 3, 3, beta1=1.0, beta2=beta2, eta_dec=0.8, sigma1=sigma1, sigma2=sigma2
    )
    a = (x.T @ x / len(x)).double()
    evals, evecs = torch.linalg.eigh(a)
    root_a = evecs @ torch.diag(evals.clamp_min(0).sqrt()) @ evecs.T
    w1, w2 = (e.head.mean.weight.detach().double() for e in model.encoders)
    u1, u2 = (d.weight.detach().double() for d in model.decoders)
    learned = {
        "V1": w1 @ root_a,
        "U1": u1,
        "W2": w2,
        "U2": u2,
    }
    for name, matrix in learned.items():
        values = torch.linalg.svdvals(matrix).numpy()
        assert _sorted_mad(values, theory.singular_values[name]) < 0.02, name
    assert float(loss.detach()) == pytest.approx(theory.loss, rel=1e-3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"levels": 1},
        {"betas": (1.0,)},
        {"betas": (1.0, 0.0)},
        {"latent_dims": (2, 0)},
        {"encoder_variances": ("fixed", "shared"), "sigmas": (None, None)},
        {"encoder_variances": ("shared", "never")},
    ],
)
def test_bad_configurations(kwargs) -> None:
    with pytest.raises(InputError):
        MHVAE(MHVAEConfig(data_dim=4, latent_dim=2, **kwargs))


def test_analytic_needs_data_independent_upper_variances() -> None:
    model = MHVAE(MHVAEConfig(data_dim=4, latent_dim=2))
    with pytest.raises(InputError, match="data-independent"):
        model(torch.zeros(3, 4), analytic=True)


@torch.no_grad()
def test_reconstruct_passes_x_through_the_top_level_and_back() -> None:
    """Identity maps with negligible noise: the reconstruction through z2 returns x; a
    reconstruction that skipped the top level, or drew it from the prior, would not."""
    config = MHVAEConfig(
        data_dim=3,
        latent_dim=3,
        encoder_variance="fixed",
        sigma=1e-4,
        eta_dec=1e-4,
        eta_enc=1.0,
    )
    model = MHVAE(config)
    for layer in (*(e.head.mean for e in model.encoders), *model.decoders):
        layer.weight.copy_(torch.eye(3))
    x = torch.randn(5, 3)
    assert torch.allclose(model.reconstruct(x), x, atol=1e-2)
    model.encoders[1].head.mean.weight.mul_(0.5)  # z2 = z1 / 2, decoded back unchanged
    assert torch.allclose(model.reconstruct(x), x / 2, atol=1e-2)
    assert model.generate(5, torch.Generator().manual_seed(0)).shape == (5, 3)


def test_reconstruct_draws_every_level_from_the_given_generator() -> None:
    model = MHVAE(MHVAEConfig(data_dim=4, latent_dim=2, backbone="mlp", hidden=8))
    x = torch.randn(3, 4)
    first, again, other = (
        model.reconstruct(x, torch.Generator().manual_seed(seed)) for seed in (0, 0, 1)
    )
    assert torch.equal(first, again) and not torch.allclose(first, other)
