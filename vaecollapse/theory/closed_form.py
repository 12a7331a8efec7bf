"""Closed-form global optima of the linear models (derivations in docs/theory.md).

At the optimum every model decouples into independent modes: mode i pairs the i-th largest data
value θ_i with one latent direction, and its decoder / encoder singular values (ω_i, λ_i) and
encoder std σ_i solve a two-variable problem. With k := √β·η_dec/η_enc (so k·σ is the collapse
threshold for a fixed encoder std σ):

* fixed Σ (Theorem 1): ω_i λ_i = max(0, θ_i − k σ'_i), ω_i/λ_i = k/σ'_i, where σ'_1 ≤ σ'_2 ≤ ... are
  the fixed stds sorted so that the smallest noise meets the largest θ;
* learnable Σ (Theorem 4): mode i is active iff θ_i > √β·η_dec; then ω_i = √(θ_i² − β η_dec²)/η_enc,
  σ_i = √β η_dec η_enc / θ_i, λ_i = ω_i η_enc² / θ_i; otherwise ω_i = λ_i = 0 and σ_i = η_enc;
* CVAE (Theorem 2): the optimum predicts y from x as well as a linear map can, and z models only
  the residual e = y − C A⁺ x, whose second moment is E. The CVAE is therefore the VAE above on e,
  with θ_i(VAE) = √θ_i(E): active iff θ_i(E) > β η_dec². Fixed Σ works the same way.
* pPCA (Tipping & Bishop; Lucas et al.): a learnable decoder std at β = η_enc = 1 takes
  η_dec² = the mean of the discarded eigenvalues of A, and the ELBO equals the exact log-likelihood.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import InputError
from .report import Optimum, descending
from .spectra import Spectrum


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise InputError(f"{name} must be a finite positive number; got {value}.")


def _check_latent(latent_dim: int) -> int:
    if int(latent_dim) != latent_dim or latent_dim < 1:
        raise InputError(f"the latent dimension must be a positive integer; got {latent_dim}.")
    return int(latent_dim)


def fixed_stds(sigma: float | Sequence[float], latent_dim: int) -> np.ndarray:
    """The fixed encoder stds as a ``(d,)`` array (one value means isotropic)."""
    stds = np.atleast_1d(np.asarray(sigma, dtype=np.float64))
    if stds.size == 1:
        stds = np.full(latent_dim, float(stds[0]))
    if stds.size != latent_dim:
        raise InputError(f"sigma has {stds.size} values but the latent dimension is {latent_dim}.")
    if not np.all(np.isfinite(stds) & (stds > 0)):
        raise InputError(f"sigma must hold finite positive standard deviations; got {stds}.")
    return stds


def _mode_loss(
    theta: np.ndarray,
    omega: np.ndarray,
    lam: np.ndarray,
    sigma: np.ndarray,
    tail: float,
    dim: int,
    beta: float,
    eta_enc: float,
    eta_dec: float,
) -> float:
    """L (nats per sample, constants included) of a mode-decoupled linear VAE solution.

    ``theta``, ``omega``, ``lam``, ``sigma``: ``(d,)`` per latent mode; ``tail``: Σ θ_i² of the data
    modes no latent serves; ``dim``: D of the reconstructed variable."""
    fit = np.sum((omega * lam - theta) ** 2 + omega**2 * sigma**2) + tail
    recon = fit / (2 * eta_dec**2) + dim / 2 * math.log(2 * math.pi * eta_dec**2)
    kl = 0.5 * np.sum((sigma**2 + lam**2) / eta_enc**2 - 1 - np.log(sigma**2 / eta_enc**2))
    return float(recon + beta * kl)


def _vae_modes(
    theta_all: np.ndarray,
    latent_dim: int,
    beta: float,
    eta_enc: float,
    eta_dec: float,
    sigma: float | Sequence[float] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Per-mode (θ, ω, λ, σ) and the unserved tail for VAE-type spectra (θ = √eig)."""
    theta = np.zeros(latent_dim)
    served = min(latent_dim, theta_all.size)
    theta[:served] = theta_all[:served]
    tail = float(np.sum(theta_all[served:] ** 2))
    if sigma is None:
        active = theta > math.sqrt(beta) * eta_dec
        omega = np.where(active, np.sqrt(np.clip(theta**2 - beta * eta_dec**2, 0, None)), 0.0)
        omega = omega / eta_enc
        std = np.where(
            active, math.sqrt(beta) * eta_dec * eta_enc / np.where(active, theta, 1), eta_enc
        )
        lam = np.where(active, omega * eta_enc**2 / np.where(active, theta, 1), 0.0)
        return theta, omega, lam, std, tail
    std = np.sort(fixed_stds(sigma, latent_dim))  # smallest noise meets the largest θ
    k = math.sqrt(beta) * eta_dec / eta_enc
    product = np.clip(theta - k * std, 0, None)
    omega = np.sqrt(product * k / std)
    lam = np.sqrt(product * std / k)
    return theta, omega, lam, std, tail


def _vae_notes(sigma: float | Sequence[float] | None, latent_dim: int) -> list[str]:
    if sigma is None:
        return []
    stds = fixed_stds(sigma, latent_dim)
    if np.unique(stds).size < stds.size:
        return [
            "fixed encoder stds with equal values: the optimum is unique only up to a rotation "
            "among latent dimensions of equal std, so an inactive direction need not be an "
            "inactive coordinate (posterior collapse may not happen, Dang et al. Sec. 3)"
        ]
    return []


