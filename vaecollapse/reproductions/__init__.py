"""Reproductions of the papers' figures and tables, one registered entry each, grouped by paper
(importing each paper's package registers its entries)."""

# The papers in the record's order (Dang et al.'s first), which `reproduce all`, `--list` and
# the record's sections follow: registration order is that order.
# isort: off
from vaecollapse.reproductions import dang2024, lucas2019, he2019, dai2020  # noqa: F401

# isort: on
from vaecollapse.reproductions.registry import (
    REGISTRY,
    Context,
    Entry,
    EntryResult,
    register,
    run_entry,
)

__all__ = ["REGISTRY", "Context", "Entry", "EntryResult", "register", "run_entry"]
