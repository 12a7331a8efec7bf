"""Dai et al.'s Proposition 1 machinery (vaecollapse.reproductions.dai2020.soft_threshold) against
values derived by hand for the two points (1, 1) and (−1, −1): n = d = 2, one latent dimension,
x̄ = 0 and γ̄ = 1 at the collapsed point (7)."""

import math

import pytest
import torch

from vaecollapse.core.data import dai_two_points
from vaecollapse.reproductions.dai2020.soft_threshold import (
    Layout,
    collapsed_point,
    energy,
    hessian_spectrum,
    path_energy,
    soft_threshold,
)

X = torch.tensor(dai_two_points(), dtype=torch.float64)
LAYOUT = Layout(2, 2)


def test_the_soft_threshold_and_its_derivative_at_zero():
    u = torch.tensor([-2.0, -0.3, 0.0, 0.3, 2.0], dtype=torch.float64, requires_grad=True)
    value = soft_threshold(u, 0.5)
    assert value.tolist() == pytest.approx([-1.5, 0.0, 0.0, 0.0, 1.5])
    (slope,) = torch.autograd.grad(value.sum(), u)
    assert slope.tolist() == [1.0, 0.0, 0.0, 0.0, 1.0]
    identity = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(soft_threshold(identity, 0.0).sum(), identity)
    assert slope.item() == 1.0  # α = 0 is the affine decoder, slope 1 at 0 too


def test_the_collapsed_points_energy_and_hessian_blocks_are_the_hand_derived_ones():
    # each point: ||x_i||²/γ̄ + d log γ̄ + σ² − log σ² + μ² = 2 + 0 + 1 − 0 + 0
    assert float(energy(collapsed_point(X, LAYOUT), X, 0.5, LAYOUT)) == pytest.approx(6.0)
    blocks = hessian_spectrum(X, 0.5, LAYOUT)["blocks"]
    assert blocks["W"] == pytest.approx([0.0, 0.0], abs=1e-12)
    assert blocks["b"] == pytest.approx([4.0, 4.0])  # Σ_i 2/γ̄
    assert blocks["γ"] == pytest.approx([4.0])  # −nd/γ̄² + 2·nd·γ̄/γ̄³
    assert blocks["μ_z"] == pytest.approx([2.0, 2.0])  # from μ²
    assert blocks["σ_z"] == pytest.approx([4.0, 4.0])  # 2 + 2/σ²
    # the affine decoder couples W with the means: a saddle
    assert min(hessian_spectrum(X, 0.0, LAYOUT)["eigenvalues"]) < -0.5


def test_the_path_energy_falls_as_log_delta():
    """Along the path, while (α+1)(1+δε) stays above α at every node (δ small), the squared error
    is 4(α+1)²δ² (Σ over points and coordinates), so with γ at its optimum (α+1)²δ² the energy
    is 4 + 4 log((α+1)²δ²) + 2(δ² − log δ²) + 2."""
    for alpha in (0.0, 0.5):
        for delta in (1e-2, 1e-3):
            gamma = ((alpha + 1) * delta) ** 2
            expected = 4 + 4 * math.log(gamma) + 2 * (delta**2 - math.log(delta**2)) + 2
            assert path_energy(X, alpha, delta, LAYOUT) == pytest.approx(expected, rel=1e-6)
