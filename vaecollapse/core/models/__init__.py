"""Model families built from one Gaussian-latent block."""

from vaecollapse.core.models.backbones import BACKBONES
from vaecollapse.core.models.cvae import CVAE, CVAEConfig
from vaecollapse.core.models.latent import VARIANCE_MODES, GaussianHead, reparameterise
from vaecollapse.core.models.mhvae import MHVAE, MHVAEConfig
from vaecollapse.core.models.vae import VAE, ELBOTerms, VAEConfig

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
