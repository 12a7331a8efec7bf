"""The Gaussian-latent block every model family is built from: features -> (mean, log-variance)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import MISSING, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vaecollapse.core.errors import InputError
from vaecollapse.core.models.backbones import ACTIVATIONS, BACKBONES
from vaecollapse.core.options import LIST, POSITIVE, SCALAR_OR_LIST, check_fields, setting
from vaecollapse.core.remedies import committed_variance_ratio

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

    Two remedies for collapse (docs/remedies.md): ``mean_batchnorm`` γ normalises each mean
    dimension over the batch to variance γ² and adds a learnable shift (BN-VAE, Zhu et al. 2020;
    running statistics in eval mode and for a batch of one); ``variance_ceiling`` c keeps every
    variance below c (δ-VAE's committed rate: the learnable variance becomes c·sigmoid(·), or
    c·tanh(·)² for ``amortized-tanh``).
    """

    def __init__(
        self,
        in_features: int,
        latent_dim: int,
        variance: str = "amortized",
        sigma: float | Sequence[float] | None = None,
        bias: bool = True,
        bounded_mean: bool = False,
        mean_batchnorm: float | None = None,
        variance_ceiling: float | None = None,
    ) -> None:
        super().__init__()
        if variance not in VARIANCE_MODES:
            raise InputError(f"encoder variance '{variance}' is not one of {VARIANCE_MODES}.")
        if variance_ceiling is not None and variance == "fixed":
            raise InputError(
                "a committed rate (delta_rate) bounds a learnable encoder variance; this one is "
                "fixed by sigma."
            )
        self.variance, self.bounded_mean = variance, bounded_mean
        self.mean_batchnorm, self.variance_ceiling = mean_batchnorm, variance_ceiling
        self.mean = nn.Linear(in_features, latent_dim, bias=bias)
        if mean_batchnorm is not None:
            self.register_buffer("running_mean", torch.zeros(latent_dim))
            self.register_buffer("running_var", torch.ones(latent_dim))
            self.mean_shift = nn.Parameter(torch.zeros(latent_dim))
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

    def data_independent_std(self) -> torch.Tensor:
        """The std of a ``shared`` or ``fixed`` variance ``(d,)`` (what the linear theory
        compares); an amortized one depends on the input and has none."""
        if self.variance in AMORTIZED_MODES:
            raise InputError(
                "the theory compares data-independent encoder variances (shared or fixed), but "
                "this model's variance is amortized."
            )
        if self.variance == "shared":
            return torch.exp(0.5 * self._bounded(self.shared_logvar.detach()))
        return torch.exp(0.5 * self.fixed_logvar)

    def _bounded(self, logvar: torch.Tensor) -> torch.Tensor:
        """A free log-variance, or log(c·sigmoid(·)) under a variance ceiling c."""
        if self.variance_ceiling is None:
            return logvar
        return math.log(self.variance_ceiling) + F.logsigmoid(logvar)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.mean(features)  # (B, d)
        if self.bounded_mean:
            mean = torch.tanh(mean)
        if self.mean_batchnorm is not None:
            batch_statistics = self.training and mean.shape[0] > 1
            normalised = F.batch_norm(
                mean, self.running_mean, self.running_var, training=batch_statistics
            )
            mean = self.mean_batchnorm * normalised + self.mean_shift
        if self.variance == "amortized":
            logvar = self._bounded(self.logvar(features))
        elif self.variance == "amortized-tanh":
            variance = torch.tanh(self.tanh_std(features)).square()
            if self.variance_ceiling is not None:
                variance = self.variance_ceiling * variance
            logvar = torch.log(variance.clamp_min(TANH_VARIANCE_FLOOR))
        elif self.variance == "shared":
            logvar = self._bounded(self.shared_logvar).expand_as(mean)
        else:
            logvar = self.fixed_logvar.expand_as(mean)
        return mean, logvar


NoiseDraw = Callable[[tuple[int, ...], torch.Tensor], torch.Tensor]
_NOISE_SOURCE: ContextVar[NoiseDraw | None] = ContextVar("noise_source", default=None)


