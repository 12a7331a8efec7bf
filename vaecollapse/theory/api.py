"""One call from data to prediction: :func:`predict` picks the closed form or the numeric solver."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..data import Dataset
from ..errors import InputError
from .closed_form import cvae_closed_form, mhvae_closed_form, vae_closed_form
from .numeric import SolverOptions, solve_cvae, solve_hierarchical
from .report import Optimum
from .spectra import cvae_spectrum_from_moments, moments, vae_spectrum_from_moment
from .thresholds import collapse_thresholds, mhvae_thresholds

MODELS = ("vae", "cvae", "mhvae")
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
    latent_dim: int,
    *,
    latent_dim2: int | None = None,
    beta: float = 1.0,
    beta2: float = 1.0,
    eta_enc: float = 1.0,
    eta_dec: float = 1.0,
    sigma: Sigma = None,
    sigma2: Sigma = None,
    solver: str | None = None,
    options: SolverOptions | None = None,
) -> Prediction:
    """The global optimum of the linear ``model`` on ``dataset``'s training split.

    ``sigma``: fixed encoder std (VAE/CVAE Σ, MHVAE Σ1); ``sigma2``: fixed Σ2; None = learnable.
    ``beta`` is β (β1 for the MHVAE), ``beta2`` the MHVAE's β2. ``solver``: "closed" (default where
    a closed form exists) or "numeric".
    """
    if model not in MODELS:
        raise InputError(f"Unknown model '{model}'; choose one of {', '.join(MODELS)}.")
    has_closed_form = model != "mhvae" or (
        isinstance(sigma, (int, float)) and (sigma2 is None or isinstance(sigma2, (int, float)))
    )
    if solver == "closed" and not has_closed_form:
        raise InputError(
            "The MHVAE has a closed form only for a fixed isotropic Σ1 (--sigma1 S) with Σ2 "
            "learnable or fixed isotropic (Theorems 3 and 5); use --solver numeric for the exact "
            "numeric optimum of any other configuration."
        )
    solver = solver or ("closed" if has_closed_form else "numeric")
    options = options or SolverOptions()
    if solver not in ("closed", "numeric"):
        raise InputError(f"Unknown solver '{solver}'; choose closed or numeric.")
    split = dataset.train
    if model == "cvae":
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
                spectrum, latent_dim, beta=beta, eta_enc=eta_enc, eta_dec=eta_dec, sigma=sigma
            )
        spectrum = cvae_spectrum_from_moments(a, b, c)
    else:
        if split.y is not None:
            raise InputError(
                f"'{dataset.name}' is paired (x, y); a {model.upper()} models one variable. Use "
                "the flat view of the data set."
            )
        a, _, _ = moments(split.x)
        spectrum = vae_spectrum_from_moment(a)
        dims = [latent_dim] if model == "vae" else [latent_dim, latent_dim2 or latent_dim]
        mhvae_kwargs = dict(
            beta1=beta, beta2=beta2, eta_enc=eta_enc, eta_dec=eta_dec, sigma1=sigma, sigma2=sigma2
        )
        if solver == "numeric":
            levels = len(dims)
            optimum = solve_hierarchical(
                a,
                dims,
                [beta, beta2][:levels],
                eta_enc=eta_enc,
                eta_dec=eta_dec,
                sigmas=[sigma, sigma2][:levels],
                options=options,
            )
        elif model == "mhvae":
            optimum = mhvae_closed_form(spectrum, *dims, **mhvae_kwargs)
        else:
            optimum = vae_closed_form(
                spectrum, latent_dim, beta=beta, eta_enc=eta_enc, eta_dec=eta_dec, sigma=sigma
            )
    if model != "mhvae":
        thresholds = collapse_thresholds(
            spectrum, latent_dim, beta=beta, eta_enc=eta_enc, eta_dec=eta_dec, sigma=sigma
        )
    elif has_closed_form:
        thresholds = mhvae_thresholds(spectrum, *dims, **mhvae_kwargs)
    else:
        thresholds = None
    return Prediction(optimum, thresholds)
