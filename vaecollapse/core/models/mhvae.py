"""The Markovian hierarchical VAE (Dang et al. Sec. 4.2) with L >= 2 latent levels:
q(z1|x), q(z_{l+1}|z_l) Gaussian; p(z_l|z_{l+1}) = N(dec_{l+1}(z_{l+1}), η_dec² I),
p(x|z1) = N(dec_1(z1), η_dec² I), p(z_L) = N(0, η_enc² I); one β per level.

Level l < L contributes β_l E_q[log q(z_l|z_{l-1}) − log p(z_l|z_{l+1})] with z_{l+1} drawn from
q(z_{l+1}|z_l) (so it depends on the sampled z_l, exactly as in the theory's objective); the top
level β_L E_q KL(q(z_L|z_{L-1}) || p(z_L)). Level names are ``z1`` ... ``zL``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from vaecollapse.core.errors import InputError
from vaecollapse.core.models.backbones import decoder_mean, encoder_body, latent_map_settings
from vaecollapse.core.models.latent import (
    AMORTIZED_MODES,
    POSITIVE,
    VARIANCE_MODES,
    GaussianHead,
    GaussianModelSettings,
    register_log_std,
    reparameterise,
)
from vaecollapse.core.models.vae import ELBOTerms
from vaecollapse.core.objectives import (
    LOG_2PI,
    decoder_log_likelihood,
    gaussian_nll,
    gaussian_nll_sum,
    kl_to_prior,
    linear_expected_nll,
)
from vaecollapse.core.options import LIST, check_fields, setting
from vaecollapse.core.protocol import LatentLevel

PER_LEVEL = ("latent_dims", "betas", "encoder_variances", "sigmas")


@dataclass(frozen=True, kw_only=True)
class MHVAEConfig(GaussianModelSettings):
    """An MHVAE on ``data_dim`` inputs with ``levels`` latent levels (default: the length of the
    per-level lists, else 2). Per-level tuples override the shared ``latent_dim``/``beta``/
    ``encoder_variance``/``sigma`` (level 1 first); ``sigmas`` holds one std (or None) per level,
    used where that level's variance is ``fixed`` — which, unless the variances are given, is
    where a sigma is."""

    family: ClassVar[str] = "mhvae"
    data_dim: int
    levels: int | None = setting(
        None, int, "Latent levels (default: the length of the per-level lists, else 2)", low=2
    )
    latent_dims: tuple[int, ...] | None = setting(
        None, int, "Latent size per level, level 1 first", low=1, shape=LIST
    )
    betas: tuple[float, ...] | None = setting(
        None, float, "KL weight per level, level 1 first", shape=LIST, **POSITIVE
    )
    encoder_variances: tuple[str, ...] | None = setting(
        None, str, "Encoder variance per level", choices=VARIANCE_MODES, shape=LIST
    )
    sigmas: tuple[float | None, ...] | None = setting(
        None, float, "Std of the fixed encoder variance per level", shape=LIST, none_items=True,
        **POSITIVE,
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_fields(self)
        if self.data_dim < 1:
            raise InputError(f"the data dimension must be positive; got {self.data_dim}.")
        given = [getattr(self, name) for name in PER_LEVEL if getattr(self, name) is not None]
        if self.levels is None:
            object.__setattr__(self, "levels", len(given[0]) if given else 2)
        if self.encoder_variances is None and self.encoder_variance is None and self.sigmas:
            modes = tuple("fixed" if s is not None else "amortized" for s in self.sigmas)
            object.__setattr__(self, "encoder_variances", modes)
        super().__post_init__()

    def _check_levels(self) -> None:
        if self.fixed_prior_remedies():
            raise InputError(
                f"{' and '.join(self.fixed_prior_remedies())} bound the KL to a fixed N(0, "
                "η_enc² I) prior, and an MHVAE's lower levels have learned priors p(z_l | "
                "z_{l+1}); use them with a VAE or CVAE."
            )
        for name in PER_LEVEL:
            value = getattr(self, name)
            if value is not None and len(value) != self.levels:
                raise InputError(
                    f"{name} needs one entry per level ({self.levels}); got {len(value)}."
                )
        for name, mode, sigma in zip(
            self.level_names(), self.level_variances(), self.level_sigmas(), strict=True
        ):
            if mode == "fixed" and sigma is None:
                raise InputError(
                    f"level {name} has a fixed encoder variance but no std: give sigma (every "
                    "fixed level) or sigmas (one per level)."
                )

    def level_dims(self) -> tuple[int, ...]:
        return self.latent_dims or (self.latent_dim,) * self.levels

    def level_betas(self) -> tuple[float, ...]:
        return self.betas or (self.beta,) * self.levels

    def level_variances(self) -> tuple[str, ...]:
        return self.encoder_variances or (self.encoder_variance,) * self.levels

    def level_sigmas(self) -> tuple:
        """One std (or None) per level: ``sigmas``, else ``sigma`` for every level."""
        return self.sigmas or (self.sigma,) * self.levels

    def level_names(self) -> tuple[str, ...]:
        return tuple(f"z{level + 1}" for level in range(self.levels))


class GaussianEncoder(nn.Module):
    """A backbone body followed by a Gaussian head: ``(..., in) -> mean, logvar (..., d)``."""

    def __init__(self, body: nn.Module, head: GaussianHead) -> None:
        super().__init__()
        self.body, self.head = body, head

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.body(inputs))


class MHVAE(nn.Module):
    def __init__(self, config: MHVAEConfig) -> None:
        super().__init__()
        self.config = c = config
        dims, modes, sigmas = c.level_dims(), c.level_variances(), c.level_sigmas()
        latent = latent_map_settings(c)
        encoders, decoders = [], []
        for level in range(c.levels):
            settings, in_dim = (c, c.data_dim) if level == 0 else (latent, dims[level - 1])
            body, width = encoder_body(settings, in_dim)
            head = c.encoder_head(width, dims[level], modes[level], sigmas[level])
            encoders.append(GaussianEncoder(body, head))
            decoders.append(decoder_mean(settings, dims[level], in_dim))
        self.encoders, self.decoders = nn.ModuleList(encoders), nn.ModuleList(decoders)
        register_log_std(self, "log_eta_dec", c.eta_dec, c.learn_eta_dec)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, D)`` -> the first level's mean and log-variance ``(B, d1)``."""
        return self.encoders[0](x)

    def sample_chain(
        self, x: torch.Tensor, n_samples: int, generator: torch.Generator | None = None
    ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Per level, bottom up: (draws ``(K, B, d_l)``, q's mean, q's log-variance), each level
        drawn from q given the draws of the level below. Level 1's parameters are ``(B, d1)``,
        the others' ``(K, B, d_l)``."""
        mean, logvar = self.encoders[0](x)
        chain = [(reparameterise(mean, logvar, n_samples, generator), mean, logvar)]
        for encoder in self.encoders[1:]:
            mean, logvar = encoder(chain[-1][0])
            chain.append((reparameterise(mean, logvar, None, generator), mean, logvar))
        return chain

    def latent_levels(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        n_samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> list[LatentLevel]:
        """The latent-model protocol: each level's q given the draws below, against
        p(z_l | z_{l+1}) = N(dec(z_{l+1}), η_dec² I) at the draws above, and the top level
        against N(0, η_enc² I)."""
        chain = self.sample_chain(x, n_samples, generator)
        log_eta2 = 2 * self.log_eta_dec
        levels = []
        for level, (name, (z, mean, logvar)) in enumerate(
            zip(self.config.level_names(), chain, strict=True)
        ):
            if level + 1 < len(chain):
                prior = (self.decoders[level + 1](chain[level + 1][0]), log_eta2)
            else:
                prior = (0.0, 2 * math.log(self.config.eta_enc))
            levels.append(LatentLevel(name, mean, logvar, z, *prior))
        return levels

    def log_likelihood(
        self, x: torch.Tensor, y: torch.Tensor | None, z: torch.Tensor
    ) -> torch.Tensor:
        """log N(x; dec_1(z1), η_dec² I) ``(K, B)`` for ``z1`` ``(K, B, d1)``."""
        return decoder_log_likelihood(self.decoders[0], x, z, torch.exp(self.log_eta_dec))

    def linear_maps(self, root: torch.Tensor) -> dict[str, torch.Tensor]:
        """The maps of the linear theory for two levels: V1 = W1·A^{1/2}, U1, W2, U2."""
        if self.config.levels != 2:
            raise InputError("the theory covers the two-level MHVAE.")
        w1, w2 = (e.head.mean.weight.detach().double().cpu() for e in self.encoders)
        u1, u2 = (d.weight.detach().double().cpu() for d in self.decoders)
        return {"V1": w1 @ root, "U1": u1, "W2": w2, "U2": u2}

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The inference network's parameters (what aggressive training updates alone)."""
        return list(self.encoders.parameters())

    def encoder_stds(self) -> dict[str, torch.Tensor]:
        return {
            name: encoder.head.data_independent_std()
            for name, encoder in zip(self.config.level_names(), self.encoders, strict=True)
        }

    @torch.no_grad()
    def generate(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` ancestral samples ``(n, D)``: z_L ~ N(0, η_enc² I), each lower level drawn from
        N(dec(z_{l+1}), η_dec² I), and the data mean dec(z_1)."""
        top = self.config.eta_enc * self._noise(n, self.config.level_dims()[-1], generator)
        return self._descend(top, generator)

    @torch.no_grad()
    def reconstruct(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``(B, D)`` -> ``(B, D)``: z_L drawn from q up the chain from x, then down the generative
        chain as in ``generate`` (Dang et al.'s MHVAE figures: what survives the top level)."""
        return self._descend(self.sample_chain(x, 1, generator)[-1][0][0], generator)

    def _descend(self, top: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        eta_dec = torch.exp(self.log_eta_dec)
        z, dims = top, self.config.level_dims()
        for level in range(self.config.levels - 1, 0, -1):
            z = self.decoders[level](z) + eta_dec * self._noise(len(z), dims[level - 1], generator)
        return self.decoders[0](z)

    def _noise(self, n: int, dim: int, generator: torch.Generator | None) -> torch.Tensor:
        return torch.randn(n, dim, generator=generator).to(self.log_eta_dec.device)

    def forward(self, x: torch.Tensor, n_samples: int = 1, analytic: bool = False) -> ELBOTerms:
        """Unreduced terms. ``kl[zl]``: ``(B, d_l)`` per-dimension level terms (for l < L an
        unbiased estimate of E[log q(z_l|z_{l-1}) − log p(z_l|z_{l+1})], which a single draw may
        make negative); ``mean[zl]``/``logvar[zl]``: q's parameters averaged over the draws of the
        levels below (for l > 1, ``mean`` estimates E_q[z_l | x]); ``z``: the level-1 draws
        ``(K, B, d1)``.
        ``analytic``: every expectation exact (linear backbone; levels above the first need a
        data-independent variance)."""
        c = self.config
        if x.ndim != 2 or x.shape[1] != c.data_dim:
            raise InputError(f"expected inputs of shape (B, {c.data_dim}); got {tuple(x.shape)}.")
        if analytic:
            return self._analytic_terms(x)
        eta = torch.exp(self.log_eta_dec)
        names = c.level_names()
        chain = self.sample_chain(x, n_samples)
        first_draws, mean, logvar = chain[0]
        recon = gaussian_nll_sum(x, self.decoders[0](first_draws), eta).mean(0)
        kl, means, logvars = {}, {names[0]: mean}, {names[0]: logvar}
        for level in range(1, c.levels):
            (z, _, logvar), (upper, upper_mean, upper_logvar) = chain[level - 1], chain[level]
            cross_entropy = gaussian_nll(z, self.decoders[level](upper), eta)
            kl[names[level - 1]] = (cross_entropy - 0.5 * (LOG_2PI + 1 + logvar)).mean(0)
            means[names[level]] = upper_mean.mean(0)
            logvars[names[level]] = upper_logvar.mean(0)
        _, mean, logvar = chain[-1]
        kl[names[-1]] = kl_to_prior(mean, logvar, c.eta_enc).mean(0)
        betas = dict(zip(names, c.level_betas(), strict=True))
        return ELBOTerms(recon, kl, means, logvars, first_draws, betas)

    def _analytic_terms(self, x: torch.Tensor) -> ELBOTerms:
        """Exact expectations for the linear model: every level is Gaussian given x, with a mean
        ``(B, d)`` and a covariance ``(B, d, d)`` propagated up the chain."""
        c = self.config
        if c.backbone != "linear":
            raise InputError("the analytic ELBO needs the linear backbone.")
        if any(mode in AMORTIZED_MODES for mode in c.level_variances()[1:]):
            raise InputError(
                "the analytic ELBO needs data-independent variances (shared or fixed) above the "
                "first level."
            )
        eta = torch.exp(self.log_eta_dec)
        names = c.level_names()
        mean, logvar = self.encoders[0](x)
        cov = torch.diag_embed(torch.exp(logvar))  # (B, d1, d1)
        recon = linear_expected_nll(x, self.decoders[0].weight, mean, cov, eta).sum(1)
        kl, means, logvars = {}, {names[0]: mean}, {names[0]: logvar}
        for level in range(1, c.levels):
            upper_mean, upper_logvar = self.encoders[level](mean)
            w = self.encoders[level].head.mean.weight  # (d_{l+1}, d_l)
            u = self.decoders[level].weight  # (d_l, d_{l+1})
            # z_l − U z_{l+1} = (I − U W) z_l − U s ε: the first part through the shared helper,
            # the independent noise's diag(U Σ Uᵀ) added to its squared error.
            residual_map = torch.eye(w.shape[1], dtype=w.dtype, device=w.device) - u @ w
            noise_spread = (u**2) @ torch.exp(upper_logvar[0])
            cross_entropy = linear_expected_nll(
                torch.zeros_like(mean), residual_map, mean, cov, eta
            ) + noise_spread / (2 * eta**2)
            kl[names[level - 1]] = cross_entropy - 0.5 * (LOG_2PI + 1 + logvar)
            cov = w @ cov @ w.T + torch.diag_embed(torch.exp(upper_logvar))
            mean, logvar = upper_mean, upper_logvar
            means[names[level]], logvars[names[level]] = mean, logvar
        second_moment = mean**2 + torch.diagonal(cov, dim1=1, dim2=2)
        log_eta_enc = math.log(c.eta_enc)
        kl[names[-1]] = 0.5 * (second_moment / c.eta_enc**2 - 1 - logvar + 2 * log_eta_enc)
        betas = dict(zip(names, c.level_betas(), strict=True))
        return ELBOTerms(recon, kl, means, logvars, None, betas)