@contextmanager
def noise_source(draw: NoiseDraw) -> Iterator[None]:
    """Within the block, ``reparameterise`` takes ε from ``draw(shape, mean)`` instead of torch's
    global generator (batched training gives each configuration the draws it would get alone)."""
    token = _NOISE_SOURCE.set(draw)
    try:
        yield
    finally:
        _NOISE_SOURCE.reset(token)


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
    source = _NOISE_SOURCE.get()
    if generator is None and source is not None:
        eps = source(shape, mean)
    elif generator is None:
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
    """Settings every family shares, each declared with its domain (see
    ``vaecollapse.core.options``). ``image_shape`` ``(C, H, W)`` comes from the data; image
    backbones need it."""

    latent_dim: int = setting(
        MISSING, int, "Latent size (every level of an MHVAE unless --latent-dims)", low=1
    )
    backbone: str = setting("linear", str, "Encoder and decoder architecture", choices=BACKBONES)
    hidden: int = setting(256, int, "Width of MLP hidden layers", low=1)
    depth: int = setting(1, int, "Hidden layers of each MLP", low=1)
    activation: str = setting("relu", str, "MLP activation", choices=tuple(ACTIVATIONS))
    encoder_variance: str | None = setting(
        None,
        str,
        "Encoder variance (every level): amortized (a log-variance head), amortized-tanh "
        "(Σ = tanh(·)², std ≤ 1), shared (learnable, data-independent) or fixed (std --sigma); "
        "default: fixed where a sigma is given, else amortized",
        choices=VARIANCE_MODES,
    )
    sigma: float | tuple[float, ...] | None = setting(
        None,
        float,
        "Std of fixed encoder variances: one, or one per latent dimension (MHVAE: of every "
        "fixed level)",
        shape=SCALAR_OR_LIST,
        **POSITIVE,
    )
    beta: float = setting(1.0, float, "KL weight (every level)", **POSITIVE)
    eta_enc: float = setting(1.0, float, "Prior std η_enc", **POSITIVE)
    eta_dec: float = setting(
        1.0, float, "Decoder std η_dec (the initial value if learned)", **POSITIVE
    )
    learn_eta_dec: bool = setting(False, bool, "Learn η_dec")
    channels: tuple[int, ...] = setting(
        (32, 16), int, "Convolution widths of the cnn backbone", low=1, shape=LIST
    )
    conv_depth: int = setting(
        1, int, "Convolutions per spatial scale of the cnn backbone (encoder and decoder)", low=1
    )
    image_shape: tuple[int, int, int] | None = None
    latent_hidden: int | None = setting(
        None, int, "Width of the MLPs between latent levels (default: --hidden)", low=1
    )
    bounded_means: bool = setting(
        False, bool, "tanh on every Gaussian mean, encoders' and decoders' (nonlinear backbones)"
    )
    mean_batchnorm: float | None = setting(
        None, float, "BN-VAE: batch-normalise the posterior means to this fixed std γ (KL ≥ "
        "γ²/2η_enc² per dimension on average)", **POSITIVE,
    )  # fmt: skip
    delta_rate: float | None = setting(
        None, float, "δ-VAE: bound the encoder variance so that every dimension's KL is at "
        "least this many nats (the committed rate)", **POSITIVE,
    )  # fmt: skip

    def level_names(self) -> tuple[str, ...]:
        """The latent levels' names, level 1 first (one level, ``z``; a hierarchy names more)."""
        return ("z",)

    def level_betas(self) -> tuple[float, ...]:
        """Each level's KL weight β, in the order of ``level_names``."""
        return (self.beta,)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.encoder_variance is None:
            object.__setattr__(
                self, "encoder_variance", "fixed" if self.sigma is not None else "amortized"
            )
        if self.bounded_means and self.backbone == "linear":
            raise InputError("bounded (tanh) means need a nonlinear backbone, not 'linear'.")
        self._check_levels()
        if self.delta_rate is not None and self.encoder_variance == "fixed":
            raise InputError(
                "delta_rate bounds a learnable encoder variance; this model's is fixed by sigma."
            )

    def fixed_prior_remedies(self) -> list[str]:
        """The remedies set here that bound the KL to a fixed N(0, η_enc² I) prior."""
        return [
            name for name in ("mean_batchnorm", "delta_rate") if getattr(self, name) is not None
        ]

    def _check_levels(self) -> None:
        """Checks per latent level (one here; the MHVAE has several)."""
        if self.encoder_variance == "fixed" and self.sigma is None:
            raise InputError("a fixed encoder variance needs sigma, its standard deviation.")
        if isinstance(self.sigma, tuple) and len(self.sigma) not in (1, self.latent_dim):
            raise InputError(
                f"sigma needs one std or one per latent dimension ({self.latent_dim}); got "
                f"{len(self.sigma)}."
            )

    def encoder_head(
        self, width: int, latent_dim: int, variance: str, sigma: float | Sequence[float] | None
    ) -> GaussianHead:
        """A Gaussian head ``(B, width) -> (B, latent_dim)`` as these settings build it: bias-free
        for the linear backbone, tanh means where ``bounded_means``."""
        ceiling = None
        if self.delta_rate is not None:
            ceiling = committed_variance_ratio(self.delta_rate) * self.eta_enc**2
        return GaussianHead(
            width,
            latent_dim,
            variance,
            sigma,
            bias=self.backbone != "linear",
            bounded_mean=self.bounded_means,
            mean_batchnorm=self.mean_batchnorm,
            variance_ceiling=ceiling,
        )
