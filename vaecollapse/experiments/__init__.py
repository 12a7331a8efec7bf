"""Reproductions of the papers' figures and tables, one registered entry each."""

from . import matrix_objective  # noqa: F401  (registers its entries)
from .registry import REGISTRY, Context, Entry, EntryResult, register, run_entry

__all__ = ["REGISTRY", "Context", "Entry", "EntryResult", "register", "run_entry"]
