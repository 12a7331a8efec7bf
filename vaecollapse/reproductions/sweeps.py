"""The registry's sweeps, declared once: a ``Grid`` says which runs a figure or table trains (one
model family on one data set, a run per point, each point's settings the base's with the point's
own), and a ``LineSweep`` says how lines through that grid become a result — the summary of each
run, the direction each quantity takes along each line by the paper's claim, the checks, the
paper-vs-ours lines and the (ε,δ)-collapse panels.

fig2b, table3, fig2c, table5 and fig10 are a ``Grid`` and a ``LineSweep`` each; fig4, fig9, fig6a,
fig6b, table2 and table4 train a ``Grid`` and judge it their own way (sample quality, the theory's
thresholds, a pair of runs, a data set per point). A grid of several seeds is judged on each
point's mean over them (``seed_summary``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from vaecollapse.core.data import Dataset
from vaecollapse.core.diagnostics.report import DiagnosisReport
from vaecollapse.reproductions.claims import Claim
from vaecollapse.reproductions.common import (
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
from vaecollapse.reproductions.registry import Context, EntryResult
from vaecollapse.training.config import TrainConfig

Point = Hashable  # a grid point: (β, η_dec), (β1, β2, η_dec), a threshold's index k, ...
# Seeds a point of table2 to table5: with one, how many dimensions a run keeps is a discrete
# outcome (two of 16 move AU by 12%); their claims are judged on the means over these seeds.
TABLE_SEEDS = 3


@dataclass(frozen=True)
class Grid:
    """The runs of a sweep: ``family`` models in the shared run area's ``group``, point p trained
    with ``base | vary(p)`` into the directory ``label(p)``. ``seeds``: runs a point, from the
    training's seed s upwards; seed s + i (i > 0) trains into ``label(p)-seed<s+i>``, so a grid
    given more seeds keeps the runs it had."""

    group: str
    family: str
    base: Mapping
    vary: Callable[[Point], dict]
    label: Callable[[Point], str]
    training: TrainConfig
    iwae_k: int = 0  # importance samples of each run's IWAE estimate (0: none)
    seeds: int = 1

    def train(
        self, ctx: Context, dataset: Dataset, points: Sequence[Point]
    ) -> dict[Point, RunOutcome]:
        """``train_seeds`` of a grid of one seed: point -> its outcome."""
        if self.seeds != 1:
            raise ValueError(f"{self.group}: a grid of {self.seeds} seeds trains by train_seeds")
        return {p: outcomes[0] for p, outcomes in self.train_seeds(ctx, dataset, points).items()}

    def train_seeds(
        self, ctx: Context, dataset: Dataset, points: Sequence[Point]
    ) -> dict[Point, list[RunOutcome]]:
        """Train (or resume, or find complete) every point's seeds, batched where runs can share
        a batch, and diagnose each: point -> its outcomes by seed, in the points' order."""
        unique = list(dict.fromkeys(points))
        first = ctx.seed_or(self.training.seed)
        labels = {
            (p, i): self.label(p) + (f"-seed{first + i}" if i else "")
            for p in unique
            for i in range(self.seeds)
        }
        if len(set(labels.values())) != len(labels):
            raise ValueError(f"{self.group}: two points share a run directory label")
        runs = {label: dict(self.base) | self.vary(p) for (p, _), label in labels.items()}
        seeds = {label: first + i for (_, i), label in labels.items()}
        outcomes = train_runs(
            ctx, self.group, self.family, dataset, runs, self.training, iwae_k=self.iwae_k,
            seeds=seeds,
        )  # fmt: skip
        return {p: [outcomes[labels[(p, i)]] for i in range(self.seeds)] for p in unique}


