"""Collapse metrics as pure functions of tensors. N = evaluation samples, d = latent dimensions."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from vaecollapse.core.errors import InputError

AU_THRESHOLD = 0.01


def _check_kl(kl: torch.Tensor) -> torch.Tensor:
    if kl.ndim != 2:
        raise InputError(f"a KL matrix must be (N, d); got shape {tuple(kl.shape)}.")
    if not bool(torch.isfinite(kl).all()):
        raise InputError("the KL matrix holds NaN or infinite values.")
    return kl


def collapsed_dimensions(kl: torch.Tensor, epsilon: float, delta: float) -> torch.Tensor:
    """Indices of the (ε, δ)-collapsed dimensions (Lucas et al.): those with
    P_x[KL_i < ε] ≥ 1 − δ over the N rows of ``kl`` ``(N, d)``."""
    _check_probability(delta)
    share_below = (_check_kl(kl) < epsilon).double().mean(0)  # (d,)
    # 1e-12 absorbs the rounding of the share (e.g. 19/20 vs 1 − 0.05).
    return torch.nonzero(share_below >= 1 - delta - 1e-12)[:, 0]


def collapse_curve(kl: torch.Tensor, epsilons: Sequence[float], delta: float) -> np.ndarray:
    """Number of (ε, δ)-collapsed dimensions at each ε: ``(len(epsilons),)``, non-decreasing."""
    _check_probability(delta)
    kl = _check_kl(kl)
    # The share of rows below ε is the empirical CDF of each column: sort once, search per ε.
    ordered = torch.sort(kl.double(), dim=0).values.T.contiguous()  # (d, N)
    eps = torch.as_tensor(list(epsilons), dtype=torch.float64).expand(kl.shape[1], -1)
    share_below = torch.searchsorted(ordered, eps.contiguous(), side="left") / kl.shape[0]
    return (share_below >= 1 - delta - 1e-12).sum(0).numpy()


def default_epsilons(n: int = 41) -> np.ndarray:
    """The log-spaced ε axis of the collapse curves: 1e-6 ... 10."""
    return np.logspace(-6, 1, n)


class RunningMoments:
    """Per-dimension mean and variance over a stream of ``(B, d)`` batches (Chan et al.'s merge,
    in float64), so the whole evaluation set counts without holding it or losing precision."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def update(self, batch: torch.Tensor) -> None:
        batch = batch.detach().double()
        n = batch.shape[0]
        if n == 0:
            return
        batch_mean = batch.mean(0)
        batch_m2 = ((batch - batch_mean) ** 2).sum(0)
        if self.mean is None:
            self.count, self.mean, self.m2 = n, batch_mean, batch_m2
            return
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + batch_m2 + delta**2 * (self.count * n / total)
        self.count = total

    @property
    def variance(self) -> torch.Tensor:
        """The population variance per dimension ``(d,)``."""
        if self.mean is None:
            raise InputError("no samples were seen.")
        return self.m2 / self.count


def active_units(mean_variance: torch.Tensor, threshold: float = AU_THRESHOLD) -> int:
    """Burda et al.'s count: dimensions with Cov_x(E_q[z_i | x]) above ``threshold``."""
    return int((mean_variance > threshold).sum())


def kl_active_fraction(kl: torch.Tensor, threshold: float = AU_THRESHOLD) -> float:
    """The share of (sample, dimension) pairs with KL ≥ ``threshold`` (what Dang et al.'s code
    reports as AU)."""
    return float((_check_kl(kl) >= threshold).double().mean())


def sorted_mean_abs_difference(learned: Sequence[float], theory: Sequence[float]) -> float:
    """D_MA: the mean absolute difference of the two sets sorted in decreasing order, the shorter
    zero-padded."""
    a, b = np.asarray(learned, dtype=float), np.asarray(theory, dtype=float)
    n = max(a.size, b.size)
    if n == 0:
        return 0.0
    a = np.sort(np.pad(a, (0, n - a.size)))[::-1]
    b = np.sort(np.pad(b, (0, n - b.size)))[::-1]
    return float(np.mean(np.abs(a - b)))


def _check_probability(delta: float) -> None:
    if not 0 <= delta < 1:
        raise InputError(f"delta must be in [0, 1); got {delta}.")


def mutual_information(
    mean: torch.Tensor,
    logvar: torch.Tensor,
    *,
    samples: int = 1,
    generator: torch.Generator | None = None,
    block: int = 256,
) -> tuple[float, float]:
    """I(x; z) under the data set's empirical distribution, in nats, with its standard error:
    ``mean`` and ``logvar`` ``(N, d)`` are q(z | x_n) for the N rows.

    With x uniform over the rows, I(x; z) is the information z carries about which row n it
    came from: log N − E_z H(n | z), z drawn from the aggregate posterior q(z) = (1/N) Σ_n
    q(z | x_n) (Hoffman & Johnson; He et al. 2019 estimate the same quantity with the row that
    drew z in place of the whole posterior p(n | z)). Each sample's term log N − H(n | z) lies
    in [0, log N], so the estimate is never negative, whatever the sampling noise, and is
    unbiased for this I; its ceiling log N is the price of measuring over N rows (a code that
    tells every row apart reaches it). ``samples`` draws per row; the N × N density matrix is
    formed ``block`` draws at a time."""
    if mean.shape != logvar.shape or mean.ndim != 2 or mean.shape[0] == 0:
        raise InputError(
            f"mean and logvar must both be (N, d); got {tuple(mean.shape)} and "
            f"{tuple(logvar.shape)}."
        )
    mean, logvar = mean.detach().double(), logvar.detach().double()
    n = mean.shape[0]
    inv_var = torch.exp(-logvar)  # (N, d)
    # Σ_i (z_i − μ_mi)² / σ²_mi = z² · (1/σ²_m) − 2 z · (μ_m/σ²_m) + Σ_i μ²_mi/σ²_mi: two matrix
    # products per block instead of a (B, N, d) tensor (float64 keeps the expansion exact enough)
    inv_var_t, scaled_mean_t = inv_var.T, (mean * inv_var).T  # (d, N)
    offset = (mean.square() * inv_var).sum(1) + logvar.sum(1)  # (N,)
    noise = torch.randn((samples, *mean.shape), dtype=torch.float64, generator=generator)
    draws = (mean + torch.exp(0.5 * logvar) * noise.to(mean.device)).reshape(-1, mean.shape[1])
    terms = []
    for chunk in draws.split(block):
        # log q(z_j | x_m) for every draw j of the chunk and every row m, up to a constant: (B, N)
        quadratic = chunk.square() @ inv_var_t - 2 * chunk @ scaled_mean_t
        log_q = -0.5 * (quadratic + offset)
        log_p = torch.log_softmax(log_q, dim=1)  # p(n | z)
        entropy = -(log_p.exp() * log_p).sum(1)
        terms.append((math.log(n) - entropy).clamp_min(0.0))  # rounding only: ≥ 0 exactly
    values = torch.cat(terms)
    error = float(values.std() / math.sqrt(values.numel())) if values.numel() > 1 else math.nan
    return float(values.mean()), error
