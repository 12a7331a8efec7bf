"""The MNIST spectra reproduce the values Dang et al. print (App. A.2 and Sec. 5.2), to the printed
precision, from the training split with uncentred moments."""

from __future__ import annotations

from pathlib import Path

import pytest

from vaecollapse.core.data import load_dataset
from vaecollapse.core.theory import cvae_spectrum, vae_spectrum

KS = (1, 2, 4, 8, 16, 32, 64)


def printed(value: float, text: str) -> bool:
    """Whether ``value`` rounds to the printed ``text`` (same number of decimals)."""
    decimals = len(text.split(".")[1])
    return abs(value - float(text)) <= 0.5 * 10**-decimals + 1e-12


def test_cvae_quadrant_thresholds(mnist_dir: Path) -> None:
    data = load_dataset("mnist-quadrant", data_dir=mnist_dir.parent)
    theta = cvae_spectrum(data.train.x, data.train.y).values
    paper = ("3.33", "2.09", "1.59", "0.84", "0.44", "0.19", "0.062")
    for k, text in zip(KS, paper, strict=True):
        assert printed(theta[k - 1], text), (k, theta[k - 1], text)


def test_mhvae_thresholds(mnist_dir: Path) -> None:
    theta = vae_spectrum(load_dataset("mnist", data_dir=mnist_dir.parent).train.x).values
    paper = ("6.17", "2.10", "1.80", "1.24", "0.89", "0.58", "0.34")
    for k, text in zip(KS, paper, strict=True):
        assert printed(theta[k - 1], text), (k, theta[k - 1], text)


@pytest.mark.parametrize(("digit", "text"), [(1, "6.41"), (9, "13.42"), (7, "18.64")])
def test_per_digit_top16_sums(mnist_dir: Path, digit: int, text: str) -> None:
    data = load_dataset("mnist-quadrant", digits=digit, data_dir=mnist_dir.parent)
    theta = cvae_spectrum(data.train.x, data.train.y).values
    assert printed(float(theta[:16].sum()), text), theta[:16].sum()
