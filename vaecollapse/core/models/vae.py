"""The standard VAE: q(z|x) = N(enc(x), Σ(x)), p(x|z) = N(dec(z), η_dec²I), p(z) = N(0, η_enc²I)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import ClassVar

import torch
from torch import nn

from vaecollapse.core.errors import InputError
from vaecollapse.core.models.backbones import decoder_mean, encoder_body
from vaecollapse.core.models.latent import GaussianModelSettings, register_log_std, reparameterise
from vaecollapse.core.objectives import (
    decoder_log_likelihood,
    gaussian_nll_sum,
    kl_to_prior,
    linear_expected_nll,
)
from vaecollapse.core.options import setting
from vaecollapse.core.protocol import LatentLevel

NOISE_SCALES = ("std", "variance")


@dataclass(frozen=True, kw_only=True)
class VAEConfig(GaussianModelSettings):
    """A VAE on ``data_dim``-dimensional inputs; the shared settings are in the base class.
    ``deterministic``: a plain autoencoder (z = the encoder mean, no KL; Dai et al.'s baseline).
    ``noise_scale``: ``std`` draws z = μ + σ ε; ``variance`` draws z = μ + σ² ε, as Dang et al.'s
    released ReLU-VAE script does while its KL charges σ — only for testing whether that explains
    a difference from their numbers (the loss is then not a bound on −log p(x))."""

    family: ClassVar[str] = "vae"
    data_dim: int
    deterministic: bool = setting(False, bool, "VAE: a plain autoencoder (no KL, z = the mean)")
    noise_scale: str = setting(
        "std", str, "VAE: draw z = μ + σε (std) or μ + σ²ε (variance, a paper script's)",
        choices=NOISE_SCALES,
    )  # fmt: skip
    linear_decoder: bool = setting(
        False, bool, "VAE: a linear, bias-free decoder under the backbone's encoder (Lucas et "
        "al.'s encoders over one decoder); the analytic ELBO then applies",
    )  # fmt: skip

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.data_dim < 1:
            raise InputError(f"the data dimension must be positive; got {self.data_dim}.")
        if self.linear_decoder and self.bounded_means:
            raise InputError("a linear decoder has no tanh mean; drop bounded_means.")

    @property
    def decoder_is_linear(self) -> bool:
        return self.backbone == "linear" or self.linear_decoder


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

    def per_sample_loss(
        self,
        weights: dict[str, float] | None = None,
        charge: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``(B,)`` the loss to minimise per sample in nats: the reconstruction plus each level's
        ``weights[level]`` (a schedule's multiplier, 1 where absent) · β · KL. ``charge`` maps a
        level's ``(B, d)`` KL to what is charged per sample ``(B,)`` (free bits); by default the
        KL summed over dimensions, which makes this the negative β-ELBO."""
        weights = weights or {}
        charge = charge or (lambda kl: kl.sum(1))
        return self.recon + sum(
            weights.get(k, 1.0) * self.betas[k] * charge(v) for k, v in self.kl.items()
        )

    def loss(self) -> torch.Tensor:
        """The batch loss: mean over samples of the summed terms (docs/conventions.md)."""
        return self.per_sample_loss().mean()


class VAE(nn.Module):
    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.encoder_body, width = encoder_body(c, c.data_dim)
        self.head = c.encoder_head(width, c.latent_dim, c.encoder_variance, c.sigma)
        decoder_settings = replace(c, backbone="linear") if c.linear_decoder else c
        self.decoder = decoder_mean(decoder_settings, c.latent_dim, c.data_dim)
        register_log_std(self, "log_eta_dec", c.eta_dec, c.learn_eta_dec)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, D)`` -> mean, log-variance ``(B, d)``."""
        return self.head(self.encoder_body(x))

    def latent_levels(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        n_samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> list[LatentLevel]:
        """The latent-model protocol: one level, q(z | x) against N(0, η_enc² I)."""
        if self.config.deterministic:
            raise InputError("a deterministic autoencoder has no posterior to diagnose.")
        mean, logvar = self.encode(x)
        z = reparameterise(mean, logvar, n_samples, generator)
        return [LatentLevel("z", mean, logvar, z, 0.0, 2 * math.log(self.config.eta_enc))]

    def log_likelihood(
        self, x: torch.Tensor, y: torch.Tensor | None, z: torch.Tensor
    ) -> torch.Tensor:
        """log N(x; dec(z), η_dec² I) ``(K, B)`` for ``z`` ``(K, B, d)``."""
        return decoder_log_likelihood(self.decoder, x, z, torch.exp(self.log_eta_dec))

    def linear_maps(self, root: torch.Tensor) -> dict[str, torch.Tensor]:
        """The maps of the linear theory (docs/theory.md), given A^{1/2} ``root``: the decoder U
        and V = W·A^{1/2} (float64)."""
        weight = self.head.mean.weight.detach().double().cpu()
        return {"U": self.decoder.weight.detach().double().cpu(), "V": weight @ root}

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The inference network's parameters (what aggressive training updates alone)."""
        return [*self.encoder_body.parameters(), *self.head.parameters()]

    def encoder_stds(self) -> dict[str, torch.Tensor]:
        return {"z": self.head.data_independent_std()}

    def forward(self, x: torch.Tensor, n_samples: int = 1, analytic: bool = False) -> ELBOTerms:
        """``analytic``: the exact expected reconstruction (linear decoders only); otherwise a
        reparameterised estimate averaged over ``n_samples``."""
        if x.ndim != 2 or x.shape[1] != self.config.data_dim:
            raise InputError(
                f"expected inputs of shape (B, {self.config.data_dim}); got {tuple(x.shape)}."
            )
        mean, logvar = self.encode(x)
        eta = torch.exp(self.log_eta_dec)
        if self.config.deterministic:
            recon = gaussian_nll_sum(x, self.decoder(mean), eta)
            return ELBOTerms(recon, {}, {"z": mean}, {}, mean.unsqueeze(0))
        z = None
        if analytic:
            if not self.config.decoder_is_linear:
                raise InputError("the analytic reconstruction needs a linear decoder.")
            recon = linear_expected_nll(x, self.decoder.weight, mean, torch.exp(logvar), eta).sum(1)
        else:
            # doubling the log-variance turns the drawn std σ into σ²
            noise_logvar = 2 * logvar if self.config.noise_scale == "variance" else logvar
            z = reparameterise(mean, noise_logvar, n_samples)  # (K, B, d)
            recon = gaussian_nll_sum(x, self.decoder(z), eta).mean(0)
        kl = kl_to_prior(mean, logvar, self.config.eta_enc)
        return ELBOTerms(recon, {"z": kl}, {"z": mean}, {"z": logvar}, z, {"z": self.config.beta})
