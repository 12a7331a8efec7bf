"""Model families built from one Gaussian-latent block."""

from .backbones import BACKBONES
from .latent import VARIANCE_MODES, GaussianHead, reparameterise
from .vae import VAE, ELBOTerms, VAEConfig

__all__ = [
    "BACKBONES",
    "VAE",
    "VARIANCE_MODES",
    "ELBOTerms",
    "GaussianHead",
    "VAEConfig",
    "reparameterise",
]
