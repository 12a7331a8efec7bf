"""The one report every solver returns, closed form or numeric."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vaecollapse.core.theory.degeneracy import OPTIMUM, UNBOUNDED, Degeneracy

RANK_RTOL = 1e-5  # a singular value below RANK_RTOL * max(1, largest) counts as zero


def numerical_rank(singular_values: np.ndarray) -> int:
    if singular_values.size == 0:
        return 0
    scale = max(1.0, float(np.max(singular_values)))
    return int(np.sum(singular_values > RANK_RTOL * scale))


def descending(values: np.ndarray, length: int) -> np.ndarray:
    """Sorted non-increasing, zero-padded or cut to ``length``."""
    out = np.zeros(length)
    v = np.sort(np.asarray(values, dtype=np.float64))[::-1][:length]
    out[: v.size] = v
    return out


@dataclass
class Optimum:
    """A global optimum of a linear model.

    ``singular_values``: per map (``U``, ``V`` for a VAE; ``U1``, ``W2`` ... for a CVAE; ``V1``,
    ``U1``, ``W2``, ``U2`` for a hierarchical VAE), non-increasing, length = the latent dimension.
    ``encoder_std``: per latent level (``z`` or ``z1``, ``z2``, ...), the std of q per dimension,
    sorted non-decreasing. ``learnable``: which levels' variances were learned. ``active_dims``: per
    level, the rank of the map into it (level 1 from the data, level l from level l−1): dimensions
    outside it carry no information about the level below. ``loss``: L per sample in nats with all
    constants (docs/conventions.md). ``per_mode`` (closed forms only): the same quantities in mode
    order (mode i pairs the i-th largest θ with one latent direction), unsorted, with each mode's
    KL averaged over the data (``kl``; the MHVAE's ``kl_z2``, of z2 given z1).

    ``status``: "optimum", or "unbounded" / "non-unique" (``degeneracy`` says along which path,
    ``path_losses`` gives L at a = 1, 10, 100, 1000 along it). Then the maps, stds and active
    counts are only where the solver stopped: ``active_dims`` holds None per level, ``loss`` is
    the lowest value reached (no minimum exists when unbounded), and ``invariants`` holds what
    every optimum of a continuum shares.
    """

    model: str
    method: str
    theta: np.ndarray
    singular_values: dict[str, np.ndarray]
    encoder_std: dict[str, np.ndarray]
    learnable: dict[str, bool]
    active_dims: dict[str, int | None]
    loss: float
    hyper: dict
    notes: list[str] = field(default_factory=list)
    per_mode: dict[str, np.ndarray] | None = None
    degeneracy: Degeneracy | None = None
    path_losses: list[float] | None = None
    invariants: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return OPTIMUM if self.degeneracy is None else self.degeneracy.status

    def to_json(self) -> dict:
        single = len(self.active_dims) == 1
        degeneracy = None
        if self.degeneracy is not None:
            degeneracy = self.degeneracy.to_json()
            degeneracy["path_losses"] = self.path_losses
            degeneracy["loss_reached"] = self.loss
            degeneracy["invariants"] = {k: v.tolist() for k, v in self.invariants.items()}
        return {
            "model": self.model,
            "method": self.method,
            "status": self.status,
            "degeneracy": degeneracy,
            "hyper": self.hyper,
            "theta": self.theta.tolist(),
            "singular_values": {k: v.tolist() for k, v in self.singular_values.items()},
            "encoder_std_per_level": {k: v.tolist() for k, v in self.encoder_std.items()},
            "learnable_variance": self.learnable,
            "active_dims": next(iter(self.active_dims.values())) if single else self.active_dims,
            "loss": None if self.status == UNBOUNDED else self.loss,
            "notes": self.notes,
            "per_mode": None
            if self.per_mode is None
            else {k: v.tolist() for k, v in self.per_mode.items()},
        }
