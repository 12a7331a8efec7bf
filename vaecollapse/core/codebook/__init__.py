"""Codebook collapse in discrete latents (VQ-VAEs, tokenizers): whole-data usage metrics, the
adapters that collect a quantiser's assignments, and :func:`diagnose_codebook`."""

from vaecollapse.core.codebook.report import CodebookReport, diagnose_codebook

__all__ = ["CodebookReport", "diagnose_codebook"]
