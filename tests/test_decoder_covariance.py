"""dai-taxonomy-iii's energy terms against direct quadrature of their defining expectations, on a
small data set and at a δ large enough for a dense grid to resolve the variance's dip."""

from __future__ import annotations

import math

import numpy as np

from vaecollapse.reproductions.dai2020.decoder_covariance import (
    CENTRE,
    ENCODER_POWER,
    WIDTH_POWER,
    anchor_terms,
    construction,
    energy,
    others_term,
)

DELTA = 0.6


def _data():
    x = np.random.default_rng(0).normal(size=(5, 3))
    return x, construction(x)


def _variance(z: np.ndarray, s2: float) -> np.ndarray:
    r = DELTA**WIDTH_POWER
    return s2 - (s2 - DELTA**2) * np.exp(-((z - CENTRE) ** 2) / (2 * r**2))


def _expectation(values: np.ndarray, z: np.ndarray, mean: float, std: float) -> float:
    density = np.exp(-(((z - mean) / std) ** 2) / 2) / (std * math.sqrt(2 * math.pi))
    return float(np.trapezoid(values * density, z))


def test_the_other_images_term_is_their_expected_fit_under_the_prior() -> None:
    x, data = _data()
    z = np.linspace(-12, 12, 2_000_001)
    variance = _variance(z, data.spread)
    errors = ((x[1:] - x[0]) ** 2).sum(1)
    fit = errors.sum() / (2 * variance) + len(errors) * x.shape[1] / 2 * np.log(
        2 * math.pi * variance
    )
    expected = _expectation(fit, z, 0.0, 1.0)
    assert math.isclose(others_term(data, DELTA), expected, rel_tol=1e-9)


def test_the_anchor_terms_are_its_expected_fit_and_kl_under_its_posterior() -> None:
    x, data = _data()
    tau = DELTA**ENCODER_POWER
    z = np.linspace(CENTRE - 14 * tau, CENTRE + 14 * tau, 2_000_001)
    expected_fit = _expectation(
        x.shape[1] / 2 * np.log(2 * math.pi * _variance(z, data.spread)), z, CENTRE, tau
    )
    fit, kl = anchor_terms(data, DELTA)
    assert math.isclose(fit, expected_fit, rel_tol=1e-9)
    assert math.isclose(kl, 0.5 * (tau**2 + CENTRE**2 - 1 - math.log(tau**2)), rel_tol=1e-12)


def test_one_gamma_at_its_best_is_the_closed_form_energy() -> None:
    x, data = _data()
    row = energy(data, DELTA)
    gamma = ((x[1:] - x[0]) ** 2).sum() / x.size
    assert math.isclose(row["best_gamma"], gamma, rel_tol=1e-12)
    closed = x.shape[1] / 2 * (math.log(2 * math.pi * gamma) + 1) + row["anchor_kl"] / len(x)
    assert math.isclose(row["energy_shared_gamma"], closed, rel_tol=1e-12)
