"""Model families built from one Gaussian-latent block."""

from .backbones import BACKBONES
from .cvae import CVAE, CVAEConfig
from .latent import VARIANCE_MODES, GaussianHead, reparameterise
from .mhvae import MHVAE, MHVAEConfig
from .vae import VAE, ELBOTerms, VAEConfig

__all__ = [
    "BACKBONES",
    "CVAE",
    "MHVAE",
    "VAE",
    "VARIANCE_MODES",
    "CVAEConfig",
    "ELBOTerms",
    "GaussianHead",
    "MHVAEConfig",
    "VAEConfig",
    "reparameterise",
]
