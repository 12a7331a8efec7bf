"""Which linear objectives have no minimum, or a continuum of minima, and the paths that show it.

Derived in docs/theory.md ("Objectives without a unique optimum"). Two paths exist:

* **Rescaling a chain of latent coordinates.** Take learnable-variance levels i < m and k ≤
  min(d_i..d_m) coordinates carried from z_i up to z_m. Scaling z_i..z_{m−1} along them by a
  (with Σ_i → a²Σ_i) and letting z_m copy them with a noise shrunk by 1/a leaves every
  reconstruction unchanged and changes L by (β_m − β_i)·k·ln a: no minimum when β_i > β_m, a
  direction of equal loss when β_i = β_m.
* **η_dec → 0** (learnable decoder std): carry the r = rank E[x xᵀ] data modes exactly up to a
  level j whose levels 1..j all have learnable Σ and at least r dimensions, with every noise
  ∝ η_dec, and (below the top) shrink them at z_j to a scale ∝ η_dec. L changes by
  (D − β_j·r)·ln η_dec: no minimum when D > β_j·r for such a j, a continuum of optima (η_dec
  undetermined) when D = β_j·r at the smallest such β_j.

Where neither applies the objective is bounded below and the solver's optimum is reported as
such; tests check every case against the solver.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

UNBOUNDED, NON_UNIQUE, OPTIMUM = "unbounded", "non-unique", "optimum"
# The paths: rescaling a chain of latent coordinates, η_dec → 0, and a continuum the solver found
# (two starts, one loss) without a derived path.
CHAIN, ETA_DEC, OBSERVED = "chain", "eta_dec", "observed"
PATH_SCALES = (1.0, 10.0, 100.0, 1000.0)
DTYPE = torch.float64  # a: how far along the path the losses are shown


@dataclass(frozen=True)
class Degeneracy:
    """Why a configuration has no unique optimum.

    ``status``: "unbounded" (L falls without bound along ``direction``) or "non-unique" (a
    continuum of optima). ``path``: "chain", "eta_dec" (the derived paths) or "observed" (two
    solver starts at the same loss and different points, where no derived path applies).
    ``levels``: the 1-based levels (i, m) of a chain path. ``rate``: dL/d ln a along the path
    (a → ∞); negative when L falls, 0 when flat. ``identified``: what every optimum of the
    continuum shares (non-unique only)."""

    status: str
    path: str
    direction: str
    rate: float
    levels: tuple[int, int] | None = None
    chains: int = 0
    identified: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {
            "status": self.status,
            "path": self.path,
            "direction": self.direction,
            "rate_per_ln_a": self.rate,
            "levels": None if self.levels is None else list(self.levels),
            "identified": list(self.identified),
        }


def classify(
    latent_dims: Sequence[int],
    betas: Sequence[float],
    learnable: Sequence[bool],
    eta_dec_learnable: bool,
    data_rank: int,
    data_dim: int,
) -> Degeneracy | None:
    """The degeneracy of the L-level linear model (L = 1: the VAE), or None when the objective
    has a minimum. ``learnable[l]``: whether Σ_{l+1} is learned."""
    levels = [i for i, flag in enumerate(learnable) if flag]
    steepest = None
    tie = None
    for x, i in enumerate(levels):
        for m in levels[x + 1 :]:
            chains = min(latent_dims[i : m + 1])
            rate = (betas[m] - betas[i]) * chains
            if betas[i] > betas[m] and (steepest is None or rate < steepest[0]):
                steepest = (rate, i, m, chains)
            elif betas[i] == betas[m] and tie is None:
                tie = (i, m, chains)
    if steepest is not None:
        rate, i, m, chains = steepest
        words = _chain_words(i, m, chains)
        return Degeneracy(UNBOUNDED, CHAIN, words, rate, (i + 1, m + 1), chains)
    eta_stop = _eta_stop(latent_dims, betas, learnable, data_rank) if eta_dec_learnable else None
    eta_rate = None if eta_stop is None else betas[eta_stop] * data_rank - data_dim
    if eta_rate is not None and eta_rate < 0:
        words = _eta_words(eta_stop, len(latent_dims), data_rank)
        return Degeneracy(UNBOUNDED, ETA_DEC, words, eta_rate, (1, eta_stop + 1), chains=data_rank)
    if tie is not None:
        i, m, chains = tie
        return Degeneracy(
            NON_UNIQUE, CHAIN, _chain_words(i, m, chains), 0.0, (i + 1, m + 1), chains,
            identified=("loss", "U1V1 (the map from the data to its reconstruction)"),
        )  # fmt: skip
    if eta_rate == 0:
        words = _eta_words(eta_stop, len(latent_dims), data_rank)
        return Degeneracy(
            NON_UNIQUE, ETA_DEC, words, 0.0, (1, eta_stop + 1), data_rank, identified=("loss",)
        )
    return None


def _level(i: int) -> str:
    return f"z{i + 1}"


def _chain_words(i: int, m: int, chains: int) -> str:
    carriers = _level(i) if m == i + 1 else f"{_level(i)}..{_level(m - 1)}"
    return (
        f"scale {chains} coordinate(s) of {carriers} by a (Σ{i + 1} by a²) "
        f"while {_level(m)} copies them with its noise shrunk by 1/a: every reconstruction is "
        f"unchanged and L changes by (β{m + 1} − β{i + 1})·{chains}·ln a"
    )


def _eta_stop(
    latent_dims: Sequence[int], betas: Sequence[float], learnable: Sequence[bool], rank: int
) -> int | None:
    """The level (0-based) where the cheapest η_dec path stops carrying the data: one whose
    levels up to it are all learnable and at least ``rank`` wide, with the smallest β."""
    reachable = []
    for level, (width, flag) in enumerate(zip(latent_dims, learnable, strict=True)):
        if not flag or width < rank:
            break
        reachable.append(level)
    return min(reachable, key=lambda level: betas[level]) if reachable else None


def _eta_words(stop: int, levels: int, rank: int) -> str:
    carried = "z1" if stop == 0 else f"z1..{_level(stop)}"
    how = (
        "with noise ∝ η_dec"
        if stop == levels - 1
        else f"and shrunk in {_level(stop)} to a scale ∝ η_dec (noise ∝ η_dec²)"
    )
    return (
        f"η_dec → 0 with the {rank} data modes carried exactly by {carried} {how}: L changes by "
        f"(D − β{stop + 1}·{rank})·ln η_dec"
    )


Objective = Callable[[list, list, list, torch.Tensor], torch.Tensor]


def path_losses(
    degeneracy: Degeneracy,
    objective: Objective,
    data_dim: int,
    latent_dims: Sequence[int],
    fixed_variances: Sequence[torch.Tensor | None],
    eta_enc: float,
    eta_dec: float,
    scales: Sequence[float] = PATH_SCALES,
) -> list[float]:
    """L at each scale a along a path built from scratch (not from the solver's point, so that
    the evidence does not depend on where the solver stopped). ``objective(encoders, decoders,
    variances, log_eta_dec)``: L with the data in the eigenbasis of E[x xᵀ], ``data_dim`` of its
    positive eigenvalues first. Chain paths leave the data unmodelled and run at ``eta_dec``;
    the η_dec path reconstructs every data mode and runs at η_dec = 1/a."""
    dims = [data_dim, *latent_dims]
    top = len(latent_dims) - 1
    first, last = degeneracy.levels[0] - 1, degeneracy.levels[1] - 1
    chain = torch.arange(degeneracy.chains)
    values = []
    for a in scales:
        eta = eta_dec if degeneracy.path == CHAIN else 1.0 / a
        encoders, decoders, variances = [], [], []
        for level in range(len(latent_dims)):
            rows, cols = dims[level + 1], dims[level]
            w = torch.zeros(rows, cols, dtype=DTYPE)
            u = torch.zeros(cols, rows, dtype=DTYPE)
            var = torch.full((rows,), eta_enc**2, dtype=DTYPE)
            if degeneracy.path == CHAIN:
                if first < level <= last:  # carries the chain from the level below, exactly
                    w[chain, chain] = 1.0 / a if level == last else 1.0
                    u[chain, chain] = a if level == last else 1.0
                if level == first:
                    var[chain] = a**2
                elif level == last:
                    var[chain] = eta**2 / a**2
            else:  # η_dec path stopping at ``last``: carried at scale 1 below it, shrunk at it
                if level <= last:
                    var[:] = eta**2  # what is not carried is as small as η_dec
                    shrink = eta if level == last and level < top else 1.0
                    w[chain, chain] = shrink
                    u[chain, chain] = 1.0 / shrink
                    var[chain] = (eta * shrink) ** 2
            if fixed_variances[level] is not None:
                var = fixed_variances[level]
            encoders.append(w)
            decoders.append(u)
            variances.append(var)
        log_eta = torch.tensor(math.log(eta), dtype=DTYPE)
        values.append(float(objective(encoders, decoders, variances, log_eta)))
    return values
