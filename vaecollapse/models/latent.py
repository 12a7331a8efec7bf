"""The Gaussian-latent block every model family is built from: features -> (mean, log-variance)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import InputError
from .backbones import ACTIVATIONS, BACKBONES

VARIANCE_MODES = ("amortized", "amortized-tanh", "shared", "fixed")
AMORTIZED_MODES = ("amortized", "amortized-tanh")  # the variances that depend on the input
TANH_VARIANCE_FLOOR = 1e-12  # keeps log tanh(a)² finite where a underflows


class GaussianHead(nn.Module):
    """Maps features ``(B, F)`` to the mean and log-variance of q, each ``(B, d)``.

    ``variance``: ``amortized`` (the log-variance is a linear map of the features),
    ``amortized-tanh`` (Σ = tanh(a)² of a linear map a, so std ≤ 1, as Dang et al. parametrise
    the MHVAE's Σ2), ``shared`` (one learnable data-independent diagonal, as in the linear
    theory) or ``fixed`` (``sigma``: one std or one per dimension). ``bias``: whether the mean
    map has a bias (the linear theory has none). ``bounded_mean``: the mean is tanh of the linear
    map, within (−1, 1), as in Dang et al.'s nonlinear scripts.
    """

    def __init__(
        self,
        in_features: int,
        latent_dim: int,
        variance: str = "amortized",
        sigma: float | Sequence[float] | None = None,
        bias: bool = True,
        bounded_mean: bool = False,
    ) -> None:
        super().__init__()
        if variance not in VARIANCE_MODES:
            raise InputError(f"encoder variance '{variance}' is not one of {VARIANCE_MODES}.")
        self.variance, self.bounded_mean = variance, bounded_mean
        self.mean = nn.Linear(in_features, latent_dim, bias=bias)
        if variance == "amortized":
            self.logvar = nn.Linear(in_features, latent_dim, bias=True)
        elif variance == "amortized-tanh":
            self.tanh_std = nn.Linear(in_features, latent_dim, bias=True)
        elif variance == "shared":
            self.shared_logvar = nn.Parameter(torch.zeros(latent_dim))
        else:
            if sigma is None:
                raise InputError("a fixed encoder variance needs sigma (its standard deviation).")
            stds = torch.as_tensor(sigma, dtype=torch.float32).flatten()
            if stds.numel() == 1:
                stds = stds.expand(latent_dim)
            if stds.numel() != latent_dim or not bool(torch.all(stds > 0)):
                raise InputError(
                    f"sigma must be one positive std or {latent_dim} of them; got {sigma}."
                )
            self.register_buffer("fixed_logvar", 2 * torch.log(stds.clone()))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.mean(features)  # (B, d)
        if self.bounded_mean:
            mean = torch.tanh(mean)
        if self.variance == "amortized":
            logvar = self.logvar(features)
        elif self.variance == "amortized-tanh":
            variance = torch.tanh(self.tanh_std(features)).square()
            logvar = torch.log(variance.clamp_min(TANH_VARIANCE_FLOOR))
        elif self.variance == "shared":
            logvar = self.shared_logvar.expand_as(mean)
        else:
            logvar = self.fixed_logvar.expand_as(mean)
        return mean, logvar


def reparameterise(
    mean: torch.Tensor,
    logvar: torch.Tensor,
    n_samples: int | None = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Samples z = mean + std * ε: ``(K, *mean.shape)`` for ``n_samples`` K, or one draw of
    ``mean.shape`` when None (parameters that already carry a sample dimension). ``generator``: a
    CPU generator for reproducible draws (ε is then drawn on the CPU and moved)."""
    shape = mean.shape if n_samples is None else (n_samples, *mean.shape)
    if generator is None:
        eps = torch.randn(shape, dtype=mean.dtype, device=mean.device)
    else:
        eps = torch.randn(shape, dtype=mean.dtype, generator=generator).to(mean.device)
    return mean + torch.exp(0.5 * logvar) * eps


def register_log_std(module: nn.Module, name: str, eta: float, learnable: bool) -> None:
    """Give ``module`` the attribute ``name`` = log η: a parameter if learnable, else a buffer."""
    if not (math.isfinite(eta) and eta > 0):
        raise InputError(f"a decoder or prior std must be positive; got {eta}.")
    value = torch.tensor(math.log(eta))
    if learnable:
        module.register_parameter(name, nn.Parameter(value))
    else:
        module.register_buffer(name, value)


@dataclass(frozen=True, kw_only=True)
class GaussianModelSettings:
    """Settings every family shares. ``sigma``: the std of a ``fixed`` encoder variance (one value
    or one per dimension); ``hidden``/``depth``/``activation`` apply to MLPs; ``channels`` are the
    conv / transposed-conv widths of image backbones, which need ``image_shape`` ``(C, H, W)``;
    ``latent_hidden``: the width of MLPs between latent levels (default ``hidden``);
    ``bounded_means``: every Gaussian mean, the encoders' and the decoders', passes through tanh
    (nonlinear backbones only), as in Dang et al.'s scripts."""

    latent_dim: int
    backbone: str = "linear"
    hidden: int = 256
    depth: int = 1
    activation: str = "relu"
    encoder_variance: str = "amortized"
    sigma: float | tuple[float, ...] | None = None
    beta: float = 1.0
    eta_enc: float = 1.0
    eta_dec: float = 1.0
    learn_eta_dec: bool = False
    channels: tuple[int, ...] = (32, 16)
    image_shape: tuple[int, int, int] | None = None
    latent_hidden: int | None = None
    bounded_means: bool = False

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise InputError(f"backbone '{self.backbone}' is not one of {BACKBONES}.")
        if self.activation not in ACTIVATIONS:
            raise InputError(f"activation '{self.activation}' is not one of {tuple(ACTIVATIONS)}.")
        if not self.channels or min(self.channels) < 1:
            raise InputError(f"channels must be positive widths; got {self.channels}.")
        if self.bounded_means and self.backbone == "linear":
            raise InputError("bounded (tanh) means need a nonlinear backbone, not 'linear'.")
        if self.latent_dim < 1:
            raise InputError(f"the latent dimension must be positive; got {self.latent_dim}.")
        if not self.beta > 0:
            raise InputError(f"beta must be positive; got {self.beta}.")

    def encoder_head(
        self, width: int, latent_dim: int, variance: str, sigma: float | Sequence[float] | None
    ) -> GaussianHead:
        """A Gaussian head ``(B, width) -> (B, latent_dim)`` as these settings build it: bias-free
        for the linear backbone, tanh means where ``bounded_means``."""
        return GaussianHead(
            width,
            latent_dim,
            variance,
            sigma,
            bias=self.backbone != "linear",
            bounded_mean=self.bounded_means,
        )
