"""ELBO terms in nats, unreduced, in the one convention of docs/conventions.md.

Every function returns per-sample, per-dimension terms; callers sum over dimensions and average
over the batch (never average over pixels: that would be a silent β). Shapes: B = batch, D = data
dimensions, d = latent dimensions, K = importance/reparameterisation samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

LOG_2PI = math.log(2 * math.pi)


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor | float) -> torch.Tensor:
    """−log N(x; mean, std²) per element, ``(..., D)``; ``std`` broadcasts (float, ``(D,)`` ...)."""
    std = torch.as_tensor(std, dtype=mean.dtype, device=mean.device)
    return (x - mean) ** 2 / (2 * std**2) + (torch.log(std) + LOG_2PI / 2)


def gaussian_nll_sum(
    x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor | float
) -> torch.Tensor:
    """``gaussian_nll`` summed over the last dimension, ``(...)``; ``x`` broadcasts against
    ``mean`` (``(B, D)`` against ``(K, B, D)``). With one scale for every dimension the scale and
    the constant apply once per row, and the squared error is one fused kernel each way: the
    D-wide passes are most of what a wide decoder's loss costs (benchmarks/batched_training.py)."""
    std = torch.as_tensor(std, dtype=mean.dtype, device=mean.device)
    if std.ndim:
        return gaussian_nll(x, mean, std).sum(-1)
    squared = F.mse_loss(mean, x.expand_as(mean), reduction="none").sum(-1)
    return squared / (2 * std**2) + x.shape[-1] * (torch.log(std) + LOG_2PI / 2)


def gaussian_log_density(
    value: torch.Tensor, mean: torch.Tensor | float, logvar: torch.Tensor | float
) -> torch.Tensor:
    """log N(value; mean, e^logvar), summed over the last dimension (mean and logvar broadcast:
    scalars for N(0, η² I))."""
    mean = torch.as_tensor(mean, dtype=value.dtype, device=value.device)
    logvar = torch.as_tensor(logvar, dtype=value.dtype, device=value.device)
    return -gaussian_nll(value, mean, torch.exp(0.5 * logvar)).sum(-1)


def rowwise(module: Callable, inputs: torch.Tensor) -> torch.Tensor:
    """``module`` on ``inputs`` ``(..., n)`` with the leading dimensions flattened into rows, so a
    network written for ``(N, n)`` takes ``(K, B, n)`` codes: ``(..., m)``."""
    return module(inputs.reshape(-1, inputs.shape[-1])).reshape(*inputs.shape[:-1], -1)


def linear_head_squared_error(
    features: torch.Tensor, head: nn.Linear, target: torch.Tensor
) -> torch.Tensor:
    """||target − head(features)||² ``(K, B)`` for ``features`` ``(K, B, H)`` and ``target``
    ``(B, D)``, expanded as ||t − b||² − 2 (t − b)ᵀW h + hᵀ(WᵀW)h so that no ``(K, B, D)``
    tensor is formed: H² per sample instead of D·H and three D-wide passes."""
    centred = target if head.bias is None else target - head.bias  # (B, D)
    projected = centred @ head.weight  # (B, H)
    gram = head.weight.T @ head.weight  # (H, H)
    return (
        (centred**2).sum(-1)
        - 2 * (features * projected).sum(-1)
        + ((features @ gram) * features).sum(-1)
    ).clamp_min(0)


def decoder_log_likelihood(
    decoder: nn.Module, target: torch.Tensor, codes: torch.Tensor, eta: torch.Tensor
) -> torch.Tensor:
    """log N(target; decoder(codes), η² I) summed over the D outputs: ``(K, B)`` for ``target``
    ``(B, D)`` and ``codes`` ``(K, B, n)``. A decoder that is a Linear layer of width H < D, or
    an ``nn.Sequential`` ending in one (MLP and linear backbones), goes through
    :func:`linear_head_squared_error`, which is what makes K = 1000 over a test set fast."""
    dim = target.shape[-1]
    constant = -dim * (torch.log(eta) + LOG_2PI / 2)
    head = decoder[-1] if isinstance(decoder, nn.Sequential) else decoder
    if isinstance(head, nn.Linear) and head.in_features < dim:
        features = rowwise(decoder[:-1], codes) if isinstance(decoder, nn.Sequential) else codes
        squared = linear_head_squared_error(features, head, target)
    else:
        squared = ((target - rowwise(decoder, codes)) ** 2).sum(-1)
    return -squared / (2 * eta**2) + constant


def kl_diag_gaussians(
    mean_q: torch.Tensor,
    logvar_q: torch.Tensor,
    mean_p: torch.Tensor | float = 0.0,
    logvar_p: torch.Tensor | float = 0.0,
) -> torch.Tensor:
    """KL(N(mean_q, e^logvar_q) || N(mean_p, e^logvar_p)) per dimension: ``(B, d)``.

    The prior may be a fixed isotropic N(0, η²) (``logvar_p = 2 log η``) or a conditional Gaussian
    such as the MHVAE's p(z1 | z2) (``mean_p`` per sample)."""
    mean_p = torch.as_tensor(mean_p, dtype=mean_q.dtype, device=mean_q.device)
    logvar_p = torch.as_tensor(logvar_p, dtype=mean_q.dtype, device=mean_q.device)
    return 0.5 * (
        logvar_p
        - logvar_q
        + (torch.exp(logvar_q) + (mean_q - mean_p) ** 2) / torch.exp(logvar_p)
        - 1
    )


def kl_to_prior(mean: torch.Tensor, logvar: torch.Tensor, eta_enc: float = 1.0) -> torch.Tensor:
    """KL(q || N(0, eta_enc² I)) per dimension: ``(B, d)``."""
    if not eta_enc > 0:
        raise ValueError(f"eta_enc must be positive, got {eta_enc}")
    return kl_diag_gaussians(mean, logvar, 0.0, 2 * math.log(eta_enc))


def linear_expected_nll(
    x: torch.Tensor,
    decoder_weight: torch.Tensor,
    mean: torch.Tensor,
    var: torch.Tensor,
    std: torch.Tensor | float,
) -> torch.Tensor:
    """E_{z ~ N(mean, diag var)}[−log N(x; U z, std²)] per data dimension, exactly (Lucas et al.'s
    analytic ELBO for a bias-free linear decoder). ``x``: ``(B, D)``; ``decoder_weight`` U:
    ``(D, d)``; ``mean``: ``(B, d)``; ``var``: a diagonal ``(B, d)`` or ``(d,)``, or a full
    covariance ``(B, d, d)``. Returns ``(B, D)``."""
    std = torch.as_tensor(std, dtype=x.dtype, device=x.device)
    residual = (x - mean @ decoder_weight.T) ** 2  # (B, D)
    if var.ndim == 3:  # diag(U Σ Uᵀ) per sample
        spread = torch.einsum("ij,bjk,ik->bi", decoder_weight, var, decoder_weight)
    else:
        spread = (var if var.ndim == 2 else var.expand_as(mean)) @ (decoder_weight**2).T
    return (residual + spread) / (2 * std**2) + (torch.log(std) + LOG_2PI / 2)
