"""When does each latent dimension collapse? Per-mode thresholds, what-ifs and phase tables.

For VAE-type models mode i is active iff θ_i > √β · η_dec · σ'_i / η_enc (fixed Σ, σ'_i the i-th
smallest fixed std) or θ_i > √β · η_dec (learnable Σ); a CVAE behaves as a VAE with θ_i → √θ_i(E).
Each threshold below is the value of one hyper-parameter, the others held, at which the mode turns
off: the mode is active strictly below a β or η_dec threshold and strictly above a σ threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from vaecollapse.core.errors import InputError
from vaecollapse.core.theory.checks import check_positive, fixed_stds
from vaecollapse.core.theory.spectra import Spectrum


def _vae_theta(spectrum: Spectrum, latent_dim: int) -> np.ndarray:
    values = np.sqrt(spectrum.values) if spectrum.conditional else spectrum.values
    theta = np.zeros(latent_dim)
    theta[: min(latent_dim, values.size)] = values[:latent_dim]
    return theta


def _noise(sigma: float | Sequence[float] | None, latent_dim: int, eta_enc: float) -> np.ndarray:
    """σ'_i/η_enc per mode: the fixed stds sorted ascending, or 1 for a learnable Σ."""
    if sigma is None:
        return np.ones(latent_dim)
    return np.sort(fixed_stds(sigma, latent_dim)) / eta_enc


def collapse_thresholds(
    spectrum: Spectrum,
    latent_dim: int,
    *,
    beta: float = 1.0,
    eta_enc: float = 1.0,
    eta_dec: float = 1.0,
    sigma: float | Sequence[float] | None = None,
) -> list[dict]:
    """One row per latent mode: θ_i (as the spectrum defines it), whether it is active, and the β,
    η_dec (and, for fixed Σ, σ) at which it collapses."""
    check_positive(beta=beta, eta_enc=eta_enc, eta_dec=eta_dec)
    theta = _vae_theta(spectrum, latent_dim)
    noise = _noise(sigma, latent_dim, eta_enc)
    rows = []
    for i in range(latent_dim):
        row = {
            "mode": i + 1,
            "theta": float(spectrum.values[i]) if i < spectrum.dim else 0.0,
            "active": bool(theta[i] > math.sqrt(beta) * eta_dec * noise[i]),
            "beta": float((theta[i] / (eta_dec * noise[i])) ** 2),
            "eta_dec": float(theta[i] / (math.sqrt(beta) * noise[i])),
        }
        if sigma is not None:
            row["sigma"] = float(theta[i] * eta_enc / (math.sqrt(beta) * eta_dec))
        rows.append(row)
    return rows


def _kth_threshold(rows: list[dict], key: str, k: int, latent_dim: int) -> float:
    if not 1 <= k <= latent_dim:
        raise InputError(f"k must lie between 1 and the latent dimension {latent_dim}; got {k}.")
    return sorted((r[key] for r in rows), reverse=True)[k - 1]


def largest_beta_keeping(
    k: int,
    spectrum: Spectrum,
    latent_dim: int,
    *,
    eta_enc: float = 1.0,
    eta_dec: float = 1.0,
    sigma: float | Sequence[float] | None = None,
) -> float:
    """The supremum of the β that keep at least ``k`` modes active (active for β below it)."""
    rows = collapse_thresholds(spectrum, latent_dim, eta_enc=eta_enc, eta_dec=eta_dec, sigma=sigma)
    return _kth_threshold(rows, "beta", k, latent_dim)


def largest_eta_dec_keeping(
    k: int,
    spectrum: Spectrum,
    latent_dim: int,
    *,
    beta: float = 1.0,
    eta_enc: float = 1.0,
    sigma: float | Sequence[float] | None = None,
) -> float:
    """The supremum of the η_dec that keep at least ``k`` modes active."""
    rows = collapse_thresholds(spectrum, latent_dim, beta=beta, eta_enc=eta_enc, sigma=sigma)
    return _kth_threshold(rows, "eta_dec", k, latent_dim)


def phase_table(
    spectrum: Spectrum,
    latent_dim: int,
    betas: Sequence[float],
    eta_decs: Sequence[float],
    *,
    eta_enc: float = 1.0,
    sigma: float | Sequence[float] | None = None,
) -> np.ndarray:
    """Active modes on a grid: ``(len(eta_decs), len(betas))`` integer counts."""
    beta_grid = np.asarray(betas, dtype=np.float64)
    eta_grid = np.asarray(eta_decs, dtype=np.float64)
    if np.any(beta_grid <= 0) or np.any(eta_grid <= 0):
        raise InputError("the β and η_dec grids must hold positive values.")
    theta = _vae_theta(spectrum, latent_dim)
    noise = _noise(sigma, latent_dim, eta_enc)
    limit = np.sqrt(beta_grid)[None, :, None] * eta_grid[:, None, None] * noise[None, None, :]
    return np.sum(theta[None, None, :] > limit, axis=-1)


def mhvae_thresholds(
    spectrum: Spectrum,
    latent_dim1: int,
    latent_dim2: int,
    *,
    beta1: float = 1.0,
    beta2: float = 1.0,
    eta_enc: float = 1.0,
    eta_dec: float = 1.0,
    sigma1: float = 1.0,
    sigma2: float | None = None,
) -> list[dict]:
    """Per z2 mode of the two-level MHVAE with fixed isotropic Σ1 (Theorems 3 and 5).

    Mode i of z2 is active (ω_i > 0) iff β2 κ < max(θ_i √β1 σ1, β1 σ1²) with κ = η_dec² for a
    learnable Σ2 and κ = σ2² η_dec²/η_enc² for a fixed one: larger β2 or η_dec collapse it, larger
    β1 or σ1 revive it. Rows: the β2 and η_dec above which, and the β1 and σ1 below which, it
    collapses.
    """
    check_positive(
        beta1=beta1, beta2=beta2, eta_enc=eta_enc, eta_dec=eta_dec, sigma1=sigma1, sigma2=sigma2
    )
    ratio = 1.0 if sigma2 is None else (sigma2 / eta_enc) ** 2  # κ = η_dec² · ratio
    theta = spectrum.padded(min(latent_dim1, latent_dim2))
    rows = []
    for i in range(latent_dim2):
        t = theta[i] if i < theta.size else 0.0
        keep = max(t * math.sqrt(beta1) * sigma1, beta1 * sigma1**2)
        kappa = eta_dec**2 * ratio
        beta1_needed = min(
            (beta2 * kappa / (t * sigma1)) ** 2 if t > 0 else math.inf, beta2 * kappa / sigma1**2
        )
        sigma1_needed = min(
            beta2 * kappa / (t * math.sqrt(beta1)) if t > 0 else math.inf,
            math.sqrt(beta2 * kappa / beta1),
        )
        rows.append(
            {
                "mode": i + 1,
                "theta": float(t),
                "active": bool(i < theta.size and beta2 * kappa < keep),
                "beta2": float(keep / kappa),
                "eta_dec": float(math.sqrt(keep / (beta2 * ratio))),
                "beta1": float(beta1_needed),
                "sigma1": float(sigma1_needed),
            }
        )
    return rows
