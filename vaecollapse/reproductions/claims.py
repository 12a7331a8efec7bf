"""An entry's claim as numeric checks, each with the distance by which it holds or fails.

A claim that rests on one dimension of a tiny stand-in flips with the thread count or the last bit
of a float; writing every check as "a > b" with its gap makes that visible. The tightest check,
relative to the size of what it compares, is the claim's margin: ``comparison.md``,
``result.json`` and the test message state it with its numbers.

Some checks are nearly automatic: a KL falls as its own weight grows at any converged optimum. They
are kept, as consistency checks, and ``comparison.md`` lists every check with its kind, so that a
reader sees which ones carry the paper's information (a direction not set by the KL's own weight,
an order of data sets, a count).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Check:
    """One inequality. ``gap``: how far it holds (> 0, or ≥ 0 when not ``strict``), in the units
    of the quantities; ``scale``: their size, so ``gap / scale`` is the relative margin."""

    label: str
    gap: float
    scale: float
    numbers: str
    strict: bool = True
    informative: bool = True  # False: a consistency check (see the module's note)

    @property
    def holds(self) -> bool:
        return self.gap > 0 if self.strict else self.gap >= 0

    @property
    def relative(self) -> float:
        return self.gap / self.scale if self.scale > 0 else math.copysign(math.inf, self.gap)

    def describe(self) -> str:
        state = "holds" if self.holds else "FAILS"
        return f"{self.label}: {self.numbers} ({state} by {self.gap:.3g}, {self.relative:.2%})"

    def listed(self) -> str:
        """The check with its kind, as ``comparison.md`` lists it."""
        return f"[{'information' if self.informative else 'consistency'}] {self.describe()}"


@dataclass
class Claim:
    """What an entry asserts, and the checks it rests on."""

    statement: str
    checks: list[Check] = field(default_factory=list)

    def greater(
        self,
        label: str,
        value: float,
        bound: float,
        fmt: str = "{:.4g}",
        scale: float | None = None,
    ) -> bool:
        """``value > bound``. ``scale``: what the gap is measured against (default: the larger
        of the two; a tolerance for checks that hold up to rounding)."""
        numbers = f"{fmt.format(value)} > {fmt.format(bound)}"
        return self._inequality(label, float(value) - float(bound), numbers, value, bound, scale)

    def less(
        self,
        label: str,
        value: float,
        bound: float,
        fmt: str = "{:.4g}",
        scale: float | None = None,
        strict: bool = True,
    ) -> bool:
        """``value < bound`` (``value ≤ bound`` when not ``strict``: a claim of "at most"), and
        ``scale`` as in :meth:`greater`."""
        numbers = f"{fmt.format(value)} {'<' if strict else '≤'} {fmt.format(bound)}"
        gap = float(bound) - float(value)
        return self._inequality(label, gap, numbers, value, bound, scale, strict)

    def _inequality(
        self,
        label: str,
        gap: float,
        numbers: str,
        value: float,
        bound: float,
        scale: float | None,
        strict: bool = True,
    ) -> bool:
        size = max(abs(float(value)), abs(float(bound))) if scale is None else scale
        self.checks.append(Check(label, gap, size, numbers, strict))
        return self.checks[-1].holds

    def monotone(
        self,
        label: str,
        values: Sequence[float],
        increasing: bool,
        tolerance: float = 0.0,
        fmt: str = "{:.4g}",
        floor: float | None = None,
        informative: bool = True,
    ) -> bool:
        """No step of ``values`` goes against the direction by more than ``tolerance`` (ties
        allowed: the margin of a tie is the tolerance). Steps between two values both under
        ``floor`` (a level where the quantity means nothing more, e.g. a KL at which every
        dimension is collapsed) are not judged. ``informative``: False for a consistency
        check."""
        values = np.asarray(values, dtype=float)
        steps = np.diff(values) * (1 if increasing else -1)
        if floor is not None:
            steps = steps[np.maximum(values[:-1], values[1:]) >= floor]
        gap = float(steps.min()) + tolerance if len(steps) else math.inf
        direction = "rises" if increasing else "falls"
        numbers = ", ".join(fmt.format(v) for v in values) + f" {direction}"
        if tolerance:
            numbers += f" (steps against it up to {tolerance:g} allowed)"
        if floor is not None:
            numbers += f" (steps between values under {floor:g} not judged)"
        scale = float(np.ptp(values)) if len(values) > 1 else 0.0
        self.checks.append(Check(label, gap, scale, numbers, False, informative))
        return self.checks[-1].holds

    @property
    def holds(self) -> bool:
        return bool(self.checks) and all(check.holds for check in self.checks)

    @property
    def tightest(self) -> Check | None:
        """The check closest to failing (the failing one furthest from holding, if any)."""
        return min(self.checks, key=lambda check: check.relative, default=None)

    def margin(self) -> str:
        """The tightest check in words, with its numbers."""
        tightest = self.tightest
        return "" if tightest is None else "tightest check — " + tightest.describe()

    def fields(self) -> dict:
        """``claim``, ``claim_holds``, ``margin`` and ``checks`` of an ``EntryResult``."""
        return {
            "claim": self.statement,
            "claim_holds": self.holds,
            "margin": self.margin(),
            "checks": [check.listed() for check in self.checks],
        }
