"""Synthetic data whose answer is known: prescribed second moments, Dang et al.'s correlated pairs
(Table 4), and Dai et al.'s two-point data (Proposition 1). Arrays are float64 NumPy."""

from __future__ import annotations

import numpy as np
import torch

from vaecollapse.core.data.dataset import Dataset, Provenance, Split
from vaecollapse.core.errors import InputError

# Dang et al. Table 4: x = a*y + sqrt(1 - a^2)*u, from identical (a = 1) to independent (a = 0).
TABLE4_CORRELATIONS = (1.0, 1 / 2, 1 / 4, 1 / 8, 0.0)


def random_orthogonal(dim: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-distributed ``(dim, dim)`` orthogonal matrix (QR of a Gaussian, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


def _whiten(g: np.ndarray) -> np.ndarray:
    """Transform rows so that their second moment ``gᵀg/n`` is exactly the identity."""
    n = g.shape[0]
    evals, evecs = np.linalg.eigh(g.T @ g / n)
    return g @ evecs @ np.diag(evals**-0.5) @ evecs.T


def gaussian_with_spectrum(
    n: int,
    eigenvalues: np.ndarray | list[float],
    *,
    seed: int = 0,
    rotate: bool = True,
    exact: bool = False,
) -> np.ndarray:
    """``(n, D)`` zero-mean Gaussian samples with second moment E[x xᵀ] = Q diag(eigenvalues) Qᵀ.

    ``rotate``: Q is a random orthogonal matrix (else the identity). ``exact``: whiten the sample
    first so that the empirical second moment equals the prescribed one to rounding (needs n >= D);
    the theory then applies to the sample exactly.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if lam.ndim != 1 or lam.size == 0 or np.any(lam < 0) or not np.all(np.isfinite(lam)):
        raise InputError("eigenvalues must be a non-empty 1-D list of finite values >= 0.")
    dim = lam.size
    if n <= 0 or (exact and n < dim):
        raise InputError(f"need n > 0 samples (n >= D = {dim} when exact); got n = {n}.")
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n, dim))
    if exact:
        g = _whiten(g)
    q = random_orthogonal(dim, rng) if rotate else np.eye(dim)
    return (g * np.sqrt(lam)) @ q.T


def correlated_pairs(
    correlation: float, *, n: int = 1000, dim: int = 128, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Dang et al. Table 4: y ~ N(0, I), u ~ N(0, I), x = a*y + sqrt(1 - a²)*u. Returns ``(x, y)``,
    each ``(n, dim)``, so that E[x yᵀ] = a*I and E[x xᵀ] = E[y yᵀ] = I."""
    if not 0.0 <= correlation <= 1.0:
        raise InputError(f"correlation must lie in [0, 1]; got {correlation}.")
    rng = np.random.default_rng(seed)
    y = rng.standard_normal((n, dim))
    u = rng.standard_normal((n, dim))
    x = correlation * y + np.sqrt(1.0 - correlation**2) * u
    return x, y


def dai_two_points(repeats: int = 1) -> np.ndarray:
    """Dai et al. Proposition 1: the points (1, 1) and (-1, -1), each repeated ``repeats`` times,
    alternating. Shape ``(2 * repeats, 2)``."""
    if repeats < 1:
        raise InputError(f"repeats must be at least 1; got {repeats}.")
    return np.tile(np.array([[1.0, 1.0], [-1.0, -1.0]]), (repeats, 1))


def synthetic_dataset(name: str, x: np.ndarray, y: np.ndarray | None = None) -> Dataset:
    """Wrap generated arrays as a train-only Dataset (float32 tensors)."""
    split = Split(
        torch.as_tensor(x, dtype=torch.float32),
        None if y is None else torch.as_tensor(y, dtype=torch.float32),
    )
    return Dataset(
        name=name,
        train=split,
        test=None,
        image_shape=None,
        provenance=Provenance(kind="synthetic"),
        view="flat" if y is None else "paired",
    )
