"""appc-samplewise's per-sample objectives (Dang et al. Appendix C): with every Σ_i equal they are
the second-moment objectives the theory minimises, and the stds its Eq. (8)/(9) gives are where
each sample's gradient in its own variance vanishes, for any maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaecollapse.core.theory import vae_closed_form, vae_spectrum
from vaecollapse.core.theory.objective import cvae_loss, hierarchical_loss
from vaecollapse.reproductions.dang2024.samplewise_variance import (
    DTYPE,
    Problem,
    chain_losses,
    cvae_losses,
    formula_stds,
)

N, D, DY = 50, 6, 4
ETA_ENC, ETA_DEC = 1.3, 0.7


def _random(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)


def _positive(*shape: int, seed: int) -> torch.Tensor:
    return torch.exp(0.5 * _random(*shape, seed=seed))


@pytest.mark.parametrize("levels", [(3,), (3, 2)])
def test_chain_losses_with_equal_variances_are_the_moment_objective(levels) -> None:
    x = _random(N, D, seed=0)
    dims = (D, *levels)
    encoders = [_random(dims[i + 1], dims[i], seed=10 + i) for i in range(len(levels))]
    decoders = [_random(dims[i], dims[i + 1], seed=20 + i) for i in range(len(levels))]
    shared = [_positive(d, seed=30 + i) for i, d in enumerate(levels)]
    betas = (0.8, 1.7)[: len(levels)]
    per_sample = chain_losses(
        x, encoders, decoders, [v.expand(N, -1) for v in shared], betas, ETA_ENC, ETA_DEC
    )
    moment = x.T @ x / N
    log_eta = torch.tensor(np.log(ETA_DEC), dtype=DTYPE)
    expected = hierarchical_loss(moment, encoders, decoders, shared, betas, ETA_ENC, log_eta)
    assert per_sample.shape == (N,)
    torch.testing.assert_close(per_sample.mean(), expected, rtol=1e-12, atol=0)


def test_cvae_losses_with_equal_variances_are_the_moment_objective() -> None:
    x, y = _random(N, D, seed=1), _random(N, DY, seed=2)
    d = 3
    w1, w2 = _random(d, D, seed=3), _random(d, DY, seed=4)
    u1, u2 = _random(DY, d, seed=5), _random(DY, D, seed=6)
    var = _positive(d, seed=7)
    per_sample = cvae_losses(x, y, w1, w2, u1, u2, var.expand(N, -1), 1.4, ETA_ENC, ETA_DEC)
    a, b, c = x.T @ x / N, y.T @ y / N, y.T @ x / N
    log_eta = torch.tensor(np.log(ETA_DEC), dtype=DTYPE)
    expected = cvae_loss(a, b, c, w1, w2, u1, u2, var, 1.4, ETA_ENC, log_eta)
    torch.testing.assert_close(per_sample.mean(), expected, rtol=1e-12, atol=0)


def test_per_sample_variances_make_the_objective_depend_on_each_sample_alone() -> None:
    """Changing sample 0's Σ changes sample 0's loss and no other: the variances are its own."""
    x = _random(N, D, seed=0)
    w, u = _random(3, D, seed=1), _random(D, 3, seed=2)
    var = _positive(N, 3, seed=3)
    moved = var.clone()
    moved[0] *= 2.0
    before = chain_losses(x, [w], [u], [var], (1.0,))
    after = chain_losses(x, [w], [u], [moved], (1.0,))
    assert float(after[0] - before[0]) != 0.0
    torch.testing.assert_close(after[1:], before[1:], rtol=0, atol=0)


def _problem(
    conditional: bool, levels: tuple[int, ...], per_sample: tuple[bool, ...], betas
) -> Problem:
    """A Problem holding only what formula_stds reads (its shared optimum is a stand-in)."""
    spectrum = vae_spectrum(np.eye(D))
    return Problem(
        label="stand-in", conditional=conditional, shapes=(), levels=levels, per_sample=per_sample,
        losses=lambda m, v: torch.zeros(()), shared=vae_closed_form(spectrum, 1), betas=betas,
        eta_enc=ETA_ENC, eta_dec=ETA_DEC,
    )  # fmt: skip


def _stationary(losses, log_variances: list[torch.Tensor]) -> None:
    """Every sample's loss is stationary in every one of its log-variances."""
    total = losses([torch.exp(s) for s in log_variances]).sum()
    grads = torch.autograd.grad(total, log_variances)
    for grad in grads:
        assert float(grad.abs().max()) < 1e-12


@pytest.mark.parametrize("per_sample", [(True,), (True, True), (False, True)])
def test_formula_stds_are_where_each_samples_gradient_vanishes(per_sample) -> None:
    levels = (3, 2)[: len(per_sample)]
    dims = (D, *levels)
    encoders = [_random(dims[i + 1], dims[i], seed=40 + i) for i in range(len(levels))]
    decoders = [_random(dims[i], dims[i + 1], seed=50 + i) for i in range(len(levels))]
    betas = (0.6, 2.5)[: len(levels)]
    problem = _problem(False, levels, per_sample, betas)
    stds = iter(formula_stds(problem, encoders + decoders))
    x = _random(N, D, seed=9)
    logs = [
        torch.log(torch.as_tensor(next(stds), dtype=DTYPE) ** 2).expand(N, -1).clone()
        if free else torch.zeros(N, d, dtype=DTYPE)
        for d, free in zip(levels, per_sample, strict=True)
    ]  # fmt: skip
    free_logs = [s.requires_grad_() for s, free in zip(logs, per_sample, strict=True) if free]

    def losses(variances: list[torch.Tensor]) -> torch.Tensor:
        full, given = [], iter(variances)
        for s, free in zip(logs, per_sample, strict=True):
            full.append(next(given) if free else torch.exp(s))
        return chain_losses(x, encoders, decoders, full, betas, ETA_ENC, ETA_DEC)

    _stationary(losses, free_logs)


def test_cvae_formula_stds_are_where_each_samples_gradient_vanishes() -> None:
    x, y, d = _random(N, D, seed=1), _random(N, DY, seed=2), 3
    maps = [_random(d, D, seed=3), _random(d, DY, seed=4)]
    maps += [_random(DY, d, seed=5), _random(DY, D, seed=6)]
    (std,) = formula_stds(_problem(True, (d,), (True,), (1.9,)), maps)
    log = torch.log(torch.as_tensor(std, dtype=DTYPE) ** 2).expand(N, -1).clone()
    log.requires_grad_()
    _stationary(lambda v: cvae_losses(x, y, *maps, v[0], 1.9, ETA_ENC, ETA_DEC), [log])
