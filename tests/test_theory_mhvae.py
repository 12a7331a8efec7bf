"""The two-level MHVAE: closed forms (Theorems 3 and 5, any d0, d1, d2) against the numeric optimum,
the paper's printed case rules against the exact branch comparison, achievability, thresholds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vaecollapse.core.data import gaussian_with_spectrum
from vaecollapse.core.theory import (
    SolverOptions,
    mhvae_closed_form,
    mhvae_thresholds,
    moments,
    solve_hierarchical,
    vae_closed_form,
    vae_spectrum_from_moment,
)
from vaecollapse.core.theory.closed_form import _mhvae_modes
from vaecollapse.core.theory.objective import hierarchical_loss

from .test_theory_closed_vs_numeric import N_CONFIGS, _log_uniform, assert_same

OPTIONS = SolverOptions(restarts=3)


def _near_switch(spectrum, d1, d2, b1, b2, ee, ed, s1, s2) -> bool:
    rows = mhvae_thresholds(
        spectrum, d1, d2, beta1=b1, beta2=b2, eta_enc=ee, eta_dec=ed, sigma1=s1, sigma2=s2
    )
    theta = spectrum.padded(d1)
    near_z2 = any(abs(r["beta2"] / b2 - 1) < 0.05 for r in rows)
    near_z1 = np.any(np.abs(theta / (math.sqrt(b1) * s1) - 1) < 0.05)
    near_z1 |= np.any(np.abs(theta**2 / (b2 * ed**2) - 1) < 0.05)
    return near_z2 or bool(near_z1)


def mhvae_configs(fixed_sigma2: bool, seed: int):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < N_CONFIGS:
        dim = int(rng.integers(2, 6))
        d1, d2 = int(rng.integers(1, dim + 2)), int(rng.integers(1, dim + 2))
        eig = np.sort(np.exp(rng.uniform(math.log(0.05), math.log(20), dim)))[::-1]
        x = gaussian_with_spectrum(40, eig, seed=int(rng.integers(1 << 30)), exact=True)
        a, _, _ = moments(x)
        spectrum = vae_spectrum_from_moment(a)
        b1, b2 = _log_uniform(rng, 0.15, 6), _log_uniform(rng, 0.15, 6)
        ee, ed = _log_uniform(rng, 0.4, 2.5), _log_uniform(rng, 0.4, 2)
        s1 = _log_uniform(rng, 0.25, 2)
        s2 = _log_uniform(rng, 0.25, 2) if fixed_sigma2 else None
        if not _near_switch(spectrum, d1, d2, b1, b2, ee, ed, s1, s2):
            out.append((a, spectrum, d1, d2, b1, b2, ee, ed, s1, s2))
    return out


@pytest.mark.parametrize("fixed_sigma2", [False, True], ids=["theorem3", "theorem5"])
def test_mhvae_closed_form_equals_numeric(fixed_sigma2: bool) -> None:
    regimes = set()
    for a, spectrum, d1, d2, b1, b2, ee, ed, s1, s2 in mhvae_configs(fixed_sigma2, seed=5):
        closed = mhvae_closed_form(
            spectrum, d1, d2, beta1=b1, beta2=b2, eta_enc=ee, eta_dec=ed, sigma1=s1, sigma2=s2
        )
        numeric = solve_hierarchical(
            a, [d1, d2], [b1, b2], eta_enc=ee, eta_dec=ed, sigmas=[s1, s2], options=OPTIONS
        )
        assert_same(closed, numeric)
        z2 = closed.active_dims["z2"]
        regimes.add("z2 complete" if z2 == 0 else "z2 full" if z2 == d2 else "z2 partial")
        regimes.add("z1 partial" if closed.active_dims["z1"] < d1 else "z1 full")
    assert regimes >= {"z2 complete", "z2 partial", "z2 full", "z1 partial", "z1 full"}


def _printed_case(theta, b1, b2, ee, ed, s1, s2):
    """Dang et al.'s printed case rule (Theorem 3 for s2 None, Theorem 5 otherwise), as we read it:
    returns m = λ² + σ1² and g = β1 ω² + c² β2 for each θ."""
    c2, e2 = (ed / ee) ** 2, ed**2
    if s2 is None:
        active = theta**2 >= b2 * e2 / s1**2 * max(s1**2, b2 * e2 / b1)
        silent_branch_fits = s1**2 >= b2 * e2 / b1
        m_a = theta**2 * s1**2 / (e2 * b2)
        g_of = lambda m: np.maximum(c2 * b2, m * b1 / ee**2)  # noqa: E731
    else:
        c = math.sqrt(c2)
        active = theta >= max(
            math.sqrt(math.sqrt(b1 * b2) * c * s1 * s2), b2 * c2 * s2**2 / (math.sqrt(b1) * s1)
        )
        silent_branch_fits = math.sqrt(b1) * s1 >= math.sqrt(b2) * c * s2
        m_a = (theta**2 * s1**2 / (s2 * c * math.sqrt(b1 * b2))) ** (2 / 3)
        g_of = lambda m: np.maximum(c2 * b2, np.sqrt(m * b1 * c2 * b2) / s2)  # noqa: E731
    m_c = np.maximum(s1**2, theta * s1 / math.sqrt(b1))
    m = np.where(active, m_a, s1**2 if silent_branch_fits else m_c)
    g = np.where(active | silent_branch_fits, g_of(m), c2 * b2)
    return m, g


@pytest.mark.parametrize("fixed_sigma2", [False, True], ids=["theorem3", "theorem5"])
def test_printed_case_rules_agree_with_exact_branch_comparison(fixed_sigma2: bool) -> None:
    rng = np.random.default_rng(3)
    theta = np.exp(rng.uniform(-2, 2, 400))
    for _ in range(50):
        b1, b2 = math.exp(rng.uniform(-2.5, 2.5)), math.exp(rng.uniform(-2.5, 2.5))
        ee, ed = math.exp(rng.uniform(-1, 1)), math.exp(rng.uniform(-1.5, 1))
        s1 = math.exp(rng.uniform(-2, 1))
        s2 = math.exp(rng.uniform(-2, 1)) if fixed_sigma2 else None
        m, g = _mhvae_modes(theta, s1, s2, b1, b2, ee, ed)
        m_p, g_p = _printed_case(theta, b1, b2, ee, ed, s1, s2)
        np.testing.assert_allclose(m, m_p, rtol=1e-9)
        np.testing.assert_allclose(g, g_p, rtol=1e-9)


def test_closed_forms_are_achievable() -> None:
    """Matrices built from the closed forms' per-mode values reach the reported loss exactly."""
    x = gaussian_with_spectrum(60, [12.0, 5.0, 2.0, 0.7, 0.2], seed=2, exact=True)
    a, _, _ = moments(x)
    spectrum = vae_spectrum_from_moment(a)
    a_diag = torch.tensor(spectrum.values**2)
    theta = torch.tensor(spectrum.values)
    f64 = dict(dtype=torch.float64)

    def embed(values, rows: int, cols: int) -> torch.Tensor:
        out = torch.zeros(rows, cols, **f64)
        k = min(rows, cols, len(values))
        out[range(k), range(k)] = torch.as_tensor(np.asarray(values)[:k], **f64)
        return out

    vae = vae_closed_form(spectrum, 3, beta=1.5, eta_dec=0.8, sigma=[0.4, 0.9, 0.6])
    mode = vae.per_mode
    w1 = embed(mode["V"], 3, 5) / theta  # W = V Φ^{-1/2} in A's eigenbasis
    loss = hierarchical_loss(
        a_diag,
        [w1],
        [embed(mode["U"], 5, 3)],
        [torch.as_tensor(mode["std"] ** 2)],
        [1.5],
        1.0,
        torch.tensor(math.log(0.8), **f64),
    )
    assert float(loss) == pytest.approx(vae.loss, rel=1e-12)

    mh = mhvae_closed_form(spectrum, 4, 3, beta1=0.7, beta2=1.8, eta_dec=0.6, sigma1=0.5)
    mode = mh.per_mode
    encoders = [embed(mode["V1"], 4, 5) / theta, embed(mode["W2"], 3, 4)]
    decoders = [embed(mode["U1"], 5, 4), embed(mode["U2"], 4, 3)]
    variances = [torch.full((4,), 0.25, **f64), torch.as_tensor(mode["std_z2"] ** 2)]
    loss = hierarchical_loss(
        a_diag, encoders, decoders, variances, [0.7, 1.8], 1.0, torch.tensor(math.log(0.6), **f64)
    )
    assert float(loss) == pytest.approx(mh.loss, rel=1e-12)


