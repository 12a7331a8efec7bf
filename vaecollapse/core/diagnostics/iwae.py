"""Importance-weighted log-likelihood (Burda et al.): log (1/K) Σ_k p(x, z_k) / q(z_k | x), with
z_k ~ q, vectorised over the batch and over chunks of samples, combined by a running logsumexp.

Any model of the latent-model protocol: log p(x) for a VAE, log p(y | x) for a CVAE (against its
prior, N(0, η_enc² I) or the learned p(z | x)), and over the joint latent (z1, ..., zL) for a
hierarchy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from vaecollapse.core.errors import InputError
from vaecollapse.core.objectives import gaussian_log_density
from vaecollapse.core.protocol import LatentModel

# (x rows, y rows or None, K) -> (K, B) log importance weights
LogWeights = Callable[[torch.Tensor, torch.Tensor | None, int], torch.Tensor]


@dataclass(frozen=True)
class LikelihoodEstimate:
    """Per-sample estimates ``values`` ``(N,)``; their mean and its standard error (nats)."""

    values: torch.Tensor
    samples: int

    @property
    def mean(self) -> float:
        return float(self.values.mean())

    @property
    def standard_error(self) -> float:
        n = self.values.numel()
        return float(self.values.std(unbiased=True) / math.sqrt(n)) if n > 1 else float("nan")

    def to_json(self) -> dict:
        return {"mean": self.mean, "standard_error": self.standard_error, "k": self.samples}


def importance_log_likelihood(
    log_weights: LogWeights,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    k: int = 1000,
    batch_size: int = 50,
    sample_chunk: int = 100,
) -> LikelihoodEstimate:
    """The IWAE estimate for every row of ``x`` (and ``y``) with ``k`` samples. Work is done
    ``batch_size`` rows x ``sample_chunk`` samples at a time (small blocks stay in cache, which
    on a CPU is faster than large ones); chunks merge by logsumexp."""
    if k < 1:
        raise InputError(f"the number of importance samples must be >= 1; got {k}.")
    out = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            rows = slice(start, start + batch_size)
            x_batch = x[rows]
            y_batch = None if y is None else y[rows]
            total = torch.full((x_batch.shape[0],), -math.inf, dtype=torch.float64, device=x.device)
            done = 0
            while done < k:
                chunk = min(sample_chunk, k - done)
                weights = log_weights(x_batch, y_batch, chunk).double()  # (chunk, B)
                total = torch.logaddexp(total, torch.logsumexp(weights, dim=0))
                done += chunk
            out.append(total - math.log(k))
    return LikelihoodEstimate(torch.cat(out).cpu(), k)


def model_log_weights(model: LatentModel) -> LogWeights:
    """The log importance weights of any model following the latent-model protocol:
    log p(x | z_1) + Σ_l [log p(z_l | ·) − log q(z_l | ·)], each level at its own draws."""
    if not isinstance(model, LatentModel):
        raise InputError(
            f"a {type(model).__name__} does not follow the latent-model protocol "
            "(latent_levels and log_likelihood); wrap it with vaecollapse.as_latent_model."
        )

    def log_weights(x: torch.Tensor, y: torch.Tensor | None, k: int) -> torch.Tensor:
        levels = model.latent_levels(x, y, n_samples=k)
        weights = model.log_likelihood(x, y, levels[0].sample)
        for level in levels:
            weights = weights + gaussian_log_density(
                level.sample, level.prior_mean, level.prior_logvar
            )
            weights = weights - gaussian_log_density(level.sample, level.mean, level.logvar)
        return weights

    return log_weights
