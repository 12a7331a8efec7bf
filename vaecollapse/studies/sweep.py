"""Sweeps: a grid over any model or training settings (and seeds) of one model family on one data
set, declared in a TOML or YAML file; every point trained (batched where points can share a
batch), diagnosed, and gathered into one table and figure.

The file holds train's settings under the flags' names, as ``vaecollapse train --config`` reads
them, and a ``grid`` table: each key a setting, each value the list of values it takes. The points
are the grid's product in the file's key order, the last key varying fastest::

    model = "vae"
    dataset = "digits"
    backbone = "mlp"
    latent_dim = 8
    epochs = 30

    [grid]
    beta = [0.5, 1, 2, 4]
    seed = [0, 1, 2]

Point i lives in ``OUT/runs/pNNN`` (an ordinary run directory). ``run_point`` trains one point
alone, for a cluster job array whose job i trains point i; ``collect`` gathers what is finished.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullLocator

from vaecollapse.core.data import Dataset, DataSpec
from vaecollapse.core.diagnostics.plots import new_figure, save_figure
from vaecollapse.core.errors import InputError
from vaecollapse.core.fileio import write_text_atomic
from vaecollapse.core.logs import LOGGER
from vaecollapse.core.models.factory import MODEL_CLASSES, Family
from vaecollapse.core.options import checked_settings, declared, parse_settings_file
from vaecollapse.core.pages import write_report
from vaecollapse.core.remedies import check_remedies
from vaecollapse.core.rundir import completed_epochs, guard_definition, read_metrics
from vaecollapse.training.batched import Run
from vaecollapse.training.config import TrainConfig
from vaecollapse.training.many import train_many
from vaecollapse.training.runs import diagnose_run, prepared_run
from vaecollapse.training.settings import training_settings
from vaecollapse.training.trainer import latent_level_names

NOT_IN_GRID = ("model", "dataset", "view", "digits", "center", "data_dir", "verify")
DEFINITION_FILE = "sweep.json"  # the sweep's points; marks the output directory
COLUMNS = (
    "kl", "active", "active_units", "collapsed", "train_loss", "test_loss", "predicted_active",
)  # fmt: skip


@dataclass(frozen=True)
class Sweep:
    """A sweep's fixed settings and its grid (setting -> the values it takes)."""

    fixed: dict[str, Any]
    grid: dict[str, tuple]

    @cached_property  # every point's settings are asked for in turn: the product once
    def points(self) -> list[dict[str, Any]]:
        """Each point's grid values, in index order (the grid's product, last key fastest)."""
        keys = list(self.grid)
        return [
            dict(zip(keys, values, strict=True))
            for values in itertools.product(*self.grid.values())
        ]

    def settings(self, index: int) -> dict[str, Any]:
        """Every setting of point ``index``."""
        points = self.points
        if not 0 <= index < len(points):
            raise InputError(
                f"this sweep has points 0 to {len(points) - 1}; there is no point {index}."
            )
        return self.fixed | points[index]

    def to_json(self) -> dict:
        return {"fixed": dict(self.fixed), "grid": {k: list(v) for k, v in self.grid.items()}}


def read_sweep(path: str | Path) -> Sweep:
    """A sweep file: train's settings, checked as ``train --config`` checks them, and a ``grid``
    table of lists, each value checked by its setting's declaration."""
    file = Path(path)
    raw = parse_settings_file(file)
    grid_table = raw.pop("grid", None)
    if not isinstance(grid_table, dict) or not grid_table:
        raise InputError(
            f"{file} has no [grid] table; a sweep needs one, e.g. [grid] beta = [0.5, 1, 2]."
        )
    sections = _sections()
    fixed = checked_settings(raw, file, *sections)
    specs = {name: spec for cls in sections for name, (spec, _) in declared(cls).items()}
    grid: dict[str, tuple] = {}
    for key, values in grid_table.items():
        name = str(key).replace("-", "_")
        if name not in specs:
            raise InputError(f"{file}: [grid] names '{key}', which is not a setting of train.")
        if name in NOT_IN_GRID:
            raise InputError(
                f"{file}: [grid] cannot vary '{key}': a sweep is one model family on one data set."
            )
        if name in fixed:
            raise InputError(f"{file}: '{key}' is both fixed and in [grid]; give it once.")
        if not isinstance(values, list) or not values:
            raise InputError(f"{file}: [grid] {key} must be a non-empty list of values.")
        checked = tuple(specs[name].check(f"{file}: [grid] {key}", v) for v in values)
        if len(set(map(repr, checked))) != len(checked):
            raise InputError(f"{file}: [grid] {key} repeats a value; give each once.")
        grid[name] = checked
    if "dataset" not in fixed:
        raise InputError(f'{file} names no dataset; add e.g. dataset = "digits".')
    sweep = Sweep(fixed, grid)
    for index in range(len(sweep.points)):  # every point's settings in their domains, up front
        split_point(sweep.settings(index))
    return sweep


