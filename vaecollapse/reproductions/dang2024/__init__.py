"""Dang et al. (ICLR 2024): the linear VAE, CVAE and two-level MHVAE optima against training, and
the nonlinear sweeps over β, η_dec and the encoder variance."""

from vaecollapse.reproductions.dang2024 import (  # noqa: F401  (register their entries)
    cvae_sweeps,
    encoder_variance,
    linear_cvae,
    linear_mhvae,
    matrix_objective,
    mhvae_sweeps,
    samplewise_variance,
)
