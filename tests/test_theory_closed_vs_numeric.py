"""Every closed form against the independent numeric optimum of the same objective.

30 random configurations per case: dimensions (including a latent dimension above the data
dimension), spectra, β, η_enc, η_dec and fixed σ's, drawn so that fully active, partly and
completely collapsed regimes all occur. Draws within 3% of a collapse threshold are redrawn: there
the optimum is flat to fourth order and no solver pins the singular values to 1e-4.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from vaecollapse.core.data import correlated_pairs, gaussian_with_spectrum
from vaecollapse.core.theory import (
    SolverOptions,
    collapse_thresholds,
    cvae_closed_form,
    cvae_spectrum_from_moments,
    moments,
    ppca_closed_form,
    solve_cvae,
    solve_hierarchical,
    vae_closed_form,
    vae_spectrum_from_moment,
)

N_CONFIGS = 30
OPTIONS = SolverOptions(restarts=2)
RTOL = 1e-4


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _near_threshold(spectrum, d, beta, eta_enc, eta_dec, sigma) -> bool:
    rows = collapse_thresholds(
        spectrum, d, beta=beta, eta_enc=eta_enc, eta_dec=eta_dec, sigma=sigma
    )
    return any(abs(r["beta"] / beta - 1) < 0.03 for r in rows if r["beta"] > 0)


def vae_configs(kind: str, seed: int):
    """Random (moment, spectrum, d, β, η_enc, η_dec, σ) draws for one case."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < N_CONFIGS:
        dim = int(rng.integers(2, 7))
        d = int(rng.integers(1, dim + 2))  # sometimes more latents than data dimensions
        eig = np.sort(np.exp(rng.uniform(math.log(0.05), math.log(20), dim)))[::-1]
        if rng.random() < 0.2:
            eig[-1] = 0.0  # a zero-variance direction
        x = gaussian_with_spectrum(
            max(4 * dim, 20), eig, seed=int(rng.integers(1 << 30)), exact=True
        )
        a, _, _ = moments(x)
        spectrum = vae_spectrum_from_moment(a)
        beta = _log_uniform(rng, 0.1, 10)
        eta_enc, eta_dec = _log_uniform(rng, 0.3, 3), _log_uniform(rng, 0.3, 2)
        sigma = None
        if kind == "isotropic":
            sigma = _log_uniform(rng, 0.1, 2)
        elif kind == "distinct":
            sigma = [_log_uniform(rng, 0.1, 2) for _ in range(d)]
        if not _near_threshold(spectrum, d, beta, eta_enc, eta_dec, sigma):
            out.append((a, spectrum, d, beta, eta_enc, eta_dec, sigma))
    return out


def assert_same(closed, numeric) -> None:
    assert numeric.loss >= closed.loss - 1e-9 * abs(closed.loss), "numeric beat the closed form"
    assert numeric.loss == pytest.approx(closed.loss, rel=1e-6, abs=1e-8)
    for name, values in closed.singular_values.items():
        scale = max(1.0, float(values.max(initial=0.0)))
        np.testing.assert_allclose(
            numeric.singular_values[name], values, rtol=RTOL, atol=RTOL * scale
        )
    for level, stds in closed.encoder_std.items():
        np.testing.assert_allclose(numeric.encoder_std[level], stds, rtol=RTOL)
    assert numeric.active_dims == closed.active_dims


def _regimes(results) -> set[str]:
    seen = set()
    for opt, d in results:
        active = next(iter(opt.active_dims.values()))
        seen.add("complete" if active == 0 else "full" if active == d else "partial")
    return seen


@pytest.mark.parametrize("kind", ["learnable", "isotropic", "distinct"])
def test_vae_theorems_1_and_4(kind: str) -> None:
    results = []
    seed = {"learnable": 1, "isotropic": 2, "distinct": 3}[kind]
    for a, spectrum, d, beta, eta_enc, eta_dec, sigma in vae_configs(kind, seed=seed):
        closed = vae_closed_form(
            spectrum, d, beta=beta, eta_enc=eta_enc, eta_dec=eta_dec, sigma=sigma
        )
        numeric = solve_hierarchical(
            a, [d], [beta], eta_enc=eta_enc, eta_dec=eta_dec, sigmas=[sigma], options=OPTIONS
        )
        assert_same(closed, numeric)
        results.append((closed, d))
    assert _regimes(results) == {"complete", "partial", "full"}


