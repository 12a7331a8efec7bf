"""Reproductions of the papers' figures and tables, one registered entry each."""

from . import cvae_sweeps, encoder_variance, linear_cvae, matrix_objective, mhvae_sweeps  # noqa: F401  (register their entries)
from .registry import REGISTRY, Context, Entry, EntryResult, register, run_entry

__all__ = ["REGISTRY", "Context", "Entry", "EntryResult", "register", "run_entry"]
