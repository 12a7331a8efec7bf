"""The linear theory under remedies: δ-VAE's capped variance (closed form against a direct
minimisation, and against trained linear models), KL warm-up leaving the optimum unchanged, and
the remedies the theory does not cover refused."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize

from vaecollapse.core.data import load_dataset
from vaecollapse.core.diagnostics.linear import theory_comparison
from vaecollapse.core.errors import InputError
from vaecollapse.core.models import VAEConfig
from vaecollapse.core.remedies import committed_variance_ratio
from vaecollapse.core.theory import predict, predict_for_config
from vaecollapse.core.theory.closed_form import _vae_modes

from .linear_fits import train_to_optimum


def _mode_objective(params, theta, beta, eta_enc, eta_dec):
    omega, lam, log_std = params
    std2 = math.exp(2 * log_std)
    fit = ((omega * lam - theta) ** 2 + omega**2 * std2) / (2 * eta_dec**2)
    kl = 0.5 * (std2 / eta_enc**2 + lam**2 / eta_enc**2 - 1 - math.log(std2 / eta_enc**2))
    return fit + beta * kl


@pytest.mark.parametrize(("beta", "eta_enc", "eta_dec", "rate"), [
    (1.0, 1.0, 1.0, 0.3), (0.5, 1.5, 0.8, 0.05), (2.0, 0.7, 0.6, 0.5),
])  # fmt: skip
def test_capped_modes_are_the_direct_minimum(beta, eta_enc, eta_dec, rate) -> None:
    ceiling = committed_variance_ratio(rate) * eta_enc**2
    # modes from far above the free threshold √β·η_dec to far below it
    theta_all = np.array([4.0, 2.0, 1.3, 1.0, 0.8, 0.6, 0.4, 0.2]) * math.sqrt(beta) * eta_dec
    theta, omega, lam, std, _ = _vae_modes(theta_all, 8, beta, eta_enc, eta_dec, None, ceiling)
    assert np.all(std <= math.sqrt(ceiling) * (1 + 1e-12))
    capped = 0
    for i in range(8):
        best = None
        for start in ([1.0, 1.0, -0.5], [0.1, -0.1, -2.0], [2.0, 0.5, -1.0]):
            found = minimize(
                _mode_objective, start, args=(theta[i], beta, eta_enc, eta_dec), method="L-BFGS-B",
                bounds=[(None, None), (None, None), (None, 0.5 * math.log(ceiling))],
                options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 20000},
            )  # fmt: skip
            best = found if best is None or found.fun < best.fun else best
        closed = _mode_objective([omega[i], lam[i], math.log(std[i])], theta[i], beta, eta_enc,
                                 eta_dec)  # fmt: skip
        assert closed <= best.fun + 1e-9  # nothing under the cap does better
        assert abs(best.x[0] * best.x[1]) == pytest.approx(omega[i] * lam[i], abs=1e-4)
        assert math.exp(best.x[2]) == pytest.approx(std[i], rel=1e-4)
        capped += bool(std[i] == pytest.approx(math.sqrt(ceiling)))
    assert 0 < capped < 8  # both kinds of mode were checked


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _fit(digits, tmp_path: Path, config: VAEConfig, **train_settings) -> dict:
    """A linear VAE trained to its optimum in 1,200 epochs, compared with the theory
    (docs/theory.md's D_MA per map)."""
    return theory_comparison(train_to_optimum(digits, config, tmp_path, 1200, **train_settings),
                             digits)  # fmt: skip


def test_delta_vae_trained_linear_model_reaches_the_capped_optimum(digits, tmp_path) -> None:
    config = VAEConfig(data_dim=64, latent_dim=8, encoder_variance="shared", delta_rate=0.3)
    free = predict("vae", digits, 8).optimum.active_dims["z"]
    comparison = _fit(digits, tmp_path, config)
    # the cap makes five more modes worth decoding (measured D_MA ≈ 0.01 at 800 epochs, 0.005
    # at 1500: the bar is the theory tests' 0.02)
    assert (free, comparison["predicted_active"]["z"]) == (1, 6)
    assert all(v["d_ma"] < 0.02 for v in comparison["maps"].values()), comparison["maps"]
    assert comparison["encoder_std"]["z"]["d_ma"] < 0.02


def test_kl_warmup_ends_at_the_same_optimum(digits, tmp_path) -> None:
    # a KL weight left below 0.70 would decode mode 2 (θ = 0.837) as well
    config = VAEConfig(data_dim=64, latent_dim=8, encoder_variance="shared")
    comparison = _fit(digits, tmp_path, config, kl_warmup_epochs=300)
    assert comparison["predicted_active"]["z"] == 1
    assert all(v["d_ma"] < 0.02 for v in comparison["maps"].values()), comparison["maps"]
    assert comparison["encoder_std"]["z"]["d_ma"] < 0.02


def test_remedies_outside_the_theory_are_refused(digits) -> None:
    with pytest.raises(InputError, match="closed form for the VAE and CVAE only"):
        predict("mhvae", digits, 4, delta_rate=0.1)
    with pytest.raises(InputError, match="closed form for the VAE and CVAE only"):
        predict("vae", digits, 4, delta_rate=0.1, solver="numeric")
    with pytest.raises(InputError, match="BN-VAE"):
        predict_for_config(VAEConfig(data_dim=64, latent_dim=4, mean_batchnorm=0.5), digits)
    with pytest.raises(InputError, match="learnable"):
        predict("vae", digits, 4, sigma=0.5, delta_rate=0.1)
