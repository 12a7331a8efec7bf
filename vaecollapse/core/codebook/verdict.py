"""The codebook's verdict: whether it is collapsing, and the likely cause, each with a stable
``code``, from what :func:`diagnose_codebook` measured (not from the training settings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vaecollapse.core.codebook.report import Distances, LevelUsage

DEAD_SHARE = 0.1  # a codebook with at least this share of dead codes is collapsing
STRANDED_RATIO = 10.0  # dead codes this much farther from the data than live ones: stranded
LAGGING_SHARE = 0.5  # codes whose encodings sit this share of their spread away: not following


@dataclass(frozen=True)
class CodebookFinding:
    """One measured finding: ``code`` (``codebook-collapsing``, ``codes-stranded``,
    ``codebook-lagging``), what was measured, and the fix it points to."""

    code: str
    message: str
    fix: str


def findings_of(usage: LevelUsage, distances: Distances | None) -> list[CodebookFinding]:
    """The findings for one codebook's ``usage`` and, where known, its ``distances``."""
    size, dead = usage.codebook_size, len(usage.dead)
    if dead < DEAD_SHARE * size:
        return []
    causes = [] if distances is None else _causes(distances)
    if distances is None:
        fix = "give the quantiser itself (or encodings and codebook) so that its cause is measured"
    elif causes:
        fix = "remove the cause below"
    else:
        fix = (
            "no measured cause fits; compare the codebook remedies (k-means initialisation, "
            "dead-code replacement, a lower code dimension with cosine similarity)"
        )
    headline = CodebookFinding(
        "codebook-collapsing",
        f"{dead} of {size} codes ({dead / size:.0%}) are dead; {usage.used} are used, perplexity "
        f"{usage.perplexity:.1f}",
        fix,
    )
    return [headline, *causes]


def _causes(distances: Distances) -> list[CodebookFinding]:
    found = []
    ratio = distances.stranded_ratio
    if ratio is not None and ratio >= STRANDED_RATIO:
        found.append(CodebookFinding(
            "codes-stranded",
            f"the dead codes sit {ratio:.3g}× as far from the nearest encoder output as the live "
            "ones (median squared distance): no encoding comes near them, so no update moves "
            "them; they were initialised, or left behind, away from the data",
            "initialise the codebook from the data (k-means), replace dead codes by encoder "
            "outputs (vector-quantize-pytorch: threshold_ema_dead_code), or quantise in a lower "
            "code dimension with cosine similarity",
        ))  # fmt: skip
    if distances.commitment_mean >= LAGGING_SHARE * distances.encodings_variance:
        share = distances.commitment_mean / distances.encodings_variance
        found.append(CodebookFinding(
            "codebook-lagging",
            f"the encodings sit {share:.2f} of their own spread away from their codes (mean "
            "squared distance against their variance): the codes do not follow the encoder",
            "raise the codebook's learning rate or lower its EMA decay, so that the codes "
            "track the encodings",
        ))  # fmt: skip
    return found
    ratio = distances.stranded_ratio
    if ratio is not None and ratio >= STRANDED_RATIO:
        found.append(CodebookFinding(
            "codes-stranded",
            f"the dead codes sit {ratio:.3g}× as far from the nearest encoder output as the live "
            "ones (median squared distance): no encoding comes near them, so no update moves "
            "them; they were initialised, or left behind, away from the data",
            "initialise the codebook from the data (k-means), replace dead codes by encoder "
            "outputs (vector-quantize-pytorch: threshold_ema_dead_code), or quantise in a lower "
            "code dimension with cosine similarity",
        ))  # fmt: skip
    if distances.commitment_mean >= LAGGING_SHARE * distances.encodings_variance:
        share = distances.commitment_mean / distances.encodings_variance
        found.append(CodebookFinding(
            "codebook-lagging",
            f"the encodings sit {share:.2f} of their own spread away from their codes (mean "
            "squared distance against their variance): the codes do not follow the encoder",
            "raise the codebook's learning rate or lower its EMA decay, so that the codes "
            "track the encodings",
        ))  # fmt: skip
    return found