def test_ppca_is_the_vae_with_learnable_decoder_std() -> None:
    rng = np.random.default_rng(7)
    for _ in range(N_CONFIGS):
        dim = int(rng.integers(2, 7))
        d = int(rng.integers(1, dim))  # pPCA needs d < D
        eig = np.sort(np.exp(rng.uniform(math.log(0.05), math.log(20), dim)))[::-1]
        x = gaussian_with_spectrum(4 * dim + 20, eig, seed=int(rng.integers(1 << 30)), exact=True)
        a, _, _ = moments(x)
        spectrum = vae_spectrum_from_moment(a)
        closed = ppca_closed_form(spectrum, d)
        numeric = solve_hierarchical(a, [d], [1.0], eta_dec=None, options=OPTIONS)
        assert numeric.loss == pytest.approx(closed.loss, rel=1e-8)
        assert numeric.hyper["eta_dec"] == pytest.approx(closed.hyper["eta_dec"], rel=1e-5)
        np.testing.assert_allclose(
            numeric.singular_values["U"], closed.singular_values["U"], rtol=RTOL, atol=RTOL
        )


def test_ppca_matches_scikit_learn_likelihood() -> None:
    """An oracle from outside this project: sklearn's pPCA log-likelihood on centred data. sklearn
    estimates the covariance with n − 1; fitting it on x·√((n−1)/n) gives it our E[x xᵀ] exactly."""
    from sklearn.decomposition import PCA

    x = gaussian_with_spectrum(500, [6.0, 3.0, 1.0, 0.4, 0.3, 0.2], seed=4)
    x = x - x.mean(0)
    a, _, _ = moments(x)
    closed = ppca_closed_form(vae_spectrum_from_moment(a), 2)
    n = len(x)
    sklearn_model = PCA(n_components=2).fit(x * math.sqrt((n - 1) / n))
    assert -closed.loss == pytest.approx(sklearn_model.score(x), rel=1e-8)
    assert closed.hyper["eta_dec"] ** 2 == pytest.approx(sklearn_model.noise_variance_, rel=1e-8)


def cvae_configs(fixed_sigma: bool, seed: int):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < N_CONFIGS:
        d0, d2 = int(rng.integers(2, 6)), int(rng.integers(2, 6))
        d = int(rng.integers(1, d2 + 2))
        n = 40
        x = rng.standard_normal((n, d0)) * np.exp(rng.uniform(-1, 1, d0))
        mix = rng.standard_normal((d0, d2)) * rng.uniform(0, 1.5)
        y = x @ mix + rng.standard_normal((n, d2)) * np.exp(rng.uniform(-1.5, 1, d2))
        if rng.random() < 0.15:
            y[:, 0] = x[:, 0]  # one output fully predicted by x: a zero of E
        a, b, c = moments(x, y)
        spectrum = cvae_spectrum_from_moments(a, b, c)
        beta = _log_uniform(rng, 0.05, 5)
        eta_enc, eta_dec = _log_uniform(rng, 0.3, 3), _log_uniform(rng, 0.3, 2)
        sigma = [_log_uniform(rng, 0.1, 2) for _ in range(d)] if fixed_sigma else None
        if not _near_threshold(spectrum, d, beta, eta_enc, eta_dec, sigma):
            out.append(((a, b, c), spectrum, d, beta, eta_enc, eta_dec, sigma))
    return out


@pytest.mark.parametrize("fixed_sigma", [False, True], ids=["theorem2", "fixed"])
def test_cvae_theorem_2_and_fixed_variance(fixed_sigma: bool) -> None:
    results = []
    for m, spectrum, d, beta, eta_enc, eta_dec, sigma in cvae_configs(fixed_sigma, seed=11):
        closed = cvae_closed_form(
            spectrum, d, beta=beta, eta_enc=eta_enc, eta_dec=eta_dec, sigma=sigma
        )
        numeric = solve_cvae(
            *m, d, beta, eta_enc=eta_enc, eta_dec=eta_dec, sigma=sigma, options=OPTIONS
        )
        assert_same(closed, numeric)
        results.append((closed, d))
    assert _regimes(results) == {"complete", "partial", "full"}


def test_cvae_correlation_drives_collapse() -> None:
    """Dang et al.: x = y collapses z completely; independent x keeps the most dimensions."""
    active = []
    for corr in (1.0, 0.5, 0.0):
        x, y = correlated_pairs(corr, n=400, dim=8, seed=0)
        spectrum = cvae_spectrum_from_moments(*moments(x, y))
        active.append(cvae_closed_form(spectrum, 8, beta=1.0, eta_dec=0.5).active_dims["z"])
    assert active[0] == 0 and active[0] < active[1] <= active[2] == 8
