"""Reproductions of the papers' figures and tables, one registered entry each."""

from . import (  # noqa: F401  (register their entries)
    cvae_sweeps,
    decoder_variance,
    depth,
    encoder_variance,
    lagging_inference,
    linear_cvae,
    linear_mhvae,
    matrix_objective,
    mhvae_sweeps,
    observation_noise,
    ppca_equivalence,
    soft_threshold,
)
from .registry import REGISTRY, Context, Entry, EntryResult, register, run_entry

__all__ = ["REGISTRY", "Context", "Entry", "EntryResult", "register", "run_entry"]
