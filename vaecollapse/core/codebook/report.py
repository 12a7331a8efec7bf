"""``diagnose_codebook``: is a discrete latent's codebook collapsing? Usage over the whole data
set, dead codes, perplexity, per-position and per-level figures, and, where the encodings are
known, how far they sit from their codes and how far the dead codes sit from the data."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from vaecollapse.core.codebook.collect import BATCH, Assignments, from_module
from vaecollapse.core.codebook.metrics import (
    codes_covering,
    dead_codes,
    nearest_squared_distances,
    perplexity,
    position_counts,
    sequence_entropy,
    squared_distances_to_codes,
    usage_counts,
)
from vaecollapse.core.codebook.verdict import CodebookFinding, findings_of
from vaecollapse.core.errors import InputError

COVERED = 0.95  # the share of assignments whose fewest codes are counted
STRANDED_SAMPLE = 20000  # encodings (evenly spaced) that the dead codes' distances are taken to


@dataclass(frozen=True)
class LevelUsage:
    """One codebook's use: ``counts`` ``(K,)`` over ``assignments`` tokens."""

    codebook_size: int
    assignments: int
    counts: list[int]
    used: int
    dead: list[int]
    perplexity: float
    codes_for_95: int  # the fewest codes that take 95% of the assignments

    @classmethod
    def of(cls, indices: torch.Tensor, codebook_size: int, dead_share: float) -> LevelUsage:
        counts = usage_counts(indices, codebook_size)
        return cls(
            codebook_size, int(counts.sum()), counts.tolist(), int((counts > 0).sum()),
            dead_codes(counts, dead_share).tolist(), perplexity(counts),
            codes_covering(counts, COVERED),
        )  # fmt: skip


@dataclass(frozen=True)
class PositionUsage:
    """Per token position (a grid of ``shape``, row-major): codes used and perplexity."""

    shape: list[int]
    used: list[int]
    perplexity: list[float]

    @classmethod
    def of(cls, indices: torch.Tensor, codebook_size: int) -> PositionUsage:
        counts = position_counts(indices, codebook_size)
        return cls(
            list(indices.shape[1:]), (counts > 0).sum(1).tolist(),
            [perplexity(row) for row in counts],
        )  # fmt: skip


@dataclass(frozen=True)
class Distances:
    """Squared distances: each encoding to its code (``commitment_*``); each dead and each live
    code to its nearest encoding (``dead_to_data_median``, ``live_to_data_median``); and the
    encodings' own spread, their mean squared distance to their mean (``encodings_variance``)."""

    commitment_mean: float
    commitment_median: float
    dead_to_data_median: float | None
    live_to_data_median: float
    encodings_variance: float

    @property
    def stranded_ratio(self) -> float | None:
        """How much farther from the data the dead codes sit than the live ones (median)."""
        if self.dead_to_data_median is None or self.live_to_data_median == 0:
            return None
        return self.dead_to_data_median / self.live_to_data_median