@pytest.mark.parametrize("fixed_sigma2", [None, 0.7])
def test_mhvae_thresholds_flip_the_closed_form(fixed_sigma2) -> None:
    spectrum = vae_spectrum_from_moment(
        moments(gaussian_with_spectrum(40, [30.0, 9.0, 3.0, 1.0], seed=0, exact=True))[0]
    )
    kw = dict(beta1=0.8, eta_enc=1.2, eta_dec=0.9, sigma1=0.6, sigma2=fixed_sigma2)
    rows = mhvae_thresholds(spectrum, 4, 4, beta2=1.0, **kw)
    for row in rows:

        def z2(**change):
            args = kw | {"beta2": 1.0} | change
            return mhvae_closed_form(spectrum, 4, 4, **args).active_dims["z2"]

        assert z2(beta2=row["beta2"] * 0.98) == z2(beta2=row["beta2"] * 1.02) + 1
        assert z2(eta_dec=row["eta_dec"] * 0.99) == z2(eta_dec=row["eta_dec"] * 1.01) + 1
        assert z2(beta1=row["beta1"] * 1.02) == z2(beta1=row["beta1"] * 0.98) + 1
        assert z2(sigma1=row["sigma1"] * 1.01) == z2(sigma1=row["sigma1"] * 0.99) + 1


def test_configurations_without_closed_form() -> None:
    """Both variances learnable, and three levels: only the numeric solver covers them. Learning
    Σ1 can only help: its optimum is at or below Theorem 3's for any fixed isotropic σ1."""
    x = gaussian_with_spectrum(40, [10.0, 4.0, 1.5, 0.5], seed=6, exact=True)
    a, _, _ = moments(x)
    spectrum = vae_spectrum_from_moment(a)
    both = solve_hierarchical(a, [3, 3], [1.0, 1.5], sigmas=[None, None], options=OPTIONS)
    assert both.learnable == {"z1": True, "z2": True}
    for sigma1 in (0.2, 0.5, 1.0, 2.0):
        fixed = mhvae_closed_form(spectrum, 3, 3, beta1=1.0, beta2=1.5, sigma1=sigma1)
        assert both.loss <= fixed.loss + 1e-9
    three = solve_hierarchical(
        a, [3, 2, 2], [1.0, 1.0, 50.0], sigmas=[0.5, None, None], options=OPTIONS
    )
    assert set(three.active_dims) == {"z1", "z2", "z3"}
    assert three.active_dims["z3"] == 0  # a huge β on the top level collapses it
    np.testing.assert_allclose(three.encoder_std["z3"], 1.0, rtol=1e-5)
