"""Synthetic generators reproduce the moments they promise."""

from __future__ import annotations

import numpy as np
import pytest

from vaecollapse.core.data import (
    TABLE4_CORRELATIONS,
    correlated_pairs,
    dai_two_points,
    gaussian_with_spectrum,
    synthetic_dataset,
)
from vaecollapse.core.errors import InputError


def second_moment(x: np.ndarray) -> np.ndarray:
    return x.T @ x / len(x)


def test_exact_spectrum_is_exact() -> None:
    lam = np.array([9.0, 4.0, 1.0, 0.25, 0.0])
    x = gaussian_with_spectrum(50, lam, seed=3, exact=True)
    assert np.allclose(np.linalg.eigvalsh(second_moment(x))[::-1], lam, atol=1e-10)
    unrotated = gaussian_with_spectrum(50, lam, seed=3, exact=True, rotate=False)
    assert np.allclose(second_moment(unrotated), np.diag(lam), atol=1e-10)


def test_sampled_spectrum_is_close() -> None:
    lam = np.array([4.0, 2.0, 1.0, 0.5])
    x = gaussian_with_spectrum(40_000, lam, seed=0)
    eigen = np.linalg.eigvalsh(second_moment(x))[::-1]
    assert np.allclose(eigen, lam, rtol=0.05)
    assert not np.allclose(second_moment(x), np.diag(lam), atol=0.1)  # really rotated


@pytest.mark.parametrize("a", TABLE4_CORRELATIONS)
def test_table4_pairs(a: float) -> None:
    x, y = correlated_pairs(a, n=20_000, dim=16, seed=1)
    tol = 5 / np.sqrt(20_000)
    assert x.shape == y.shape == (20_000, 16)
    assert np.allclose(x.T @ y / len(x), a * np.eye(16), atol=tol)
    assert np.allclose(second_moment(x), np.eye(16), atol=tol)
    if a == 1.0:
        assert np.array_equal(x, y)


def test_two_points() -> None:
    x = dai_two_points(3)
    assert x.shape == (6, 2)
    assert np.allclose(x.mean(0), 0) and np.allclose(second_moment(x), np.ones((2, 2)))
    assert {tuple(row) for row in x} == {(1.0, 1.0), (-1.0, -1.0)}


def test_bad_arguments() -> None:
    with pytest.raises(InputError):
        gaussian_with_spectrum(10, [1.0, -1.0])
    with pytest.raises(InputError):
        gaussian_with_spectrum(2, [1.0, 1.0, 1.0], exact=True)
    with pytest.raises(InputError):
        correlated_pairs(1.5)
    with pytest.raises(InputError):
        dai_two_points(0)


def test_wrapping_as_dataset() -> None:
    x, y = correlated_pairs(0.5, n=10, dim=3)
    dataset = synthetic_dataset("pairs", x, y)
    assert dataset.x_dim == 3 and dataset.y_dim == 3 and dataset.test is None
    assert dataset.summary()["checksums_verified"] is None