@dataclass(frozen=True)
class Line:
    """One line through a grid: the setting ``name`` takes ``values`` at ``points`` (the others
    held, as ``held`` says in words). ``kl_rises``: whether the KL rises along it by the paper's
    claim; ``asserted``: whether the claim is judged along it (else the line is reported);
    ``paper``: the paper's printed values along it, by summary key of the sweep's level.
    ``kl_weight``: the line sweeps the KL's own weight (β, or η_dec, which weighs the
    reconstruction against it), so the KL's direction along it is a consistency check; False
    where the direction carries information (β1 on KL(z2))."""

    name: str
    values: tuple[float, ...]
    points: tuple[Point, ...]
    kl_rises: bool
    asserted: bool = True
    kl_weight: bool = True
    held: str = ""
    paper: Mapping[str, Sequence[float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Measure:
    """One summary quantity along every line (a key of ``level_summary``, at ``level`` or the
    sweep's). ``follows_kl``: True when it moves with the KL by the claim, False when against
    it, None when no direction is claimed. ``judge``: how the claim checks it along an asserted
    line — ``"kl"`` (monotone, up to KL_NOISE, ignoring steps between collapsed levels),
    ``"monotone"`` (no step against the direction), ``"strictly"`` (no step against it, and the
    last point beyond the first: a flat line does not pass) or None (reported only). A measure
    the runs lack (an IWAE estimate not asked for) is left out."""

    key: str
    label: str  # its paper-vs-ours line: "KL (nats)"
    name: str = ""  # in the claim's checks: "KL"
    fmt: str = "{:.2f}"
    follows_kl: bool | None = None
    judge: Literal["kl", "monotone", "strictly"] | None = None
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

    def result(self, ctx: Context, outcomes: Mapping[Point, Sequence[RunOutcome]]) -> EntryResult:
        """The claim, judged on each point's mean over its seeds (``Grid.train_seeds``); the
        paper-vs-ours lines show the mean ± the standard deviation over seeds, and the rows one
        row a run (with its seed, when there are several)."""
        claim = Claim(self.statement)
        rows, comparisons, panels = [], [], {}
        seeded = any(len(outcomes[p]) > 1 for p in self.points)
        for line in self.lines:
            firsts = [outcomes[p][0].report for p in line.points]
            for p in line.points:
                for outcome in outcomes[p]:
                    row = self.row(line, p, outcome)
                    rows.append(row | {"seed": outcome.seed} if seeded else row)
            for measure in self.measures:
                level = measure.level or self.level
                spreads = [seed_summary(outcomes[p], level) for p in line.points]
                if measure.key not in spreads[0][0]:
                    continue
                values = [mean[measure.key] for mean, _ in spreads]
                rises = None if measure.follows_kl is None else line.kl_rises == measure.follows_kl
                agreement = ""
                if rises is not None:
                    agreement = trend(values, rises, KL_NOISE if measure.judge == "kl" else 0.0)
                    if line.asserted:
                        _judge(claim, measure, line, values, rises, firsts[0], level)
                printed = not ctx.quick and measure.level is None
                paper = line.paper.get(measure.key) if printed else None
                comparisons.append(
                    paper_vs_ours(
                        f"{measure.label}, {line.name} = {line.values}", paper, values,
                        measure.fmt, agreement,
                        spread=[sd[measure.key] for _, sd in spreads] if seeded else None,
                    )
                )  # fmt: skip
            title = f"{line.name} sweep" + (f" ({line.held})" if line.held else "")
            panels[title] = {
                f"{line.name} = {v:g}": r for v, r in zip(line.values, firsts, strict=True)
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
            train_seconds=total_train_seconds(o for p in self.points for o in outcomes[p]),
        )


def seed_summary(outcomes: Sequence[RunOutcome], level: str | None = None) -> tuple[dict, dict]:
    """``level_summary`` of one point's runs over seeds: (means, standard deviations), the
    deviations 0 for a single run."""
    summaries = [level_summary(outcome.report, level) for outcome in outcomes]
    means = {key: float(np.mean([s[key] for s in summaries])) for key in summaries[0]}
    deviations = {
        key: float(np.std([s[key] for s in summaries], ddof=1)) if len(summaries) > 1 else 0.0
        for key in summaries[0]
    }
    return means, deviations


def seed_noise(first: tuple[dict, dict], second: tuple[dict, dict], key: str) -> float:
    """Twice the standard error of the difference between two points' means of ``key``, from
    their ``seed_summary`` over ``TABLE_SEEDS`` seeds each: a difference within it is not told
    apart from the seeds' noise."""
    return 2 * float(np.hypot(first[1][key], second[1][key])) / np.sqrt(TABLE_SEEDS)


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
        label = f"{name} as {line.name} grows"
        kl_monotone(claim, label, values, rises, first, level, informative=not line.kl_weight)
    elif measure.judge in ("monotone", "strictly"):
        claim.monotone(f"{name} as {line.name} grows", values, rises, fmt=measure.fmt)
        if measure.judge == "strictly":
            label = f"{name}: the last {line.name} against the first"
            compare = claim.greater if rises else claim.less
            compare(label, values[-1], values[0], fmt=measure.fmt)
