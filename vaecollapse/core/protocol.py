"""The latent-model protocol: what every diagnostic asks of a VAE, whoever wrote it.

Per latent level, bottom level first, a model gives the Gaussian posterior q(z_l | ·) of a batch,
the prior that level is compared to (N(0, η_enc² I), a learned conditional p(z | x), or
p(z_l | z_{l+1}) of a hierarchy) and the draws it used; and it gives the log-likelihood
log p(x | z_1) (log p(y | z, x) for a conditional model). KL per dimension, active units, mutual
information and the importance-weighted likelihood follow from these alone, so this toolkit's
VAE, CVAE and MHVAE and a user's model wrapped by :mod:`vaecollapse.core.adapters` are diagnosed by
the same code. Documented in ``docs/protocol.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch.distributions import Normal


@dataclass
class LatentLevel:
    """One latent level of a batch of B rows, with K draws.

    ``mean``/``logvar``: q's parameters, ``(B, d)`` (or ``(K, B, d)`` when they depend on the draws
    below); ``prior_mean``/``prior_logvar``: the prior's, broadcastable to ``(K, B, d)`` (a
    scalar for N(0, η² I)); ``sample``: the draws ``(K, B, d)``. A latent that is a grid — a
    latent-diffusion autoencoder's (C, H, W), a sequence model's (T, d) — is flattened to its
    d = C·H·W values; ``shape`` is one row's shape before flattening (None: a vector) and
    ``channel_axis`` the axis of ``shape`` that holds the channels."""

    name: str
    mean: torch.Tensor
    logvar: torch.Tensor
    sample: torch.Tensor
    prior_mean: torch.Tensor | float
    prior_logvar: torch.Tensor | float
    shape: tuple[int, ...] | None = None
    channel_axis: int = 0

    @property
    def posterior(self) -> Normal:
        return Normal(self.mean, torch.exp(0.5 * self.logvar))

    @property
    def prior(self) -> Normal:
        mean = torch.as_tensor(self.prior_mean, dtype=self.mean.dtype, device=self.mean.device)
        logvar = torch.as_tensor(self.prior_logvar, dtype=self.mean.dtype, device=self.mean.device)
        return Normal(mean, torch.exp(0.5 * logvar))


def channel_layout(shape: tuple[int, ...], channel_axis: int) -> torch.Tensor:
    """The flat indices of one row's values ``(C, P)``, a row per channel and its positions in
    order, for a latent of ``shape`` whose channels lie along ``channel_axis``."""
    index = torch.arange(math.prod(shape)).reshape(shape)
    return index.movedim(channel_axis, 0).reshape(shape[channel_axis], -1)


@runtime_checkable
class LatentModel(Protocol):
    """A VAE as the diagnostics see it."""

    def latent_levels(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        n_samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> list[LatentLevel]:
        """The batch's levels, bottom first, each drawn ``n_samples`` times from q given the
        draws below."""
        ...

    def log_likelihood(
        self, x: torch.Tensor, y: torch.Tensor | None, z: torch.Tensor
    ) -> torch.Tensor:
        """log p(x | z) (a conditional model: log p(y | z, x)) for draws ``z`` ``(K, B, d1)`` of
        the first level: ``(K, B)``."""
        ...