def _distances(assignments: Assignments, usage: LevelUsage) -> Distances | None:
    encodings, codebook = assignments.encodings, assignments.codebook
    if encodings is None or codebook is None:
        return None
    committed = squared_distances_to_codes(encodings, codebook, assignments.level(0))
    step = max(1, encodings.shape[0] // STRANDED_SAMPLE)
    sample = encodings[::step]
    dead = torch.as_tensor(usage.dead, dtype=torch.long)
    live = torch.nonzero(torch.as_tensor(usage.counts) > 0).flatten()
    to_data = nearest_squared_distances(codebook, sample)
    spread = (encodings.double() - encodings.double().mean(0)).square().sum(1).mean()
    return Distances(
        float(committed.mean()), float(committed.median()),
        float(to_data[dead].median()) if len(dead) else None, float(to_data[live].median()),
        float(spread),
    )  # fmt: skip


@dataclass(frozen=True)
class CodebookReport:
    """A codebook's use over the whole data set: the first level's figures (``usage``), one per
    level of a residual quantiser (``levels``), per token position where each sample has many
    (``positions``, first level), distances where the encodings are known, and the verdict:
    ``findings``, each with a stable ``code`` (none for a codebook in use)."""

    samples: int
    dead_share: float
    sequence_entropy: float  # nats: I(x; t) for a deterministic quantiser, at most log(samples)
    distinct_sequences: int
    usage: LevelUsage
    levels: list[LevelUsage] | None
    positions: PositionUsage | None
    distances: Distances | None
    findings: list[CodebookFinding]

    @property
    def used(self) -> int:
        return self.usage.used

    @property
    def dead(self) -> list[int]:
        return self.usage.dead

    @property
    def perplexity(self) -> float:
        return self.usage.perplexity

    def to_dict(self) -> dict:
        """Every figure as plain JSON types: ``used``, ``dead`` and ``perplexity`` first."""
        found = {
            "used": self.used, "dead": self.dead, "perplexity": self.perplexity,
            "codebook_size": self.usage.codebook_size, "dead_count": len(self.dead),
            "codes_for_95": self.usage.codes_for_95, "samples": self.samples,
            "assignments": self.usage.assignments, "dead_share": self.dead_share,
            "sequence_entropy": self.sequence_entropy,
            "distinct_sequences": self.distinct_sequences,
            "counts": self.usage.counts,
            "findings": [asdict(finding) for finding in self.findings],
        }  # fmt: skip
        if self.levels is not None:
            found["levels"] = [asdict(level) for level in self.levels]
        if self.positions is not None:
            found["positions"] = asdict(self.positions)
        if self.distances is not None:
            found["distances"] = asdict(self.distances) | {
                "stranded_ratio": self.distances.stranded_ratio
            }
        return found

    def summary(self) -> str:
        """The answer first: the verdict's findings (none when the codebook is in use), how much
        of it is used, then what else was measured."""
        usage, size = self.usage, self.usage.codebook_size
        dead = "never chosen" if self.dead_share == 0 else f"chosen ≤ {self.dead_share:.2%}"
        lines = [f"[{f.code}] {f.message}. Fix: {f.fix}." for f in self.findings] + [
            f"{usage.used} of {size} codes used ({usage.used / size:.1%}), perplexity "
            f"{usage.perplexity:.1f}; {len(usage.dead)} dead ({dead}); {usage.codes_for_95} "
            f"codes take 95% of the {usage.assignments} assignments over {self.samples} samples.",
            f"{self.distinct_sequences} distinct token sequences among the {self.samples} samples: "
            f"they carry {self.sequence_entropy:.3g} nats about the input (of at most "
            f"{math.log(self.samples):.3g}).",
        ]
        if self.levels is not None:
            lines.append("per level: " + "; ".join(
                f"{i + 1}: {level.used} used, perplexity {level.perplexity:.1f}"
                for i, level in enumerate(self.levels)
            ))  # fmt: skip
        if self.positions is not None:
            used = np.asarray(self.positions.used)
            lines.append(
                f"per position ({'×'.join(map(str, self.positions.shape))}): "
                f"{used.min()} to {used.max()} codes used (median {np.median(used):g})."
            )
        if self.distances is not None:
            d = self.distances
            line = f"encodings sit {d.commitment_mean:.4g} (mean squared distance) from their codes"
            if d.stranded_ratio is not None:
                line += (
                    f"; the dead codes sit {d.stranded_ratio:.3g}× as far from the data as the "
                    "live ones (median squared distance to the nearest encoding)"
                )
            lines.append(line + ".")
        return "\n".join(lines)


def _as_tensor(indices) -> torch.Tensor:
    if isinstance(indices, np.ndarray):
        return torch.as_tensor(indices)
    if isinstance(indices, torch.Tensor):
        return indices.detach().cpu()
    raise InputError(
        "diagnose_codebook takes code indices (a tensor or array) with codebook_size, or a "
        f"quantiser or model with data; got {type(indices).__name__}."
    )


def diagnose_codebook(
    indices_or_model,
    data=None,
    codebook_size: int | None = None,
    *,
    dead_share: float = 0.0,
    levels: int | None = None,
    encodings: torch.Tensor | None = None,
    codebook: torch.Tensor | None = None,
    batch_size: int = BATCH,
) -> CodebookReport:
    """Diagnose a codebook's use over a whole data set.

    ``indices_or_model``: the code indices of every sample ``(N, *grid)`` (``(N, *grid, L)`` with
    ``levels`` L for a residual quantiser), with ``codebook_size``; or a quantiser or model
    (vector-quantize-pytorch's layers, or any module returning ``(quantized, indices, ...)``)
    with ``data`` (a tensor, a DataLoader, or a Dataset), run over every sample. ``dead_share``:
    a code chosen for at most this share of the assignments counts as dead (0: never chosen).
    ``encodings`` ``(M, D)`` and ``codebook`` ``(K, D)``, given with indices, add the distances
    (a quantiser's own are read from it)."""
    if isinstance(indices_or_model, nn.Module):
        if data is None:
            raise InputError("diagnose_codebook needs data to run a quantiser or model over.")
        assignments = from_module(indices_or_model, data, codebook_size, batch_size)
    else:
        if data is not None:
            raise InputError("data are only used with a quantiser or model, not with indices.")
        if codebook_size is None:
            raise InputError("diagnose_codebook needs codebook_size with indices given directly.")
        found = _as_tensor(indices_or_model)
        if levels is not None and (found.ndim < 2 or found.shape[-1] != levels):
            raise InputError(
                f"indices of {levels} levels need a last axis of {levels}; got shape "
                f"{tuple(found.shape)}."
            )
        assignments = Assignments(found, codebook_size, levels, encodings, codebook)
    if assignments.indices.ndim == 0:
        raise InputError("code indices need at least one axis, the samples.")
    first = assignments.level(0)
    usage = LevelUsage.of(first, assignments.codebook_size, dead_share)
    per_level = None
    if assignments.levels is not None:
        per_level = [
            LevelUsage.of(assignments.level(i), assignments.codebook_size, dead_share)
            for i in range(assignments.levels)
        ]
    positions = PositionUsage.of(first, assignments.codebook_size) if first.ndim > 1 else None
    distances = _distances(assignments, usage)
    entropy, distinct = sequence_entropy(assignments.indices)
    return CodebookReport(
        int(first.shape[0]), dead_share, entropy, distinct, usage, per_level, positions,
        distances, findings_of(usage, distances),
    )  # fmt: skip
