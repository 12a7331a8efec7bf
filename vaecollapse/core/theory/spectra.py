"""Data spectra that decide collapse (Dang et al., notation of docs/conventions.md).

VAE / MHVAE: θ_i = singular values of Z = E[x x̃ᵀ] = √eig(A), A = E[x xᵀ].
CVAE: θ_i = eigenvalues of E = B − C A⁺ Cᵀ, B = E[y yᵀ], C = E[y xᵀ]: the second moment of what
is left of y after its best linear prediction from x.

Moments are uncentred (as in the paper) unless ``center=True``. A⁺ is the pseudo-inverse on the
positive eigenspace of A: eigenvalues at or below ``PINV_RTOL * max eigenvalue`` count as zero
(MNIST's border pixels are always 0, so A is singular there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vaecollapse.core.errors import InputError

PINV_RTOL = 1e-10


@dataclass(frozen=True)
class Spectrum:
    """``values``: θ, non-increasing, one per data dimension (zeros included), float64.
    ``conditional``: False for a VAE's θ = √eig A, True for a CVAE's θ = eig E. ``dim``: D of the
    reconstructed variable."""

    values: np.ndarray
    conditional: bool

    @property
    def dim(self) -> int:
        return int(self.values.size)

    def padded(self, length: int) -> np.ndarray:
        """θ_1..θ_length, with θ_i = 0 beyond the data dimension (the paper's convention)."""
        out = np.zeros(length)
        k = min(length, self.dim)
        out[:k] = self.values[:k]
        return out


def _as_float64_matrix(x: object, what: str) -> np.ndarray:
    from vaecollapse.core.data.userfiles import validate_matrix

    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    return validate_matrix(x, what).astype(np.float64)


def moments(
    x: object, y: object | None = None, *, center: bool = False
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Second moments A = E[x xᵀ] ``(D0, D0)``, B = E[y yᵀ] and C = E[y xᵀ] ``(D2, D0)``."""
    xs = _as_float64_matrix(x, "x")
    if center:
        xs = xs - xs.mean(0)
    n = xs.shape[0]
    a = xs.T @ xs / n
    if y is None:
        return a, None, None
    ys = _as_float64_matrix(y, "y")
    if ys.shape[0] != n:
        raise InputError(f"x has {n} rows but y has {ys.shape[0]}; they must be paired.")
    if center:
        ys = ys - ys.mean(0)
    return a, ys.T @ ys / n, ys.T @ xs / n


def descending_eigenvalues(m: np.ndarray) -> np.ndarray:
    values = np.linalg.eigvalsh((m + m.T) / 2)[::-1]
    return np.clip(values, 0.0, None)


def vae_spectrum_from_moment(a: np.ndarray) -> Spectrum:
    return Spectrum(np.sqrt(descending_eigenvalues(a)), conditional=False)


@dataclass(frozen=True)
class PositiveEigenspace:
    """The eigenvalues of a PSD matrix above ``PINV_RTOL`` × the largest, in descending order:
    ``basis`` ``(D, k)``, ``values`` ``(k,)``; ``dropped_trace``: the sum of the rest (≥ 0);
    ``full_dim``: D."""

    basis: np.ndarray
    values: np.ndarray
    dropped_trace: float
    full_dim: int

    @classmethod
    def of(cls, m: np.ndarray) -> PositiveEigenspace:
        m = np.asarray(m, dtype=np.float64)
        evals, evecs = np.linalg.eigh((m + m.T) / 2)
        evals, evecs = evals[::-1], evecs[:, ::-1]
        keep = evals > PINV_RTOL * max(float(evals[0]), 0.0)
        dropped = float(np.clip(evals[~keep], 0, None).sum())
        return cls(evecs[:, keep], evals[keep], dropped, m.shape[0])

    def pseudo_inverse(self) -> np.ndarray:
        return (self.basis / self.values) @ self.basis.T


def pseudo_inverse_psd(a: np.ndarray) -> np.ndarray:
    """A⁺ restricted to the positive eigenspace of the PSD matrix ``a`` (see PositiveEigenspace)."""
    return PositiveEigenspace.of(a).pseudo_inverse()


def residual_moment(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """E = B − C A⁺ Cᵀ ``(D2, D2)``: second moment of y minus its best linear prediction from x."""
    e = b - c @ pseudo_inverse_psd(a) @ c.T
    return (e + e.T) / 2


def cvae_spectrum_from_moments(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> Spectrum:
    return Spectrum(descending_eigenvalues(residual_moment(a, b, c)), conditional=True)


def _training_split(source: object) -> tuple[object, object | None]:
    """A data set name (``"mnist"``, ``"mnist-quadrant"`` ...) or Dataset -> its training (x, y)."""
    from vaecollapse.core.data import Dataset, load_dataset

    dataset = load_dataset(source) if isinstance(source, str) else source
    if not isinstance(dataset, Dataset):
        raise InputError(f"expected an array, a Dataset or a data set name; got {type(source)}.")
    return dataset.train.x, dataset.train.y


def vae_spectrum(x: object, *, center: bool = False) -> Spectrum:
    """θ for a VAE / MHVAE on data ``x``: an ``(N, D)`` array or tensor, a Dataset or a data set
    name (its training split)."""
    if isinstance(x, str) or hasattr(x, "train"):
        x, _ = _training_split(x)
    a, _, _ = moments(x, center=center)
    return vae_spectrum_from_moment(a)


def cvae_spectrum(x: object, y: object | None = None, *, center: bool = False) -> Spectrum:
    """θ for a CVAE with condition ``x`` ``(N, D0)`` and target ``y`` ``(N, D2)``; or pass a paired
    Dataset or data set name (``"mnist-quadrant"``) as ``x`` alone."""
    if y is None:
        x, y = _training_split(x)
        if y is None:
            raise InputError("a CVAE spectrum needs paired data (x, y), e.g. 'mnist-quadrant'.")
    a, b, c = moments(x, y, center=center)
    return cvae_spectrum_from_moments(a, b, c)
