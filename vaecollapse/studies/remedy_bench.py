"""The remedy bench: one model, data set and seed set trained with no remedy and with each remedy
for collapse, every run diagnosed with the same metrics, and one table and figure side by side.

Each (remedy, seed) is an ordinary run directory under ``runs/`` (resumable, diagnosable with
``vaecollapse diagnose``); a second call over the same ``--out`` only diagnoses again. The
remedies' settings are those of ``docs/remedies.md``; a strength the user gives (``free_bits``,
``mean_batchnorm``, ``delta_rate``, the schedules' lengths) configures its own remedy only.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaecollapse.core.data import Dataset
from vaecollapse.core.diagnostics.plots import new_figure, save_figure
from vaecollapse.core.errors import InputError
from vaecollapse.core.families import model_family
from vaecollapse.core.fileio import write_text_atomic
from vaecollapse.core.logs import LOGGER
from vaecollapse.core.models.factory import build_model, load_run_model, model_config
from vaecollapse.core.monitor import monitored_rows
from vaecollapse.core.pages import write_report
from vaecollapse.core.remedies import check_remedies
from vaecollapse.core.rundir import claimed_directory
from vaecollapse.training.config import TrainConfig
from vaecollapse.training.runs import diagnose_run, train_run
from vaecollapse.training.trainer import evaluate_split, latent_level_names

REMEDY_NAMES = (
    "none", "warmup", "cyclical", "free-bits", "aggressive", "bn-vae", "delta-vae",
)  # fmt: skip
# The remedies' strengths when the user gives none (docs/remedies.md gives the sources)
DEFAULT_STRENGTHS = {"free_bits": 0.5, "mean_batchnorm": 0.6, "delta_rate": 0.1}
STRENGTH_KEYS = (
    "kl_warmup_epochs", "kl_cycle_epochs", "kl_cycle_ratio", "free_bits", "free_bits_group",
    "free_bits_kind", "aggressive_max_steps", "mean_batchnorm", "delta_rate",
)  # fmt: skip
MONITOR_POINTS = 25  # mutual-information measurements over a run, for the figure
FIXED_PRIOR_ONLY = ("bn-vae", "delta-vae")  # they bound the KL to N(0, η_enc² I)
# Remedies whose linear optimum the theory engine gives: the schedules and aggressive training
# change the path, not the objective at the end; δ-VAE's cap has a closed form. Free bits and
# BN-VAE have none (docs/remedies.md).
THEORY_COVERED = ("none", "warmup", "cyclical", "aggressive", "delta-vae")


@dataclass(frozen=True)
class RemedyRun:
    """What one remedy changes: settings added to the model's and to the training's."""

    name: str
    model: dict[str, Any]
    train: dict[str, Any]


def remedy_runs(
    names: Sequence[str], epochs: int, strengths: dict[str, Any], family: str
) -> list[RemedyRun]:
    """The runs of the named remedies, with ``strengths`` (user-given remedy settings) over the
    defaults: a warm-up over the first quarter of the run, Fu et al.'s four cycles ramping over
    half of each, free bits at 0.5 nats per dimension, BN-VAE's γ = 0.6, a committed rate of 0.1
    nats. ``family``: BN-VAE and δ-VAE need the fixed prior of a VAE or CVAE."""
    s = DEFAULT_STRENGTHS | strengths
    fit = _given(s, "free_bits", "free_bits_group", "free_bits_kind")
    table = {
        "none": ({}, {}),
        "warmup": ({}, {"kl_warmup_epochs": s.get("kl_warmup_epochs", epochs / 4)}),
        "cyclical": (
            {},
            {
                "kl_schedule": "cyclical",
                "kl_cycle_epochs": s.get("kl_cycle_epochs", epochs / 4),
                "kl_cycle_ratio": s.get("kl_cycle_ratio", 0.5),
            },
        ),
        "free-bits": ({}, fit),
        "aggressive": ({}, {"aggressive_encoder": True} | _given(s, "aggressive_max_steps")),
        "bn-vae": ({"mean_batchnorm": s["mean_batchnorm"]}, {}),
        "delta-vae": ({"delta_rate": s["delta_rate"]}, {}),
    }
    unknown = [n for n in names if n not in table]
    if unknown:
        raise InputError(
            f"unknown remedies {', '.join(unknown)}; known: {', '.join(REMEDY_NAMES)}."
        )
    if model_family(family).hierarchical and any(n in FIXED_PRIOR_ONLY for n in names):
        raise InputError(
            "bn-vae and delta-vae bound the KL to a fixed N(0, η_enc² I) prior, which an MHVAE's "
            "lower levels do not have; leave them out of --remedies for --model mhvae."
        )
    return [RemedyRun(n, *table[n]) for n in names]


def _given(settings: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: settings[name] for name in names if name in settings}


@dataclass
class RunResult:
    """One (remedy, seed) run's measurements on the test split (the training split if none)."""

    remedy: str
    seed: int
    kl: float  # summed over levels and dimensions, nats
    active_units: int
    mutual_information: float  # I(x; z) of the first level, nats
    collapsed: int  # (ε, δ)-collapsed dimensions over all levels
    iwae: float  # log-likelihood per row, nats
    iwae_error: float
    reconstruction: float  # E_q[−log p(x|z)] per row, nats
    seconds: float  # training wall time (the epochs' own times)
    gradient_steps: int  # optimizer steps of training, aggressive training's encoder steps too
    latent_total: int  # latent dimensions over all levels
    predicted_active: int | None  # the linear theory's active dimensions, where it covers the run
    kl_per_dim: list[float]  # the first level's, sorted from the largest
    kl_curve: list[float]  # training KL (all levels) per epoch
    information_curve: list[tuple[int, float]]  # (epoch, I(x; z)) from the run's monitor
    aggressive_epochs: int = 0  # epochs trained with aggressive encoder steps


