"""One call from data to prediction: :func:`predict` picks the closed form or the numeric solver."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from vaecollapse.core.data import Dataset
from vaecollapse.core.errors import InputError
from vaecollapse.core.families import model_family
from vaecollapse.core.remedies import committed_variance_ratio
from vaecollapse.core.theory.closed_form import cvae_closed_form, mhvae_closed_form, vae_closed_form
from vaecollapse.core.theory.numeric import SolverOptions, solve_cvae, solve_hierarchical
from vaecollapse.core.theory.report import Optimum
from vaecollapse.core.theory.spectra import (
    cvae_spectrum_from_moments,
    moments,
    vae_spectrum_from_moment,
)
from vaecollapse.core.theory.thresholds import collapse_thresholds, mhvae_thresholds

Sigma = float | Sequence[float] | None


@dataclass
class Prediction:
    optimum: Optimum
    thresholds: (
        list[dict] | None
    )  # per mode (per z2 mode for the MHVAE), where a closed form exists

    def to_json(self) -> dict:
        out = self.optimum.to_json()
        learnable = [name for name, flag in self.optimum.learnable.items() if flag]
        level = learnable[-1] if learnable else next(iter(self.optimum.encoder_std))
        out["encoder_std"] = self.optimum.encoder_std[level].tolist()
        out["encoder_std_level"] = level
        out["thresholds"] = self.thresholds
        return out


def predict(
    model: str,
    dataset: Dataset,
    latent_dim: int | None = None,
    *,
    latent_dims: Sequence[int] | None = None,
    beta: float = 1.0,
    betas: Sequence[float] | None = None,
    eta_enc: float = 1.0,
    eta_dec: float = 1.0,
    sigma: Sigma = None,
    sigmas: Sequence[Sigma] | None = None,
    solver: str | None = None,
    options: SolverOptions | None = None,
    delta_rate: float | None = None,
) -> Prediction:
    """The global optimum of the linear ``model`` on ``dataset``'s training split.

    The names are the model configurations': ``latent_dim``, ``beta`` and ``sigma`` (a fixed
    encoder std; None = learnable) apply to every level; the MHVAE's ``latent_dims``, ``betas``
    and ``sigmas`` give one per level (level 1 first). ``solver``: "closed" (default where a
    closed form exists) or "numeric". ``delta_rate``: δ-VAE's committed rate (VAE and CVAE with
    learnable Σ, closed form; docs/remedies.md).
    """
    family = model_family(model)
    if delta_rate is not None and (family.hierarchical or solver == "numeric"):
        raise InputError(
            "the committed rate (delta_rate) has a closed form for the VAE and CVAE only; the "
            "numeric solver and the MHVAE do not take it."
        )
    levels = 1
    if family.hierarchical:
        given = [v for v in (latent_dims, betas, sigmas) if v is not None]
        levels = len(given[0]) if given else 2
    dims = list(latent_dims) if latent_dims is not None else [latent_dim] * levels
    level_betas = list(betas) if betas is not None else [beta] * levels
    level_sigmas = list(sigmas) if sigmas is not None else [sigma] * levels
    if any(len(v) != levels for v in (dims, level_betas, level_sigmas)) or None in dims:
        raise InputError(
            f"give the latent size, beta and sigma of every level ({levels}): latent_dims, "
            "betas and sigmas need one entry per level."
        )
    latent_dim, beta, sigma = dims[0], level_betas[0], level_sigmas[0]
    has_closed_form = not family.hierarchical or (
        levels == 2
        and isinstance(sigma, (int, float))
        and (level_sigmas[1] is None or isinstance(level_sigmas[1], (int, float)))
    )
    if solver == "closed" and not has_closed_form:
        raise InputError(
            "The MHVAE has a closed form only for two levels with a fixed isotropic Σ1 and Σ2 "
            "learnable or fixed isotropic (Theorems 3 and 5); use --solver numeric for the exact "
            "numeric optimum of any other configuration."
        )
    solver = solver or ("closed" if has_closed_form else "numeric")
    options = options or SolverOptions()
    if solver not in ("closed", "numeric"):
        raise InputError(f"Unknown solver '{solver}'; choose closed or numeric.")
    split = dataset.train
    if family.conditional:
        if split.y is None:
            raise InputError(
                f"A CVAE needs paired data (x, y); '{dataset.name}' has no y. Use a quadrant data "
                "set such as mnist-quadrant, or an .npz file with arrays x and y."
            )
        a, b, c = moments(split.x, split.y)
        if solver == "numeric":
            optimum = solve_cvae(
                a,
                b,
                c,
                latent_dim,
                beta,
                eta_enc=eta_enc,
                eta_dec=eta_dec,
                sigma=sigma,
                options=options,
            )
        else:
            spectrum = cvae_spectrum_from_moments(a, b, c)
            optimum = cvae_closed_form(
                spectrum, latent_dim, beta=beta, eta_enc=eta_enc, eta_dec=eta_dec, sigma=sigma,
                delta_rate=delta_rate,
            )  # fmt: skip
        spectrum = cvae_spectrum_from_moments(a, b, c)
    else:
        if split.y is not None:
            raise InputError(
                f"'{dataset.name}' is paired (x, y); a {model.upper()} models one variable. Use "
                "the flat view of the data set."
            )
        a, _, _ = moments(split.x)
        spectrum = vae_spectrum_from_moment(a)
        if family.hierarchical and levels == 2:
            mhvae_kwargs = dict(
                beta1=beta, beta2=level_betas[1], eta_enc=eta_enc, eta_dec=eta_dec, sigma1=sigma,
                sigma2=level_sigmas[1],
            )  # fmt: skip
        if solver == "numeric":
            optimum = solve_hierarchical(
                a,
                dims,
                level_betas,
                eta_enc=eta_enc,
                eta_dec=eta_dec,
                sigmas=level_sigmas,
                options=options,
            )
        elif family.hierarchical:
            optimum = mhvae_closed_form(spectrum, *dims, **mhvae_kwargs)
        else:
            optimum = vae_closed_form(
                spectrum, latent_dim, beta=beta, eta_enc=eta_enc, eta_dec=eta_dec, sigma=sigma,
                delta_rate=delta_rate,
            )  # fmt: skip
    if not family.hierarchical:
        if delta_rate is not None:  # near its threshold every mode sits on the variance cap
            sigma = math.sqrt(committed_variance_ratio(delta_rate)) * eta_enc
        thresholds = collapse_thresholds(
            spectrum, latent_dim, beta=beta, eta_enc=eta_enc, eta_dec=eta_dec, sigma=sigma
        )
    elif has_closed_form:
        thresholds = mhvae_thresholds(spectrum, *dims, **mhvae_kwargs)
    else:
        thresholds = None
    return Prediction(optimum, thresholds)


LEARNABLE_MODES = ("amortized", "shared")  # at the linear optimum Σ does not depend on x


def predict_for_config(config, dataset: Dataset, solver: str | None = None) -> Prediction:
    """The optimum of the linear model a ``VAEConfig``/``CVAEConfig``/``MHVAEConfig`` describes
    (its β's, η's, latent sizes; a level's Σ is fixed where its encoder variance is ``fixed``,
    learnable where it is ``amortized`` or ``shared``)."""
    if config.learn_eta_dec:
        raise InputError("the closed forms take η_dec fixed; this model learns it.")
    if config.mean_batchnorm is not None:
        raise InputError(
            "no optimum is derived for batch-normalised means (BN-VAE); docs/remedies.md says "
            "what is known."
        )
    family = model_family(config.family)
    hierarchical = family.hierarchical
    modes = config.level_variances() if hierarchical else (config.encoder_variance,)
    stds = config.level_sigmas() if hierarchical else (config.sigma,)
    outside = sorted({m for m in modes if m not in (*LEARNABLE_MODES, "fixed")})
    if outside:
        raise InputError(
            f"the linear theory covers fixed and learnable encoder variances, not {outside}."
        )
    sigmas = [s if m == "fixed" else None for m, s in zip(modes, stds, strict=True)]
    sigmas = [list(s) if isinstance(s, tuple) else s for s in sigmas]
    common = {"eta_enc": config.eta_enc, "eta_dec": config.eta_dec, "solver": solver}
    if hierarchical:
        return predict(
            family.name, dataset, latent_dims=config.level_dims(), betas=config.level_betas(),
            sigmas=sigmas, **common,
        )  # fmt: skip
    return predict(
        family.name, dataset, config.latent_dim, beta=config.beta, sigma=sigmas[0],
        delta_rate=config.delta_rate, **common,
    )  # fmt: skip
