"""The registry's sweeps, declared once: a ``Grid`` says which runs a figure or table trains (one
model family on one data set, a run per point, each point's settings the base's with the point's
own), and a ``LineSweep`` says how lines through that grid become a result — the summary of each
run, the direction each quantity takes along each line by the paper's claim, the checks, the
paper-vs-ours lines and the (ε,δ)-collapse panels.

fig2b, table3, fig2c, table5 and fig10 are a ``Grid`` and a ``LineSweep`` each; fig4, fig9, fig6a
and fig6b train a ``Grid`` and judge it their own way (sample quality, the theory's thresholds).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..data import Dataset
from ..diagnostics.report import DiagnosisReport
from ..train import TrainConfig
from .claims import Claim
from .common import (
    KL_NOISE,
    RunOutcome,
    kl_monotone,
    level_summary,
    paper_vs_ours,
    plot_sweeps,
    total_train_seconds,
    train_runs,
    trend,
)
from .registry import Context, EntryResult

Point = Hashable  # a grid point: (β, η_dec), (β1, β2, η_dec), a threshold's index k, ...


@dataclass(frozen=True)
class Grid:
    """The runs of a sweep: ``family`` models in the shared run area's ``group``, point p trained
    with ``base | vary(p)`` into the directory ``label(p)``."""

    group: str
    family: str
    base: Mapping
    vary: Callable[[Point], dict]
    label: Callable[[Point], str]
    training: TrainConfig
    iwae_k: int = 0  # importance samples of each run's IWAE estimate (0: none)

    def train(
        self, ctx: Context, dataset: Dataset, points: Sequence[Point]
    ) -> dict[Point, RunOutcome]:
        """Train (or resume, or find complete) every point once, batched where points can share
        a batch, and diagnose each: point -> outcome, in the points' order."""
        unique = list(dict.fromkeys(points))
        runs = {self.label(p): dict(self.base) | self.vary(p) for p in unique}
        if len(runs) != len(unique):
            raise ValueError(f"{self.group}: two points share a run directory label")
        outcomes = train_runs(
            ctx, self.group, self.family, dataset, runs, self.training, iwae_k=self.iwae_k
        )
        return {p: outcomes[self.label(p)] for p in unique}


@dataclass(frozen=True)
class Line:
    """One line through a grid: the setting ``name`` takes ``values`` at ``points`` (the others
    held, as ``held`` says in words). ``kl_rises``: whether the KL rises along it by the paper's
    claim; ``asserted``: whether the claim is judged along it (else the line is reported);
    ``paper``: the paper's printed values along it, by summary key of the sweep's level."""

    name: str
    values: tuple[float, ...]
    points: tuple[Point, ...]
    kl_rises: bool
    asserted: bool = True
    held: str = ""
    paper: Mapping[str, Sequence[float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Measure:
    """One summary quantity along every line (a key of ``level_summary``, at ``level`` or the
    sweep's). ``follows_kl``: True when it moves with the KL by the claim, False when against
    it, None when no direction is claimed. ``judge``: how the claim checks it along an asserted
    line — ``"kl"`` (monotone, up to KL_NOISE, ignoring steps between collapsed levels),
    ``"monotone"`` (no step against the direction), ``"ends"`` (the last value beyond the first)
    or None (reported only). A measure the runs lack (an IWAE estimate not asked for) is left
    out."""

    key: str
    label: str  # its paper-vs-ours line: "KL (nats)"
    name: str = ""  # in the claim's checks: "KL"
    fmt: str = "{:.2f}"
    follows_kl: bool | None = None
    judge: Literal["kl", "monotone", "ends"] | None = None
    level: str | None = None


@dataclass(frozen=True)
class LineSweep:
    """How lines through a grid become an entry's result. ``row(line, point, outcome)``: the
    point's results.csv row; ``figure``: the file of the collapse-curve panels (one a line), or
    None; ``paper_says``: the paper's claim in words, shown on every line when the paper prints
    no numbers."""

    statement: str
    lines: tuple[Line, ...]
    measures: tuple[Measure, ...]
    row: Callable[[Line, Point, RunOutcome], dict]
    level: str | None = None
    figure: str | None = None
    paper_says: str | None = None

    @property
    def points(self) -> list[Point]:
        return list(dict.fromkeys(p for line in self.lines for p in line.points))

    def result(self, ctx: Context, outcomes: Mapping[Point, RunOutcome]) -> EntryResult:
        claim = Claim(self.statement)
        rows, comparisons, panels = [], [], {}
        for line in self.lines:
            reports = [outcomes[p].report for p in line.points]
            rows += [self.row(line, p, outcomes[p]) for p in line.points]
            for measure in self.measures:
                level = measure.level or self.level
                summaries = [level_summary(report, level) for report in reports]
                if measure.key not in summaries[0]:
                    continue
                values = [summary[measure.key] for summary in summaries]
                rises = None if measure.follows_kl is None else line.kl_rises == measure.follows_kl
                agreement = ""
                if rises is not None:
                    agreement = trend(values, rises, KL_NOISE if measure.judge == "kl" else 0.0)
                    if line.asserted:
                        _judge(claim, measure, line, values, rises, reports[0], level)
                printed = not ctx.quick and measure.level is None
                paper = line.paper.get(measure.key) if printed else None
                comparisons.append(
                    paper_vs_ours(
                        f"{measure.label}, {line.name} = {line.values}", paper, values,
                        measure.fmt, agreement,
                    )
                )  # fmt: skip
            title = f"{line.name} sweep" + (f" ({line.held})" if line.held else "")
            panels[title] = {
                f"{line.name} = {v:g}": r for v, r in zip(line.values, reports, strict=True)
            }
        if self.paper_says is not None:
            for comparison in comparisons:
                comparison.paper = self.paper_says
        figures = [plot_sweeps(panels, ctx.out / self.figure, self.level)] if self.figure else []
        return EntryResult(
            **claim.fields(),
            rows=rows,
            comparisons=comparisons,
            figures=figures,
            train_seconds=total_train_seconds(outcomes[p] for p in self.points),
        )


def _judge(
    claim: Claim,
    measure: Measure,
    line: Line,
    values: list[float],
    rises: bool,
    first: DiagnosisReport,
    level: str | None,
) -> None:
    name = measure.name or measure.label
    if measure.judge == "kl":
        kl_monotone(claim, f"{name} as {line.name} grows", values, rises, first, level)
    elif measure.judge == "monotone":
        claim.monotone(f"{name} as {line.name} grows", values, rises, fmt=measure.fmt)
    elif measure.judge == "ends":
        words = "above" if rises else "below"
        check = claim.greater if rises else claim.less
        check(
            f"{name} at the largest {line.name} {words} at the smallest",
            values[-1], values[0], measure.fmt,
        )  # fmt: skip
