"""The VAE family: shapes, train/eval behaviour, analytic vs sampled ELBO, and ELBO training that
reaches the theory engine's optimum."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from vaecollapse.core.data import gaussian_with_spectrum
from vaecollapse.core.errors import InputError
from vaecollapse.core.models import VAE, GaussianHead, VAEConfig
from vaecollapse.core.models.latent import TANH_VARIANCE_FLOOR
from vaecollapse.core.theory import vae_closed_form, vae_spectrum

VARIANTS = [
    ("linear", "amortized", None),
    ("linear", "shared", None),
    ("linear", "fixed", 0.5),
    ("mlp", "amortized", None),
    ("mlp", "amortized-tanh", None),
    ("mlp", "shared", None),
    ("mlp", "fixed", (0.5, 1.0, 2.0)),
]


@pytest.mark.parametrize(("backbone", "variance", "sigma"), VARIANTS)
def test_shapes_and_unreduced_terms(backbone: str, variance: str, sigma) -> None:
    model = VAE(
        VAEConfig(
            data_dim=7,
            latent_dim=3,
            backbone=backbone,
            hidden=8,
            depth=2,
            encoder_variance=variance,
            sigma=sigma,
        )
    )
    terms = model(torch.rand(5, 7), n_samples=4)
    assert terms.recon.shape == (5,) and terms.kl["z"].shape == (5, 3)
    assert terms.z.shape == (4, 5, 3) and terms.mean["z"].shape == (5, 3)
    assert terms.per_sample_loss().shape == (5,) and terms.loss().ndim == 0
    if variance == "fixed":
        expected = torch.log(torch.as_tensor(sigma, dtype=torch.float32) ** 2).expand(5, 3)
        assert torch.allclose(terms.logvar["z"], expected)


def test_train_step_changes_weights_eval_does_not() -> None:
    torch.manual_seed(0)
    model = VAE(VAEConfig(data_dim=6, latent_dim=2, backbone="mlp", hidden=8))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.rand(16, 6)
    model.eval()
    with torch.no_grad():
        model(x)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    model.train()
    optimizer.zero_grad()
    model(x).loss().backward()
    optimizer.step()
    changed = [k for k, v in model.state_dict().items() if not torch.equal(before[k], v)]
    assert any("encoder_body" in k for k in changed) and any("decoder" in k for k in changed)
    assert any("head.logvar" in k for k in changed)


def test_analytic_reconstruction_is_the_expectation_of_the_sampled_one() -> None:
    torch.manual_seed(1)
    model = VAE(VAEConfig(data_dim=5, latent_dim=3, encoder_variance="shared"))
    x = torch.randn(4, 5)
    with torch.no_grad():
        exact = model(x, analytic=True).recon
        sampled = model(x, n_samples=100_000).recon
    assert torch.allclose(sampled, exact, rtol=2e-2)
    with pytest.raises(InputError):
        VAE(VAEConfig(data_dim=5, latent_dim=2, backbone="mlp"))(x, analytic=True)


def test_tanh_variance_is_the_square_of_a_tanh_and_at_most_one() -> None:
    head = GaussianHead(4, 3, "amortized-tanh")
    with torch.no_grad():
        head.tanh_std.weight.zero_()
        head.tanh_std.bias.copy_(torch.atanh(torch.tensor([0.3, -0.3, 0.0])))
    _, logvar = head(torch.randn(6, 4))
    expected = torch.log(torch.tensor([0.09, 0.09, TANH_VARIANCE_FLOOR]))
    assert torch.allclose(logvar, expected.expand(6, 3), rtol=1e-5)
    with torch.no_grad():
        head.tanh_std.bias.fill_(50.0)
    assert torch.all(head(torch.randn(6, 4))[1] <= 0)
    with torch.no_grad():
        head.tanh_std.bias.fill_(0.5)
    head(torch.randn(6, 4))[1].sum().backward()
    assert head.tanh_std.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("noise_scale, drawn_std", [("std", 0.5), ("variance", 0.25)])
def test_noise_scale_sets_the_drawn_spread_not_the_kl(noise_scale: str, drawn_std: float) -> None:
    config = VAEConfig(data_dim=3, latent_dim=2, encoder_variance="fixed", sigma=0.5)
    torch.manual_seed(0)
    model = VAE(replace(config, noise_scale=noise_scale))
    torch.manual_seed(0)
    reference = VAE(config)
    x = torch.randn(5, 3)
    with torch.no_grad():
        terms = model(x, n_samples=20_000)
        spread = (terms.z - terms.mean["z"]).std(dim=0)
        assert torch.allclose(spread, torch.full_like(spread, drawn_std), rtol=0.03)
        assert torch.equal(terms.kl["z"], reference(x).kl["z"])


def _sorted_mean_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(np.sort(a)[::-1] - np.sort(b)[::-1])))


@pytest.mark.parametrize(("variance", "sigma"), [("shared", None), ("fixed", 0.7)])
def test_elbo_training_reaches_the_theory(variance: str, sigma) -> None:
    """A linear VAE trained by the ELBO converges to the closed form's singular values."""
    torch.manual_seed(0)
    x = torch.tensor(
        gaussian_with_spectrum(512, [9, 4, 2, 0.8, 0.3, 0.1], seed=0), dtype=torch.float32
    )
    model = VAE(
        VAEConfig(data_dim=6, latent_dim=4, encoder_variance=variance, sigma=sigma, beta=1.5)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    for _ in range(3000):
        optimizer.zero_grad()
        loss = model(x, analytic=True).loss()
        loss.backward()
        optimizer.step()
    theory = vae_closed_form(vae_spectrum(x), 4, beta=1.5, sigma=sigma)
    a = (x.T @ x / len(x)).double()
    evals, evecs = torch.linalg.eigh(a)
    root_a = evecs @ torch.diag(evals.clamp_min(0).sqrt()) @ evecs.T
    learned_v = torch.linalg.svdvals(model.head.mean.weight.detach().double() @ root_a).numpy()
    learned_u = torch.linalg.svdvals(model.decoder.weight.detach().double()).numpy()
    assert _sorted_mean_abs_difference(learned_u, theory.singular_values["U"]) < 0.02
    assert _sorted_mean_abs_difference(learned_v, theory.singular_values["V"]) < 0.02
    assert float(loss.detach()) == pytest.approx(theory.loss, rel=1e-4)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"encoder_variance": "fixed"},
        {"encoder_variance": "fixed", "sigma": -1.0},
        {"encoder_variance": "sometimes"},
        {"backbone": "transformer"},
        {"backbone": "mlp", "activation": "gelu"},
        {"beta": 0.0},
        {"eta_dec": 0.0},
        {"noise_scale": "var"},
    ],
)
def test_bad_configurations(kwargs) -> None:
    with pytest.raises(InputError):
        VAE(VAEConfig(data_dim=4, latent_dim=2, **kwargs))


