"""The standard VAE: q(z|x) = N(enc(x), Σ(x)), p(x|z) = N(dec(z), η_dec²I), p(z) = N(0, η_enc²I)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import InputError
from ..objectives import gaussian_nll, kl_to_prior, linear_expected_nll
from .backbones import feature_extractor, mean_network
from .latent import GaussianHead, log_std_parameter, reparameterise


@dataclass(frozen=True)
class VAEConfig:
    """Everything that defines a VAE. ``sigma``: the std of a ``fixed`` encoder variance (one value
    or one per dimension). ``depth``/``hidden``/``activation`` apply to the ``mlp`` backbone."""

    data_dim: int
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

    def __post_init__(self) -> None:
        if self.data_dim < 1 or self.latent_dim < 1:
            raise InputError(
                f"dimensions must be positive; got {self.data_dim}, {self.latent_dim}."
            )
        if not self.beta > 0:
            raise InputError(f"beta must be positive; got {self.beta}.")


@dataclass
class ELBOTerms:
    """Unreduced terms of one forward pass. ``recon``: ``(B,)`` E_q[−log p(x|z)] summed over data
    dimensions; ``kl``: level name -> ``(B, d)`` KL per dimension; ``mean``/``logvar``: q's
    parameters per level, ``(B, d)``; ``z``: the samples used, ``(K, B, d)`` (None if analytic)."""

    recon: torch.Tensor
    kl: dict[str, torch.Tensor]
    mean: dict[str, torch.Tensor]
    logvar: dict[str, torch.Tensor]
    z: torch.Tensor | None = None
    betas: dict[str, float] = field(default_factory=dict)

    def per_sample_loss(self) -> torch.Tensor:
        """``(B,)`` negative β-ELBO per sample in nats."""
        return self.recon + sum(self.betas[k] * v.sum(1) for k, v in self.kl.items())

    def loss(self) -> torch.Tensor:
        """The batch loss: mean over samples of the summed terms (DESIGN.md)."""
        return self.per_sample_loss().mean()


class VAE(nn.Module):
    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.encoder_body, width = feature_extractor(
            c.backbone, c.data_dim, c.hidden, c.depth, c.activation
        )
        self.head = GaussianHead(
            width, c.latent_dim, c.encoder_variance, c.sigma, bias=c.backbone != "linear"
        )
        self.decoder = mean_network(
            c.backbone, c.latent_dim, c.data_dim, c.hidden, c.depth, c.activation
        )
        log_eta = log_std_parameter(c.eta_dec, c.learn_eta_dec)
        if isinstance(log_eta, nn.Parameter):
            self.log_eta_dec = log_eta
        else:
            self.register_buffer("log_eta_dec", log_eta)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, D)`` -> mean, log-variance ``(B, d)``."""
        return self.head(self.encoder_body(x))

    def forward(self, x: torch.Tensor, n_samples: int = 1, analytic: bool = False) -> ELBOTerms:
        """``analytic``: the exact expected reconstruction (linear backbone only); otherwise a
        reparameterised estimate averaged over ``n_samples``."""
        if x.ndim != 2 or x.shape[1] != self.config.data_dim:
            raise InputError(
                f"expected inputs of shape (B, {self.config.data_dim}); got {tuple(x.shape)}."
            )
        mean, logvar = self.encode(x)
        eta = torch.exp(self.log_eta_dec)
        z = None
        if analytic:
            if self.config.backbone != "linear":
                raise InputError("the analytic reconstruction needs the linear backbone.")
            recon = linear_expected_nll(x, self.decoder.weight, mean, torch.exp(logvar), eta).sum(1)
        else:
            z = reparameterise(mean, logvar, n_samples)  # (K, B, d)
            recon = gaussian_nll(x, self.decoder(z), eta).sum(-1).mean(0)
        kl = kl_to_prior(mean, logvar, self.config.eta_enc)
        return ELBOTerms(recon, {"z": kl}, {"z": mean}, {"z": logvar}, z, {"z": self.config.beta})