def run_bench(
    out: str | Path,
    family: str,
    dataset: Dataset,
    model_settings: dict[str, Any],
    training: TrainConfig,
    *,
    remedies: Sequence[str] = REMEDY_NAMES,
    seeds: Sequence[int] = (0, 1, 2),
    strengths: dict[str, Any] | None = None,
    iwae_k: int = 500,
    device: str = "auto",
) -> list[RunResult]:
    """Train and diagnose every remedy at every seed into ``out`` (locked meanwhile), then write
    ``remedies.md``, ``remedies.csv``, ``remedies.png`` and ``summary.json`` there."""
    runs = remedy_runs(remedies, training.epochs, strengths or {}, family)
    if "none" not in remedies:
        raise InputError("--remedies must include none: every remedy is measured against it.")
    monitor_every = max(1, training.epochs // MONITOR_POINTS)
    planned = []
    for run in runs:  # every run's settings checked before the first one trains
        settings = model_settings | run.model
        config = TrainConfig(
            **(training.__dict__ | run.train | {"monitor": True, "monitor_every": monitor_every})
        )
        configured = model_config(family, dataset, **settings)
        build_model(configured)  # what only construction checks, e.g. that images fit a backbone
        check_remedies(configured, config, latent_level_names(configured))
        planned += [(run, seed, settings, replace(config, seed=seed)) for seed in seeds]
    results = []
    with claimed_directory(out, "bench") as directory:
        started = time.perf_counter()
        for run, seed, settings, config in planned:
            run_dir = directory / "runs" / f"{run.name}-seed{seed}"
            r = _train_and_measure(run_dir, run, seed, family, dataset, settings, config, iwae_k,
                                   device)  # fmt: skip
            results.append(r)
            LOGGER.info(
                f"[{len(results)}/{len(planned)}] {run.name} seed {seed}: KL {r.kl:.3g}, AU "
                f"{r.active_units}, MI {r.mutual_information:.3g}, log-likelihood "
                f"{r.iwae:.4g}, {r.seconds:.1f} s ({time.perf_counter() - started:.0f} s)"
            )
        _write_outputs(directory, results, family, dataset, model_settings, training, iwae_k)
    return results


def _train_and_measure(
    run_dir: Path, run: RemedyRun, seed: int, family: str, dataset: Dataset,
    settings: dict[str, Any], config: TrainConfig, iwae_k: int, device: str,
) -> RunResult:  # fmt: skip
    quiet = LOGGER.level
    LOGGER.setLevel(logging.WARNING)  # the monitor's per-dimension events would drown the table
    try:
        history = train_run(
            run_dir, family, dataset, settings, config, device=device, log_every=config.epochs
        )
    finally:
        LOGGER.setLevel(quiet)
    report, _ = diagnose_run(run_dir, dataset=dataset, iwae_k=iwae_k)
    model, _ = load_run_model(run_dir)
    part = dataset.evaluation_split
    with torch.random.fork_rng(devices=[]):  # the same draws at every call, the caller's kept
        torch.manual_seed(0)
        terms = evaluate_split(model.to(part.x.device), part, config)
    first = next(iter(report.levels.values()))
    information = first.mutual_information
    monitor = [json.loads(line) for line in (run_dir / "monitor.jsonl").read_text().splitlines()]
    name = next(iter(report.levels))
    return RunResult(
        remedy=run.name,
        seed=seed,
        kl=sum(level.kl_total for level in report.levels.values()),
        active_units=sum(level.active_units for level in report.levels.values()),
        mutual_information=math.nan if information is None else information[0],
        collapsed=sum(len(level.collapsed_dims) for level in report.levels.values()),
        iwae=report.iwae.mean if report.iwae is not None else math.nan,
        iwae_error=report.iwae.standard_error if report.iwae is not None else math.nan,
        reconstruction=terms["recon"],
        seconds=sum(record["seconds"] for record in history),
        gradient_steps=history[-1]["epoch"] * math.ceil(len(dataset.train) / config.batch_size)
        + sum(record.get("encoder_steps", 0) for record in history),
        latent_total=sum(level.latent_dim for level in report.levels.values()),
        predicted_active=_predicted_active(report.theory, run.name),
        kl_per_dim=sorted(first.kl_per_dim.tolist(), reverse=True),
        kl_curve=[sum(record["kl"].values()) for record in history],
        information_curve=[
            (r["epoch"], r["levels"][name]["mutual_information"])
            for r in monitor
            if r["levels"][name]["mutual_information"] is not None
        ],
        aggressive_epochs=sum("encoder_steps" in record for record in history),
    )


def _predicted_active(theory: dict | None, remedy: str) -> int | None:
    """The theory's active-dimension count for a linear model's run, where it covers the remedy
    and the optimum is unique."""
    if remedy not in THEORY_COVERED or not theory or "predicted_active" not in theory:
        return None
    if theory.get("status", "optimum") != "optimum":
        return None
    return int(sum(theory["predicted_active"].values()))


def add_seed_statistics(row: dict[str, Any], values: dict[str, list[float]]) -> None:
    """Put each column's mean over the seeds in ``row[column]`` and its standard deviation in
    ``row[column + "_sd"]`` (0 for one seed)."""
    for column, seeds in values.items():
        row[column] = float(np.mean(seeds))
        row[f"{column}_sd"] = float(np.std(seeds, ddof=1)) if len(seeds) > 1 else 0.0


def seed_cell(row: dict[str, Any], column: str, digits: int) -> str:
    """A table cell: the mean ± sd over the seeds (the mean alone for one seed)."""
    spread = f" ± {row[column + '_sd']:.{digits}f}" if row["seeds"] > 1 else ""
    return f"{row[column]:.{digits}f}{spread}"


def csv_text(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV, with the first row's keys as the header."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def summarise(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """One row per remedy, in the order run: each column's mean and standard deviation over the
    seeds (``<column>`` and ``<column>_sd``; the IWAE's standard error averaged as ``iwae_se``),
    wall time and optimizer steps relative to the means of ``none``'s runs."""
    baseline = float(np.mean([r.seconds for r in results if r.remedy == "none"]))
    baseline_steps = float(np.mean([r.gradient_steps for r in results if r.remedy == "none"]))
    rows = []
    for remedy in dict.fromkeys(r.remedy for r in results):
        mine = [r for r in results if r.remedy == remedy]
        values = {
            "kl": [r.kl for r in mine],
            "active_units": [r.active_units for r in mine],
            "mutual_information": [r.mutual_information for r in mine],
            "collapsed": [r.collapsed for r in mine],
            "iwae": [r.iwae for r in mine],
            "reconstruction": [r.reconstruction for r in mine],
            "relative_time": [r.seconds / baseline for r in mine],
            "relative_steps": [r.gradient_steps / baseline_steps for r in mine],
        }
        row: dict[str, Any] = {"remedy": remedy, "seeds": len(mine)}
        add_seed_statistics(row, values)
        row["iwae_se"] = float(np.mean([r.iwae_error for r in mine]))
        row["predicted_active"] = mine[0].predicted_active
        rows.append(row)
    return rows


def markdown_table(rows: Sequence[dict[str, Any]], latent_total: int) -> str:
    """The bench's table: mean ± sd over seeds per remedy (the mean alone for one seed)."""
    cell = seed_cell
    theory = any(row["predicted_active"] is not None for row in rows)
    lines = [
        f"| remedy | KL (nats) | active units (of {latent_total}) |"
        + (" theory: active |" if theory else "")
        + " I(x; z) (nats) | collapsed (ε = 0.01, δ = 0.05) | log-likelihood (IWAE, nats) |"
        " reconstruction (nats) | time (× none) |",
        "|---|---|---|" + ("---|" if theory else "") + "---|---|---|---|---|",
    ]
    for row in rows:
        predicted = row["predicted_active"]
        lines.append(
            f"| {row['remedy']} | {cell(row, 'kl', 2)} | {cell(row, 'active_units', 1)} | "
            + (f"{'—' if predicted is None else predicted} | " if theory else "")
            + f"{cell(row, 'mutual_information', 2)} | {cell(row, 'collapsed', 1)} | "
            f"{cell(row, 'iwae', 2)} (se {row['iwae_se']:.2f}) | {cell(row, 'reconstruction', 2)}"
            f" | {cell(row, 'relative_time', 2)} |"
        )
    return "\n".join(lines) + "\n"


def monitored_split(dataset: Dataset) -> str:
    """The rows the runs' monitor diagnoses (the test split's, else the training split's), as
    the bench's tables and figures name them."""
    return monitored_rows(len(dataset.evaluation_split), dataset.evaluation_split_name)


def plot_bench(results: Sequence[RunResult], rows_monitored: str):
    """Three panels: the first level's per-dimension KL (sorted, mean over seeds), the training
    KL and the mutual information over epochs (on ``rows_monitored``), one line per remedy."""
    figure, (bars, kl_axis, mi_axis) = new_figure((15, 4.2), 1, 3)
    for remedy in dict.fromkeys(r.remedy for r in results):
        mine = [r for r in results if r.remedy == remedy]
        per_dim = np.mean([r.kl_per_dim for r in mine], axis=0)
        bars.plot(np.arange(1, per_dim.size + 1), per_dim, marker="o", ms=3, label=remedy)
        curve = np.mean([r.kl_curve for r in mine], axis=0)
        kl_axis.plot(np.arange(1, curve.size + 1), curve, label=remedy)
        epochs = [e for e, _ in mine[0].information_curve]
        information = np.mean([[v for _, v in r.information_curve] for r in mine], axis=0)
        mi_axis.plot(epochs, information, label=remedy)
    bars.set(yscale="symlog", xlabel="dimension (sorted by KL)", ylabel="KL per dimension (nats)")
    bars.set_yscale("symlog", linthresh=0.01)
    bars.axhline(0.01, color="grey", lw=0.8, ls=":")
    bars.set_title("KL per dimension, test split")
    kl_axis.set(xlabel="epoch", ylabel="KL (nats)", title="training KL over epochs")
    mi_axis.set(
        xlabel="epoch",
        ylabel="I(x; z) (nats)",
        title=f"I(x; z) over epochs ({rows_monitored})",
    )
    bars.legend(fontsize=8)
    return figure


def _write_outputs(
    directory: Path, results: Sequence[RunResult], family: str, dataset: Dataset,
    model_settings: dict[str, Any], training: TrainConfig, iwae_k: int,
) -> None:  # fmt: skip
    rows = summarise(results)
    latent_total = results[0].latent_total
    header = (
        f"# Remedy bench: {family} on {dataset.name}\n\n"
        f"Model settings: {json.dumps(model_settings, default=str)}; training: "
        f"{training.epochs} epochs, batch {training.batch_size}, lr {training.lr:g}; seeds "
        f"{', '.join(str(s) for s in dict.fromkeys(r.seed for r in results))}; IWAE with k = "
        f"{iwae_k}. Mean ± sd over the seeds, on the test split.\n\n"
    )
    markdown = header + markdown_table(rows, latent_total)
    write_text_atomic(directory / "remedies.md", markdown)
    write_text_atomic(directory / "remedies.csv", csv_text(rows))
    figure = save_figure(plot_bench(results, monitored_split(dataset)), directory / "remedies.png")
    write_report(
        directory / "report.html", f"Remedy bench: {family} on {dataset.name}", markdown, [figure]
    )
    summary = {"rows": rows, "runs": [r.__dict__ for r in results]}
    write_text_atomic(
        directory / "summary.json", json.dumps(summary, indent=2, allow_nan=False) + "\n"
    )
