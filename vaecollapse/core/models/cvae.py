"""The conditional VAE (Dang et al. Sec. 4.1; Sohn et al.): q(z|x, y), p(y|z, x), and the prior
N(0, η_enc² I) or, optionally, a learned conditional prior p(z|x)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from vaecollapse.core.data.views import quadrant_mask
from vaecollapse.core.errors import InputError
from vaecollapse.core.models.backbones import IMAGE_BACKBONES, decoder_mean, encoder_body
from vaecollapse.core.models.latent import (
    GaussianHead,
    GaussianModelSettings,
    register_log_std,
    reparameterise,
)
from vaecollapse.core.models.vae import ELBOTerms
from vaecollapse.core.objectives import (
    decoder_log_likelihood,
    gaussian_nll_sum,
    kl_diag_gaussians,
    linear_expected_nll,
)
from vaecollapse.core.options import setting
from vaecollapse.core.protocol import LatentLevel


@dataclass(frozen=True, kw_only=True)
class CVAEConfig(GaussianModelSettings):
    """``x_dim``: the condition (D0); ``y_dim``: the target (D2); ``conditional_prior``: learn
    p(z|x) (amortized Gaussian) instead of N(0, η_enc² I). Shared settings in the base class.
    Image backbones (cnn, resnet18) need the quadrant task: ``image_shape`` is the whole image's,
    x its bottom-left quadrant and y the rest, both in raster order."""

    family: ClassVar[str] = "cvae"
    x_dim: int
    y_dim: int
    conditional_prior: bool = setting(False, bool, "CVAE: learn the prior p(z|x)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if min(self.x_dim, self.y_dim) < 1:
            raise InputError(f"dimensions must be positive; got {self.x_dim}, {self.y_dim}.")
        if self.conditional_prior and self.fixed_prior_remedies():
            raise InputError(
                f"{' and '.join(self.fixed_prior_remedies())} bound the KL to the fixed N(0, "
                "η_enc² I) prior; with conditional_prior the prior is learned."
            )


class CVAE(nn.Module):
    def __init__(self, config: CVAEConfig) -> None:
        super().__init__()
        self.config = c = config
        x_pixels = y_pixels = None
        if c.backbone in IMAGE_BACKBONES and c.image_shape is not None:
            mask = quadrant_mask(c.image_shape)
            x_pixels, y_pixels = torch.nonzero(mask)[:, 0], torch.nonzero(~mask)[:, 0]
        xy_pixels = None if x_pixels is None else torch.cat([x_pixels, y_pixels])
        self.encoder_body, width = encoder_body(c, c.x_dim + c.y_dim, xy_pixels)
        self.head = c.encoder_head(width, c.latent_dim, c.encoder_variance, c.sigma)
        # Decoder mean from [z, x]: for the linear backbone exactly U1 z + U2 x.
        self.decoder = decoder_mean(c, c.latent_dim + c.x_dim, c.y_dim, y_pixels)
        if c.conditional_prior:
            self.prior_body, prior_width = encoder_body(c, c.x_dim, x_pixels)
            self.prior_head = GaussianHead(
                prior_width, c.latent_dim, "amortized", bounded_mean=c.bounded_means
            )
        register_log_std(self, "log_eta_dec", c.eta_dec, c.learn_eta_dec)

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, D0)``, ``(B, D2)`` -> mean, log-variance ``(B, d)``."""
        return self.head(self.encoder_body(torch.cat([x, y], dim=1)))

    def prior(self, x: torch.Tensor) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        """The prior's mean and log-variance for conditions ``x``: p(z | x) if learned, else
        N(0, η_enc² I) (as scalars)."""
        if self.config.conditional_prior:
            return self.prior_head(self.prior_body(x))
        return 0.0, 2 * math.log(self.config.eta_enc)

    def latent_levels(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        n_samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> list[LatentLevel]:
        """The latent-model protocol: q(z | x, y) against the prior."""
        if y is None:
            raise InputError("a CVAE's posterior q(z | x, y) needs y.")
        mean, logvar = self.encode(x, y)
        z = reparameterise(mean, logvar, n_samples, generator)
        return [LatentLevel("z", mean, logvar, z, *self.prior(x))]

    def log_likelihood(
        self, x: torch.Tensor, y: torch.Tensor | None, z: torch.Tensor
    ) -> torch.Tensor:
        """log N(y; dec(z, x), η_dec² I) ``(K, B)`` for ``z`` ``(K, B, d)``."""
        if y is None:
            raise InputError("a CVAE's likelihood log p(y | z, x) needs y.")
        codes = torch.cat([z, x.expand(z.shape[0], *x.shape)], dim=-1)
        return decoder_log_likelihood(self.decoder, y, codes, torch.exp(self.log_eta_dec))

    def linear_maps(self, root: torch.Tensor) -> dict[str, torch.Tensor]:
        """The map of the linear theory: U1, the decoder from z (float64)."""
        return {"U1": self.decoder.weight[:, : self.config.latent_dim].detach().double().cpu()}

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The inference network's parameters (what aggressive training updates alone)."""
        return [*self.encoder_body.parameters(), *self.head.parameters()]

    def encoder_stds(self) -> dict[str, torch.Tensor]:
        return {"z": self.head.data_independent_std()}

    def forward(
        self, x: torch.Tensor, y: torch.Tensor, n_samples: int = 1, analytic: bool = False
    ) -> ELBOTerms:
        c = self.config
        if x.ndim != 2 or y.ndim != 2 or x.shape[1] != c.x_dim or y.shape[1] != c.y_dim:
            raise InputError(
                f"expected x (B, {c.x_dim}) and y (B, {c.y_dim}); got {tuple(x.shape)}, "
                f"{tuple(y.shape)}."
            )
        mean, logvar = self.encode(x, y)
        eta = torch.exp(self.log_eta_dec)
        z = None
        if analytic:
            if c.backbone != "linear":
                raise InputError("the analytic reconstruction needs the linear backbone.")
            u1, u2 = self.decoder.weight[:, : c.latent_dim], self.decoder.weight[:, c.latent_dim :]
            recon = linear_expected_nll(y - x @ u2.T, u1, mean, torch.exp(logvar), eta).sum(1)
        else:
            z = reparameterise(mean, logvar, n_samples)  # (K, B, d)
            decoded = self.decoder(torch.cat([z, x.expand(n_samples, *x.shape)], dim=-1))
            recon = gaussian_nll_sum(y, decoded, eta).mean(0)
        kl = kl_diag_gaussians(mean, logvar, *self.prior(x))
        return ELBOTerms(recon, {"z": kl}, {"z": mean}, {"z": logvar}, z, {"z": c.beta})
