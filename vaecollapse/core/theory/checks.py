"""Argument checks shared by the closed forms, the numeric solver and the thresholds."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from vaecollapse.core.errors import InputError


def check_positive(**values: float | None) -> None:
    """Every given value (None is skipped) must be a finite number > 0."""
    for name, value in values.items():
        if value is None:
            continue
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise InputError(f"{name} must be a finite positive number; got {value}.")


def check_latent_dim(latent_dim: int) -> int:
    if int(latent_dim) != latent_dim or latent_dim < 1:
        raise InputError(f"the latent dimension must be a positive integer; got {latent_dim}.")
    return int(latent_dim)


def fixed_stds(sigma: float | Sequence[float], latent_dim: int, name: str = "sigma") -> np.ndarray:
    """The fixed encoder stds as a ``(d,)`` array (one value means isotropic)."""
    stds = np.atleast_1d(np.asarray(sigma, dtype=np.float64))
    if stds.size == 1:
        stds = np.full(latent_dim, float(stds[0]))
    if stds.size != latent_dim:
        raise InputError(f"{name} has {stds.size} values but the latent dimension is {latent_dim}.")
    if not np.all(np.isfinite(stds) & (stds > 0)):
        raise InputError(f"{name} must hold finite positive standard deviations; got {stds}.")
    return stds
