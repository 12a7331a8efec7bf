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

from vaecollapse.core.errors import InputError
from vaecollapse.core.remedies import committed_variance_ratio
from vaecollapse.core.theory.checks import check_latent_dim, check_positive, fixed_stds
from vaecollapse.core.theory.report import Optimum, descending
from vaecollapse.core.theory.spectra import Spectrum


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
    return float(recon + beta * np.sum(_mode_kls(lam, sigma, eta_enc)))


def _mode_kls(lam: np.ndarray, sigma: np.ndarray, eta_enc: float) -> np.ndarray:
    """Each mode's KL(q ‖ N(0, η_enc²)) averaged over the data, ``(d,)`` nats: its encoder mean
    has second moment λ² (the encoder acts on whitened modes) and its std is σ."""
    return 0.5 * ((sigma**2 + lam**2) / eta_enc**2 - 1 - np.log(sigma**2 / eta_enc**2))


def _vae_modes(
    theta_all: np.ndarray,
    latent_dim: int,
    beta: float,
    eta_enc: float,
    eta_dec: float,
    sigma: float | Sequence[float] | None,
    variance_ceiling: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Per-mode (θ, ω, λ, σ) and the unserved tail for VAE-type spectra (θ = √eig).

    ``variance_ceiling`` c (learnable Σ only; δ-VAE's committed rate): a mode whose optimal std
    exceeds √c takes σ = √c, and its ω, λ are then Theorem 1's for that fixed std. The per-mode
    loss, minimised over ω and λ, falls in σ up to its free optimum and rises after it, so the
    capped optimum sits on the cap (docs/remedies.md; tested against a direct minimisation)."""
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
        if variance_ceiling is None or not np.any(std > math.sqrt(variance_ceiling)):
            return theta, omega, lam, std, tail
        capped = std > math.sqrt(variance_ceiling)
        std = np.where(capped, math.sqrt(variance_ceiling), std)
        fixed_omega, fixed_lam = _fixed_std_modes(theta, std, beta, eta_enc, eta_dec)
        omega, lam = np.where(capped, fixed_omega, omega), np.where(capped, fixed_lam, lam)
        return theta, omega, lam, std, tail
    std = np.sort(fixed_stds(sigma, latent_dim))  # smallest noise meets the largest θ
    omega, lam = _fixed_std_modes(theta, std, beta, eta_enc, eta_dec)
    return theta, omega, lam, std, tail


def _fixed_std_modes(
    theta: np.ndarray, std: np.ndarray, beta: float, eta_enc: float, eta_dec: float
) -> tuple[np.ndarray, np.ndarray]:
    """Theorem 1's (ω, λ) per mode for fixed encoder stds ``std``."""
    k = math.sqrt(beta) * eta_dec / eta_enc
    product = np.clip(theta - k * std, 0, None)
    return np.sqrt(product * k / std), np.sqrt(product * std / k)


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


def _vae_type_optimum(
    model: str,
    method: str,
    names: tuple[str, str],
    spectrum: Spectrum,
    theta_vae: np.ndarray,
    latent_dim: int,
    beta: float,
    eta_enc: float,
    eta_dec: float,
    sigma: float | Sequence[float] | None,
    delta_rate: float | None = None,
) -> Optimum:
    """The VAE-type optimum on the values ``theta_vae`` (√eig of the modelled second moment);
    ``names``: what to call the decoder and encoder maps; ``delta_rate``: δ-VAE's committed rate
    (learnable Σ capped at s_δ·η_enc², docs/remedies.md)."""
    d = check_latent_dim(latent_dim)
    check_positive(beta=beta, eta_enc=eta_enc, eta_dec=eta_dec)
    ceiling = None
    if delta_rate is not None:
        if sigma is not None:
            raise InputError("a committed rate (delta_rate) caps a learnable Σ, not a fixed one.")
        ceiling = committed_variance_ratio(delta_rate) * eta_enc**2
        method += f", δ-VAE committed rate {delta_rate:g} nats"
    theta, omega, lam, std, tail = _vae_modes(theta_vae, d, beta, eta_enc, eta_dec, sigma, ceiling)
    decoder, encoder = names
    return Optimum(
        model=model,
        method=method,
        theta=spectrum.values,
        singular_values={decoder: descending(omega, d), encoder: descending(lam, d)},
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
            "delta_rate": delta_rate,
        },
        notes=_vae_notes(sigma, d),
        per_mode={
            "theta": theta, decoder: omega, encoder: lam, "std": std,
            "kl": _mode_kls(lam, std, eta_enc),
        },
    )  # fmt: skip


def vae_closed_form(
    spectrum: Spectrum,
    latent_dim: int,
    *,
    beta: float = 1.0,
    eta_enc: float = 1.0,
    eta_dec: float = 1.0,
    sigma: float | Sequence[float] | None = None,
    delta_rate: float | None = None,
) -> Optimum:
    """Linear VAE: Theorem 1 (``sigma`` given: fixed encoder stds, isotropic or per dimension) or
    Theorem 4 (``sigma=None``: learnable diagonal Σ). ``spectrum``: θ = √eig(E[x xᵀ])."""
    if spectrum.conditional:
        raise InputError("vae_closed_form needs a VAE spectrum (θ = √eig A).")
    method = "closed form (Theorem 4)" if sigma is None else "closed form (Theorem 1, fixed Σ)"
    return _vae_type_optimum(
        "vae",
        method,
        ("U", "V"),
        spectrum,
        spectrum.values,
        latent_dim,
        beta,
        eta_enc,
        eta_dec,
        sigma,
        delta_rate,
    )


def cvae_closed_form(
    spectrum: Spectrum,
    latent_dim: int,
    *,
    beta: float = 1.0,
    eta_enc: float = 1.0,
    eta_dec: float = 1.0,
    sigma: float | Sequence[float] | None = None,
    delta_rate: float | None = None,
) -> Optimum:
    """Linear CVAE: Theorem 2 (learnable Σ) and, by the same reduction, fixed Σ.
    ``spectrum``: θ = eig(E), E = B − C A⁺ Cᵀ. ``singular_values``: ``U1`` (decoder from z) and
    ``V`` (encoder from the whitened residual of y given x). ``per_mode["theta"]`` holds √θ."""
    if not spectrum.conditional:
        raise InputError("cvae_closed_form needs a CVAE spectrum (θ = eig E).")
    method = "closed form (Theorem 2)" if sigma is None else "closed form (CVAE, fixed Σ)"
    return _vae_type_optimum(
        "cvae",
        method,
        ("U1", "V"),
        spectrum,
        np.sqrt(spectrum.values),
        latent_dim,
        beta,
        eta_enc,
        eta_dec,
        sigma,
        delta_rate,
    )


def ppca_closed_form(spectrum: Spectrum, latent_dim: int) -> Optimum:
    """Maximum-likelihood pPCA (Tipping & Bishop) = the linear VAE with learnable Σ and learnable
    decoder std at β = η_enc = 1. ``loss`` is the exact negative log-likelihood per sample."""
    d = check_latent_dim(latent_dim)
    if spectrum.conditional:
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


def _mhvae_modes(
    theta: np.ndarray,
    sigma1: float,
    sigma2: float | None,
    beta1: float,
    beta2: float,
    eta_enc: float,
    eta_dec: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Per paired mode, the optimal m = λ² + σ1² (second moment of z1) and g = β1 ω² + c² β2.

    With U1, W2 and a learnable Σ2 eliminated, η_dec² times the mode's share of the paper's 2L is
    F(m, g) = θ²σ1²/m + m β1 c² β2 / g + g s² − η_dec² β2 log s², s² = Σ2's entry (η_dec² β2 / g if
    learnable). Over m, F is convex plus concave: one candidate per branch (ω = 0 below the kink
    m0, ω > 0 above) and the boundary m = σ1²; the smallest wins.
    """
    c2, eta2 = (eta_dec / eta_enc) ** 2, eta_dec**2
    g_min = c2 * beta2

    def best_g(m: np.ndarray) -> np.ndarray:
        if sigma2 is None:
            return np.maximum(g_min, m * beta1 / eta_enc**2)
        return np.maximum(g_min, np.sqrt(m * beta1 * c2 * beta2) / sigma2)

    def objective(m: np.ndarray, g: np.ndarray) -> np.ndarray:
        s2 = eta2 * beta2 / g if sigma2 is None else np.full_like(g, sigma2**2)
        return (
            theta**2 * sigma1**2 / m
            + m * beta1 * c2 * beta2 / g
            + g * s2
            - eta2 * beta2 * np.log(s2)
        )

    floor = np.full_like(theta, sigma1**2)
    if sigma2 is None:
        kink = eta2 * beta2 / beta1
        m_active = theta**2 * sigma1**2 / (eta2 * beta2)
    else:
        kink = c2 * beta2 * sigma2**2 / beta1
        m_active = (theta**2 * sigma1**2 / (sigma2 * math.sqrt(c2 * beta1 * beta2))) ** (2 / 3)
    m_silent = np.clip(theta * sigma1 / math.sqrt(beta1), sigma1**2, max(sigma1**2, kink))
    m_active = np.maximum(m_active, max(kink, sigma1**2))
    candidates = [
        (floor, best_g(floor)),
        (m_silent, np.full_like(theta, g_min)),
        (m_active, best_g(m_active)),
    ]
    values = np.stack([objective(m, g) for m, g in candidates])
    pick = np.argmin(values, axis=0)
    m = np.choose(pick, [c[0] for c in candidates])
    g = np.choose(pick, [c[1] for c in candidates])
    return m, g


def mhvae_closed_form(
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
) -> Optimum:
    """Two-level linear MHVAE with fixed isotropic Σ1 = σ1² I and learnable Σ2 (Theorem 3) or fixed
    isotropic Σ2 = σ2² I (Theorem 5), any d0, d1, d2 (Appendix F's orderings).

    The largest θ's go to the min(d1, d2) modes that have both latents; z1 modes without a z2
    partner see a zero-mean p(z1|z2) and keep only the ω = 0 branch; z2 dimensions without a z1
    partner collapse. ``spectrum``: θ = √eig(E[x xᵀ]).
    """
    d1, d2 = check_latent_dim(latent_dim1), check_latent_dim(latent_dim2)
    check_positive(beta1=beta1, beta2=beta2, eta_enc=eta_enc, eta_dec=eta_dec, sigma1=sigma1)
    if sigma2 is not None:
        check_positive(sigma2=sigma2)
    if spectrum.conditional:
        raise InputError("mhvae_closed_form needs a VAE spectrum (θ = √eig A).")
    theta = spectrum.padded(d1)
    tail = float(np.sum(spectrum.values[d1:] ** 2))
    paired = min(d1, d2)
    c2, eta2 = (eta_dec / eta_enc) ** 2, eta_dec**2
    m = np.empty(d1)
    g = np.full(d2, c2 * beta2)  # unpaired z2 dimensions: ω = 0
    m[:paired], g[:paired] = _mhvae_modes(
        theta[:paired], sigma1, sigma2, beta1, beta2, eta_enc, eta_dec
    )
    m[paired:] = np.maximum(sigma1**2, theta[paired:] * sigma1 / math.sqrt(beta1))
    lam = np.sqrt(np.clip(m - sigma1**2, 0, None))
    u = theta * lam / m
    omega = np.sqrt(np.clip((g - c2 * beta2) / beta1, 0, None))
    w = beta1 * omega / g
    s2 = eta2 * beta2 / g if sigma2 is None else np.full(d2, sigma2**2)
    m2 = np.zeros(d2)  # second moment of the z1 mode feeding each z2 dimension
    m2[:paired] = m[:paired]
    # L in nats (docs/conventions.md): reconstruction,
    # β1 (E[−log p(z1|z2)] − H[q(z1|x)]), β2 KL(z2).
    recon = (np.sum((u * lam - theta) ** 2 + u**2 * sigma1**2) + tail) / (2 * eta2)
    recon += spectrum.dim / 2 * math.log(2 * math.pi * eta2)
    gap = np.ones(d1)
    gap[:paired] = (omega[:paired] * w[:paired] - 1) ** 2
    level1 = (np.sum(gap * m) + np.sum(omega**2 * s2)) / (2 * eta2)
    level1 += d1 / 2 * math.log(2 * math.pi * eta2)
    level1 -= d1 / 2 * (math.log(sigma1**2) + 1 + math.log(2 * math.pi))
    kl2 = _mode_kls(w * np.sqrt(m2), np.sqrt(s2), eta_enc)  # z2's mean W2 z1: moment w²m
    return Optimum(
        model="mhvae",
        method="closed form (Theorem 3)" if sigma2 is None else "closed form (Theorem 5)",
        theta=spectrum.values,
        singular_values={
            "V1": descending(lam, d1),
            "U1": descending(u, d1),
            "W2": descending(w, d2),
            "U2": descending(omega, d2),
        },
        encoder_std={"z1": np.full(d1, sigma1), "z2": np.sort(np.sqrt(s2))},
        learnable={"z1": False, "z2": sigma2 is None},
        active_dims={"z1": int(np.sum(lam > 0)), "z2": int(np.sum(w > 0))},
        loss=float(recon + beta1 * level1 + beta2 * np.sum(kl2)),
        hyper={
            "latent_dims": [d1, d2],
            "betas": [beta1, beta2],
            "eta_enc": eta_enc,
            "eta_dec": eta_dec,
            "sigmas": [[sigma1], None if sigma2 is None else [sigma2]],
        },
        per_mode={
            "theta": theta, "V1": lam, "U1": u, "W2": w, "U2": omega, "std_z2": np.sqrt(s2),
            "kl_z2": kl2,
        },
    )  # fmt: skip
