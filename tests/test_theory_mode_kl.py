"""Each mode's KL at a closed-form optimum, checked by the envelope theorem: at the optimum the
loss's derivative in a KL weight is the KL it weighs (the maps' own change contributes nothing),
so a central difference of the optimal loss in β (β2 for the MHVAE) must equal the sum of the
modes' KLs — a check that does not use the KL formula the closed forms use."""

from __future__ import annotations

import pytest

from vaecollapse.core.data import correlated_pairs, gaussian_with_spectrum
from vaecollapse.core.theory import (
    cvae_closed_form,
    cvae_spectrum_from_moments,
    mhvae_closed_form,
    moments,
    vae_closed_form,
    vae_spectrum_from_moment,
)

STEP = 1e-5  # relative; the optimal loss is smooth away from the thresholds


def slope(loss_at, weight: float) -> float:
    h = STEP * weight
    return (loss_at(weight + h) - loss_at(weight - h)) / (2 * h)


@pytest.fixture(scope="module")
def vae_spectrum():
    x = gaussian_with_spectrum(40, [30.0, 9.0, 3.0, 1.0, 0.2], seed=0, exact=True)
    return vae_spectrum_from_moment(moments(x)[0])


@pytest.mark.parametrize("sigma", [None, 0.5, [0.3, 0.8, 1.4]])
def test_vae_mode_kls_are_the_losss_slope_in_beta(vae_spectrum, sigma) -> None:
    def optimum(beta: float):
        return vae_closed_form(vae_spectrum, 3, beta=beta, eta_enc=1.3, eta_dec=0.7, sigma=sigma)

    kls = optimum(2.0).per_mode["kl"]
    assert (kls > 0).sum() >= 2 and (kls >= 0).all()  # kept modes, and a collapsed one or not
    assert kls.sum() == pytest.approx(slope(lambda b: optimum(b).loss, 2.0), rel=1e-6)


def test_cvae_mode_kls_are_the_losss_slope_in_beta() -> None:
    x, y = correlated_pairs(0.6, n=200, dim=4, seed=1)
    spectrum = cvae_spectrum_from_moments(*moments(x, y))

    def optimum(beta: float):
        return cvae_closed_form(spectrum, 4, beta=beta)

    kls = optimum(0.65).per_mode["kl"]
    assert 0 < (kls > 1e-9).sum() < 4  # some modes kept, some collapsed
    assert kls.sum() == pytest.approx(slope(lambda b: optimum(b).loss, 0.65), rel=1e-6)


@pytest.mark.parametrize("sigma2", [None, 0.7])
def test_mhvae_z2_mode_kls_are_the_losss_slope_in_beta2(vae_spectrum, sigma2) -> None:
    def optimum(beta2: float):
        return mhvae_closed_form(
            vae_spectrum, 4, 3, beta1=0.7, beta2=beta2, eta_dec=0.6, sigma1=0.5, sigma2=sigma2
        )

    kls = optimum(1.2).per_mode["kl_z2"]
    assert (kls > 1e-9).sum() >= 1
    assert kls.sum() == pytest.approx(slope(lambda b: optimum(b).loss, 1.2), rel=1e-6)