def _sections() -> tuple[type, ...]:
    """The settings a sweep file may hold: train's."""
    return (Family, DataSpec, *MODEL_CLASSES, TrainConfig)


def split_point(settings: dict[str, Any]) -> tuple[str, dict[str, Any], TrainConfig, DataSpec]:
    """A point's family, model settings, training configuration and data specification, each
    checked (a combination outside a setting's domain is an InputError)."""
    return training_settings(dict(settings))


def point_label(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_text(v)}" for k, v in point.items())


def _text(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ",".join(_text(v) for v in value) + ")"
    return f"{value:g}" if isinstance(value, float) else str(value)


def run_dir(out: Path, index: int) -> Path:
    return out / "runs" / f"p{index:03d}"


def record_definition(out: Path, sweep: Sweep) -> None:
    """Write the sweep's definition (all but the epochs) into ``out``, or refuse a directory
    holding another sweep's."""
    definition = sweep.to_json()
    definition["fixed"].pop("epochs", None)
    guard_definition(out / DEFINITION_FILE, definition, "another sweep")


def prepare_points(sweep: Sweep, out: Path, indices: Sequence[int]) -> tuple[Dataset, list[Run]]:
    """The data set and the points ``indices`` as runs into ``out/runs``, each model built and
    every combination of remedies and training checked, before anything is written."""
    settings = [sweep.settings(i) for i in indices]
    family, _, _, spec = split_point(settings[0])
    dataset = spec.load()
    runs = []
    for index, point in zip(indices, settings, strict=True):
        _, model_settings, training, _ = split_point(point)
        run = prepared_run(run_dir(out, index), family, dataset, model_settings, training)
        check_remedies(run.model.config, training, latent_level_names(run.model.config))
        runs.append(run)
    return dataset, runs


def train_points(runs: list[Run], dataset: Dataset, device: str = "auto") -> None:
    """Train prepared points (resuming, skipping finished ones), batched where they can share a
    batch."""
    epochs = max(r.config.epochs for r in runs)
    LOGGER.info(f"sweep: training {len(runs)} point(s)")
    train_many(
        runs, dataset, device=device, progress=False, log_every=max(1, epochs // 4),
        log_prefix="sweep: ",
    )  # fmt: skip


@dataclass
class PointResult:
    index: int
    point: dict[str, Any]
    values: dict[str, float] = field(default_factory=dict)


def collect(sweep: Sweep, out: Path) -> tuple[list[PointResult], list[int]]:
    """Diagnose every finished point on its data's test split; returns the results and the
    indices of the points not finished yet."""
    results, missing = [], []
    for index, point in enumerate(sweep.points):
        directory = run_dir(out, index)
        wanted = split_point(sweep.settings(index))[2].epochs
        if not (directory / "model.pt").exists() or completed_epochs(directory) < wanted:
            missing.append(index)
            continue
        report, _ = diagnose_run(directory)
        history = read_metrics(directory / "metrics.jsonl")
        collapsed = sum(len(level.collapsed_dims) for level in report.levels.values())
        latent = sum(level.latent_dim for level in report.levels.values())
        predicted = (report.theory or {}).get("predicted_active") or {}
        values = {
            "kl": report.kl_total,
            "active": latent - collapsed,
            "active_units": report.active_units,
            "collapsed": collapsed,
            "train_loss": history[-1]["train_loss"],
            "test_loss": history[-1].get("test_loss", math.nan),
            "predicted_active": sum(predicted.values())
            if predicted and None not in predicted.values()
            else math.nan,
        }
        results.append(PointResult(index, point, values))
    return results, missing


def write_summary(sweep: Sweep, out: Path, results: list[PointResult], missing: list[int]) -> None:
    write_text_atomic(out / "sweep.csv", _csv(sweep, results))
    markdown = _markdown(sweep, results, missing)
    write_text_atomic(out / "summary.md", markdown)
    figure = plot_sweep(sweep, results, out / "sweep.png")
    write_report(out / "report.html", f"Sweep over {', '.join(sweep.grid)}", markdown, [figure])


def _csv(sweep: Sweep, results: list[PointResult]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["index", *sweep.grid, *COLUMNS, "run_dir"])
    for r in results:
        writer.writerow(
            [r.index, *(_text(v) for v in r.point.values()), *(r.values[c] for c in COLUMNS),
             f"runs/p{r.index:03d}"]
        )  # fmt: skip
    return buffer.getvalue()


def _markdown(sweep: Sweep, results: list[PointResult], missing: list[int]) -> str:
    total = len(sweep.points)
    lines = [
        f"# Sweep: {total} points over {', '.join(sweep.grid)}",
        "",
        f"{len(results)} of {total} points finished"
        + (f"; not yet: {', '.join(map(str, missing))}." if missing else "."),
        "",
        "| point | "
        + " | ".join(sweep.grid)
        + " | KL | (ε,δ)-active | AU (Burda) | test loss | theory active |",
        "|---|" + "---|" * (len(sweep.grid) + 5),
    ]
    for r in results:
        v = r.values
        theory = "—" if math.isnan(v["predicted_active"]) else f"{v['predicted_active']:.0f}"
        lines.append(
            f"| {r.index} | " + " | ".join(_text(x) for x in r.point.values())
            + f" | {v['kl']:.3f} | {v['active']:.0f} | {v['active_units']:.0f} | "
            f"{v['test_loss']:.3f} | {theory} |"
        )  # fmt: skip
    lines += [
        "",
        "(ε,δ)-active: dimensions over every level whose KL is at least ε = 0.01 for more than "
        "δ = 5% of the rows. AU (Burda): dimensions whose mean E[z|x] varies with x (variance "
        "over the rows > 0.01). A dimension can be (ε,δ)-active but not an AU when q leaves the "
        "prior alike for every row: it costs KL and carries little information. Figure: "
        "sweep.png.",
    ]
    return "\n".join(lines) + "\n"


def plot_sweep(sweep: Sweep, results: list[PointResult], path: Path) -> Path:
    """Active dimensions and KL against the first grid setting that is not the seed, one line per
    combination of the others; over seeds, the mean with the range as a band."""
    axes_keys = [k for k in sweep.grid if k != "seed"] or list(sweep.grid)
    x_key, others = axes_keys[0], axes_keys[1:]
    numeric = all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in sweep.grid[x_key]
    )
    figure, (active_axis, kl_axis) = new_figure((10, 3.8), 1, 2)
    groups: dict[tuple, dict[Any, list[PointResult]]] = {}
    for r in results:
        line = tuple(r.point[k] for k in others)
        groups.setdefault(line, {}).setdefault(r.point[x_key], []).append(r)
    for line, by_x in groups.items():
        xs = [x for x in sweep.grid[x_key] if x in by_x]
        positions = xs if numeric else [sweep.grid[x_key].index(x) for x in xs]
        label = ", ".join(f"{k}={_text(v)}" for k, v in zip(others, line, strict=True)) or None
        for axis, column in ((active_axis, "active"), (kl_axis, "kl")):
            values = [[r.values[column] for r in by_x[x]] for x in xs]
            mean = [float(np.mean(v)) for v in values]
            drawn = axis.plot(positions, mean, "o-", label=label)
            if any(len(v) > 1 for v in values):
                axis.fill_between(
                    positions, [min(v) for v in values], [max(v) for v in values],
                    color=drawn[0].get_color(), alpha=0.2,
                )  # fmt: skip
    for axis, name in ((active_axis, "(ε,δ)-active dimensions"), (kl_axis, "KL (nats)")):
        axis.set_xlabel(x_key)
        axis.set_ylabel(name)
        if numeric and all(x > 0 for x in sweep.grid[x_key]) and len(sweep.grid[x_key]) > 2:
            axis.set_xscale("log")
            axis.xaxis.set_major_locator(FixedLocator(list(sweep.grid[x_key])))
            axis.xaxis.set_major_formatter(FormatStrFormatter("%g"))
            axis.xaxis.set_minor_locator(NullLocator())
        if not numeric:
            axis.set_xticks(range(len(sweep.grid[x_key])), [_text(x) for x in sweep.grid[x_key]])
    if others:
        active_axis.legend(fontsize=7)
    seeds = " (mean over seeds, range shaded)" if "seed" in sweep.grid else ""
    active_axis.set_title(f"active dimensions{seeds}")
    kl_axis.set_title("KL")
    return save_figure(figure, path)
