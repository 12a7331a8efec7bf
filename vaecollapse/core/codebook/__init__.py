"""Codebook collapse in discrete latents (VQ-VAEs, tokenizers): whole-data usage metrics, the
adapters that collect a quantiser's assignments, :func:`diagnose_codebook` and the live
:class:`CodebookMonitor`."""

from vaecollapse.core.codebook.monitor import CodebookMonitor, CodeEvent
from vaecollapse.core.codebook.report import CodebookReport, diagnose_codebook

__all__ = ["CodeEvent", "CodebookMonitor", "CodebookReport", "diagnose_codebook"]
