"""ELBO terms against torch.distributions, Monte Carlo, and the theory engine's exact objective."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vaecollapse.core.data import gaussian_with_spectrum
from vaecollapse.core.objectives import (
    gaussian_nll,
    gaussian_nll_sum,
    kl_diag_gaussians,
    kl_to_prior,
    linear_expected_nll,
)
from vaecollapse.core.theory.objective import hierarchical_loss

F64 = dict(dtype=torch.float64)


def test_gaussian_nll_matches_torch() -> None:
    g = torch.Generator().manual_seed(0)
    x, mean = torch.randn(4, 6, generator=g, **F64), torch.randn(4, 6, generator=g, **F64)
    for std in (0.3, torch.full((6,), 1.7, **F64)):
        expected = -Normal(mean, torch.as_tensor(std, **F64)).log_prob(x)
        assert torch.allclose(gaussian_nll(x, mean, std), expected)


def test_summed_nll_matches_torch_with_its_gradients_for_every_kind_of_scale() -> None:
    """Codes (K, B, D) against data (B, D): the value and the gradients (mean and learnt scale)
    of torch's log-density summed over D, with one scale (the fused path) or one per dimension."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, generator=g, **F64)
    for std in (torch.tensor(0.4, **F64), torch.linspace(0.3, 2.0, 5, **F64)):
        ours_mean = torch.randn(2, 3, 5, generator=g, **F64).requires_grad_()
        torch_mean = ours_mean.detach().clone().requires_grad_()
        ours_std, torch_std = std.clone().requires_grad_(), std.clone().requires_grad_()
        ours = gaussian_nll_sum(x, ours_mean, ours_std)
        expected = -Normal(torch_mean, torch_std).log_prob(x).sum(-1)
        assert ours.shape == (2, 3)
        torch.testing.assert_close(ours, expected)
        weights = torch.randn(2, 3, generator=g, **F64)  # a gradient other than all ones
        (ours * weights).sum().backward()
        (expected * weights).sum().backward()
        torch.testing.assert_close(ours_mean.grad, torch_mean.grad)
        torch.testing.assert_close(ours_std.grad, torch_std.grad)


def test_kl_matches_torch_distributions() -> None:
    g = torch.Generator().manual_seed(1)
    mq, lq = torch.randn(5, 3, generator=g, **F64), torch.randn(5, 3, generator=g, **F64)
    mp, lp = torch.randn(5, 3, generator=g, **F64), torch.randn(5, 3, generator=g, **F64)
    expected = kl_divergence(Normal(mq, torch.exp(lq / 2)), Normal(mp, torch.exp(lp / 2)))
    assert torch.allclose(kl_diag_gaussians(mq, lq, mp, lp), expected)
    prior = kl_divergence(Normal(mq, torch.exp(lq / 2)), Normal(torch.zeros_like(mq), 0.5))
    assert torch.allclose(kl_to_prior(mq, lq, eta_enc=0.5), prior)
    assert torch.allclose(kl_to_prior(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2, 3))
    with pytest.raises(ValueError):
        kl_to_prior(mq, lq, eta_enc=0.0)


def test_analytic_linear_reconstruction_equals_monte_carlo() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 5, generator=g, **F64)
    u = torch.randn(5, 2, generator=g, **F64)
    mean, var = torch.randn(3, 2, generator=g, **F64), torch.rand(3, 2, generator=g, **F64) + 0.1
    exact = linear_expected_nll(x, u, mean, var, 0.8)  # (3, 5)
    k = 200_000
    z = mean + var.sqrt() * torch.randn(k, 3, 2, generator=g, **F64)  # (K, B, d)
    samples = gaussian_nll(x, z @ u.T, 0.8)  # (K, B, D)
    estimate, stderr = samples.mean(0), samples.std(0) / math.sqrt(k)
    assert torch.all((estimate - exact).abs() < 5 * stderr)


def test_loss_from_terms_equals_theory_objective() -> None:
    """Summing the terms over dimensions and averaging over the data gives exactly the theory
    engine's second-moment objective L: the trainer and the theory share one convention."""
    x = torch.tensor(gaussian_with_spectrum(64, [4.0, 2.0, 1.0, 0.5], seed=3), **F64)
    g = torch.Generator().manual_seed(4)
    w, u = torch.randn(3, 4, generator=g, **F64), torch.randn(4, 3, generator=g, **F64)
    var = torch.rand(3, generator=g, **F64) + 0.2
    beta, eta_enc, eta_dec = 1.7, 0.8, 0.6
    mean = x @ w.T
    per_sample = linear_expected_nll(x, u, mean, var, eta_dec).sum(1) + beta * kl_to_prior(
        mean, torch.log(var).expand_as(mean), eta_enc
    ).sum(1)
    a = x.T @ x / len(x)
    log_eta = torch.tensor(math.log(eta_dec), **F64)
    theory = hierarchical_loss(a, [w], [u], [var], [beta], eta_enc, log_eta)
    assert float(per_sample.mean()) == pytest.approx(float(theory), rel=1e-12)