def vae_closed_form(
    spectrum: Spectrum,
    latent_dim: int,
    *,
    beta: float = 1.0,
    eta_enc: float = 1.0,
    eta_dec: float = 1.0,
    sigma: float | Sequence[float] | None = None,
) -> Optimum:
    """Linear VAE: Theorem 1 (``sigma`` given: fixed encoder stds, isotropic or per dimension) or
    Theorem 4 (``sigma=None``: learnable diagonal Σ). ``spectrum``: θ = √eig(E[x xᵀ])."""
    d = _check_latent(latent_dim)
    _check_positive(beta=beta, eta_enc=eta_enc, eta_dec=eta_dec)
    if spectrum.kind != "vae":
        raise InputError("vae_closed_form needs a VAE spectrum (θ = √eig A).")
    theta, omega, lam, std, tail = _vae_modes(spectrum.values, d, beta, eta_enc, eta_dec, sigma)
    return Optimum(
        model="vae",
        method="closed form (Theorem 1, fixed Σ)"
        if sigma is not None
        else "closed form (Theorem 4)",
        theta=spectrum.values,
        singular_values={"U": descending(omega, d), "V": descending(lam, d)},
        encoder_std={"z": std},
        learnable={"z": sigma is None},
        active_dims={"z": int(np.sum(lam > 0))},
        loss=_mode_loss(theta, omega, lam, std, tail, spectrum.dim, beta, eta_enc, eta_dec),
        hyper={
            "latent_dims": [d],
            "betas": [beta],
            "eta_enc": eta_enc,
            "eta_dec": eta_dec,
            "sigmas": [None if sigma is None else np.atleast_1d(sigma).tolist()],
        },
        notes=_vae_notes(sigma, d),
    )


def cvae_closed_form(
    spectrum: Spectrum,
    latent_dim: int,
    *,
    beta: float = 1.0,
    eta_enc: float = 1.0,
    eta_dec: float = 1.0,
    sigma: float | Sequence[float] | None = None,
) -> Optimum:
    """Linear CVAE: Theorem 2 (learnable Σ) and, by the same reduction, fixed Σ.
    ``spectrum``: θ = eig(E), E = B − C A⁺ Cᵀ. ``singular_values``: ``U1`` (decoder from z) and
    ``V`` (encoder from the whitened residual of y given x)."""
    d = _check_latent(latent_dim)
    _check_positive(beta=beta, eta_enc=eta_enc, eta_dec=eta_dec)
    if spectrum.kind != "cvae":
        raise InputError("cvae_closed_form needs a CVAE spectrum (θ = eig E).")
    root = np.sqrt(spectrum.values)
    theta, omega, lam, std, tail = _vae_modes(root, d, beta, eta_enc, eta_dec, sigma)
    return Optimum(
        model="cvae",
        method="closed form (Theorem 2)" if sigma is None else "closed form (CVAE, fixed Σ)",
        theta=spectrum.values,
        singular_values={"U1": descending(omega, d), "V": descending(lam, d)},
        encoder_std={"z": std},
        learnable={"z": sigma is None},
        active_dims={"z": int(np.sum(lam > 0))},
        loss=_mode_loss(theta, omega, lam, std, tail, spectrum.dim, beta, eta_enc, eta_dec),
        hyper={
            "latent_dims": [d],
            "betas": [beta],
            "eta_enc": eta_enc,
            "eta_dec": eta_dec,
            "sigmas": [None if sigma is None else np.atleast_1d(sigma).tolist()],
        },
        notes=_vae_notes(sigma, d),
    )


def ppca_closed_form(spectrum: Spectrum, latent_dim: int) -> Optimum:
    """Maximum-likelihood pPCA (Tipping & Bishop) = the linear VAE with learnable Σ and learnable
    decoder std at β = η_enc = 1. ``loss`` is the exact negative log-likelihood per sample."""
    d = _check_latent(latent_dim)
    if spectrum.kind != "vae":
        raise InputError("ppca_closed_form needs a VAE spectrum (θ = √eig A).")
    eig = spectrum.values**2
    dim = spectrum.dim
    if d >= dim:
        raise InputError(
            f"pPCA needs fewer latent dimensions ({d}) than data dimensions ({dim}): otherwise the "
            "noise variance goes to zero and the likelihood is unbounded."
        )
    noise = float(eig[d:].mean())
    if noise <= 0:
        raise InputError(
            "the data lie in a subspace of dimension <= the latent dimension; pPCA's "
            "noise variance is zero and its likelihood unbounded."
        )
    eta_dec = math.sqrt(noise)
    cov = np.where(np.arange(dim) < d, np.maximum(eig, noise), noise)
    nll = 0.5 * (dim * math.log(2 * math.pi) + np.sum(np.log(cov)) + np.sum(eig / cov))
    optimum = vae_closed_form(spectrum, d, beta=1.0, eta_enc=1.0, eta_dec=eta_dec)
    optimum.method = "closed form (pPCA maximum likelihood)"
    optimum.loss = float(nll)
    optimum.hyper["eta_dec_learnable"] = True
    return optimum