def test_wrong_input_shape() -> None:
    with pytest.raises(InputError, match=r"\(B, 4\)"):
        VAE(VAEConfig(data_dim=4, latent_dim=2))(torch.zeros(3, 5))


def test_an_mlp_encoder_over_a_linear_decoder_has_the_exact_expected_reconstruction() -> None:
    """Lucas et al.'s encoders over one linear decoder: the decoder is bias-free and linear, and
    the analytic reconstruction is the expectation of the sampled one (the MLP encoder's
    amortised variance included)."""
    torch.manual_seed(0)
    config = VAEConfig(
        data_dim=6, latent_dim=3, backbone="mlp", hidden=8, linear_decoder=True,
        learn_eta_dec=True, eta_dec=0.7,
    )  # fmt: skip
    model = VAE(config)
    assert isinstance(model.decoder, torch.nn.Linear) and model.decoder.bias is None
    assert isinstance(model.encoder_body, torch.nn.Sequential)  # the MLP encoder stays
    x = torch.randn(4, 6)
    with torch.no_grad():
        exact = model(x, analytic=True).recon
        sampled = model(x, n_samples=200_000).recon
    assert torch.allclose(sampled, exact, rtol=5e-3)
    with pytest.raises(InputError, match="linear decoder"):
        VAE(replace(config, linear_decoder=False))(x, analytic=True)
    with pytest.raises(InputError, match="tanh"):
        VAEConfig(data_dim=6, latent_dim=3, backbone="mlp", linear_decoder=True, bounded_means=True)
