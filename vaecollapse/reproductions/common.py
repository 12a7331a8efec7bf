"""What the entries share: the KL conventions they state, training a sweep of runs into the shared
run area, per-level summaries of a diagnosis, snapshots of a linear run against the theory, and
the checks and plots the sweeps use."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vaecollapse.core.data import Dataset, load_dataset
from vaecollapse.core.diagnostics.linear import theory_comparison
from vaecollapse.core.diagnostics.metrics import collapsed_dimensions
from vaecollapse.core.diagnostics.plots import new_figure, save_figure
from vaecollapse.core.diagnostics.report import DiagnosisReport, LevelReport
from vaecollapse.core.fileio import write_text_atomic
from vaecollapse.core.logs import LOGGER
from vaecollapse.core.models.factory import build_model, config_to_json, model_config
from vaecollapse.core.rundir import completed_epochs
from vaecollapse.reproductions.claims import Claim
from vaecollapse.reproductions.registry import Comparison, Context, EntryResult
from vaecollapse.training.batched import Run
from vaecollapse.training.config import TrainConfig
from vaecollapse.training.many import train_many
from vaecollapse.training.runs import diagnose_run, prepared_run

LINEAR_CONVENTION = (
    "our ||x−μ||²/(2η_dec²) + β·KL (docs/conventions.md), which the paper's linear scripts also "
    "use; β is the paper's β."
)
PAPER_CODE_CONVENTION = (
    "the paper's nonlinear scripts minimise ||x−μ||²/η_dec² + β·KL, i.e. an effective β/2 in "
    "our convention (docs/conventions.md); we train with β_ours = β_paper/2 so that our runs are "
    "the paper's (tables show β_paper). KL, AU and log-likelihoods do not depend on the convention."
)


KL_NOISE = 1e-3  # nats: KL differences between completely collapsed runs stay below this


def ours(beta_paper: float) -> float:
    """The β of our convention (docs/conventions.md) that reproduces the paper code's
    ``beta_paper``."""
    return beta_paper / 2.0


def data_derived(value: float) -> float:
    """A hyper-parameter computed from the data (a threshold θ_k), to 10 significant digits: the
    eigen-solvers' last digits change with the thread count, and a run's stored configuration
    must compare equal when it is resumed or found complete."""
    return float(f"{value:.10g}")


def load(ctx: Context, source: str, **options) -> Dataset:
    return load_dataset(source, data_dir=ctx.data_dir, verify=ctx.verify, **options)


@dataclass
class RunOutcome:
    """One trained and diagnosed run of a sweep."""

    settings: dict
    history: list[dict]
    report: DiagnosisReport
    run_dir: Path
    seed: int = 0

    @property
    def train_seconds(self) -> float:
        return float(sum(record["seconds"] for record in self.history))


def train_runs(
    ctx: Context,
    group: str,
    family: str,
    dataset: Dataset,
    runs: dict[str, dict],
    training: TrainConfig,
    *,
    iwae_k: int = 0,
    seeds: Mapping[str, int] | None = None,
) -> dict[str, RunOutcome]:
    """Train (or resume, or skip when complete) every ``label -> settings`` run of ``group`` in
    the shared run area (``train_labelled``) and diagnose each on the test split. ``seeds``: the
    seed of a run, where it is not the training's own."""
    training = ctx.training(training)
    trainings = {
        label: replace(training, seed=(seeds or {}).get(label, training.seed)) for label in runs
    }
    histories = train_labelled(
        ctx, group, family, dataset, runs, trainings, max(1, training.epochs // 4)
    )
    outcomes = {}
    for label, settings in runs.items():
        run_dir = ctx.run_dir(group, label)
        report, _ = diagnose_run(run_dir, dataset=dataset, iwae_k=iwae_k)
        outcomes[label] = RunOutcome(
            settings, histories[label], report, run_dir, trainings[label].seed
        )
    return outcomes


def train_labelled(
    ctx: Context,
    group: str,
    family: str,
    dataset: Dataset,
    runs: dict[str, dict],
    trainings: dict[str, TrainConfig],
    log_every: int,
) -> dict[str, list[dict]]:
    """Train every ``label -> settings`` run of ``group`` into the shared run area with
    ``train_many`` — runs that can share a batch as one (unless ``ctx.batch`` is off), the
    others ``ctx.jobs`` at a time; returns each label's metrics."""
    prepared = [
        replace(
            prepared_run(ctx.run_dir(group, label), family, dataset, settings, trainings[label]),
            label=f"{group}/{label}",
        )
        for label, settings in runs.items()
    ]
    prefix = f"[{ctx.out.name}] {group}: "
    LOGGER.info(f"{prefix}{len(prepared)} run(s)")
    histories = train_many(
        prepared, dataset, progress=False, log_every=log_every, log_prefix=prefix,
        batch=ctx.batch, jobs=ctx.jobs,
    )  # fmt: skip
    return dict(zip(runs, histories, strict=True))


def chosen_level(report: DiagnosisReport, level: str | None = None) -> LevelReport:
    """The named level of a report, or its only (first) one."""
    return report.levels[level] if level else next(iter(report.levels.values()))


def level_summary(report: DiagnosisReport, level: str | None = None) -> dict:
    """KL (nats, summed over dimensions), both AU readings in percent and the (ε,δ)-collapsed
    count of one level (the only one by default), plus the IWAE estimate when there is one."""
    chosen = chosen_level(report, level)
    d = chosen.latent_dim
    row = {
        "kl": chosen.kl_total,
        "au_burda_pct": 100.0 * chosen.active_units / d,
        "au_kl_pairs_pct": 100.0 * chosen.kl_active_fraction,
        "collapsed": len(chosen.collapsed_dims),
    }
    if report.iwae is not None:
        row["iwae_ll"] = report.iwae.mean
        row["iwae_se"] = report.iwae.standard_error
    return row


def collapsed_at(report: DiagnosisReport, epsilon: float, level: str | None = None) -> int:
    """Dimensions (ε,δ)-collapsed at ``epsilon`` (the report's δ)."""
    chosen = chosen_level(report, level)
    return int(collapsed_dimensions(chosen.kl, epsilon, chosen.delta).numel())


def active_by_mean_kl(
    report: DiagnosisReport, level: str | None = None, epsilon: float = 0.01
) -> int:
    """Dimensions whose KL averaged over the data is at least ``epsilon``: the trained counterpart
    of the theory's active modes (a nonzero singular value carries information on average). The
    (ε,δ) count also weighs the per-sample spread, which sampling noise from lower levels adds."""
    return int((chosen_level(report, level).kl_per_dim >= epsilon).sum())


def exact_count_checks(
    claim: Claim,
    weight: str,
    predicted: int,
    theory_kls: np.ndarray,
    report: DiagnosisReport,
    level: str | None = None,
) -> tuple[float, int]:
    """The theory's exact active count, checked on a trained run at a KL weight set to a
    threshold. There the theory keeps ``predicted`` modes, each with an optimal KL of at least m
    (the smallest of ``theory_kls`` among them), and gives the others none. The split is m/2,
    halfway between the two groups: a trained dimension counts as kept when its mean KL reaches
    it, so a kept mode may lose half its KL, and a collapsed one gain half of m, before the count
    is wrong. With no mode kept the split is 0.01 nats, the (ε,δ) criterion's ε. Checks that the
    ``predicted``-th largest trained KL is above the split and the next one below; returns the
    split and the trained count at it."""
    kept = np.sort(np.asarray(theory_kls, dtype=float))[::-1][:predicted]
    split = float(kept.min()) / 2 if predicted else 0.01
    trained = np.sort(chosen_level(report, level).kl_per_dim)[::-1]
    if predicted:
        claim.greater(
            f"{weight}: the {predicted} kept dimensions' smallest mean KL, against the split",
            trained[predicted - 1], split, "{:.3g}",
        )  # fmt: skip
    if predicted < len(trained):
        claim.less(
            f"{weight}: the largest mean KL of the other {len(trained) - predicted}, against the "
            "split", trained[predicted], split, "{:.3g}",
        )  # fmt: skip
    return split, int((trained >= split).sum())


def split_count_comparison(
    rows: list[dict], predicted: str, observed: str, paper: str = "—"
) -> Comparison:
    """The theory's exact count beside the trained count at each row's ``kl_split``
    (``exact_count_checks``), per row; ``paper``: what the paper says of the count."""
    pairs = [(r[predicted], r[observed], r["kl_split"]) for r in rows]
    matches = sum(p == o for p, o, _ in pairs)
    return Comparison(
        "active at the split (mean KL ≥ half the smallest optimal KL kept): theory / trained "
        "(split, nats)",
        paper,
        ", ".join(f"{p}/{o} ({split:.2g})" for p, o, split in pairs),
        f"{matches} of {len(pairs)} agree",
    )


def active_count_comparison(
    quantity: str,
    predicted: Sequence[int],
    by_mean_kl: Sequence[int],
    by_epsilon_delta: Sequence[int],
) -> Comparison:
    """The theory's active dimensions beside the trained ones counted both ways, per setting;
    agreement is judged on the mean-KL count (see ``active_by_mean_kl``)."""
    counts = zip(predicted, by_mean_kl, by_epsilon_delta, strict=True)
    matches = sum(p == m for p, m in zip(predicted, by_mean_kl, strict=True))
    return Comparison(
        f"{quantity}: theory / trained, mean KL ≥ 0.01 / trained, (ε,δ)",
        "—",
        ", ".join(f"{p}/{m}/{e}" for p, m, e in counts),
        f"{matches} of {len(predicted)} agree (mean KL)",
    )


def kl_monotone(
    claim: Claim,
    label: str,
    kls: Sequence[float],
    increasing: bool,
    report: DiagnosisReport,
    level: str | None = None,
    informative: bool = False,
) -> bool:
    """``claim.monotone`` for KLs summed over a level's d dimensions, one per run. A step between
    two runs both under d·ε (every dimension collapsed on average) is not judged: the direction
    of a collapsed level's KL is noise. Other steps may go against the direction by KL_NOISE.
    A consistency check unless ``informative`` (the swept setting is not the KL's own weight)."""
    floor = chosen_level(report, level).latent_dim * report.epsilon
    return claim.monotone(label, kls, increasing, KL_NOISE, floor=floor, informative=informative)


def mean_collapsed(report: DiagnosisReport, level: str | None = None) -> float:
    """The (ε,δ)-collapse curve averaged over its log-spaced ε grid: which of two curves lies
    higher, in one number."""
    chosen = chosen_level(report, level)
    return float(np.mean(chosen.collapse_curve))


def monotone(values: Sequence[float], increasing: bool, tolerance: float = 0.0) -> bool:
    """Whether ``values`` never move against the stated direction by more than ``tolerance``."""
    steps = np.diff(np.asarray(values, dtype=float))
    return bool(np.all(steps >= -tolerance) if increasing else np.all(steps <= tolerance))


def paper_vs_ours(
    quantity: str,
    paper: Iterable[float] | None,
    measured: Iterable[float],
    fmt: str = "{:.2f}",
    agreement: str = "",
    spread: Iterable[float] | None = None,
) -> Comparison:
    """One comparison line listing a sweep's paper values and ours (``spread``: each value's
    standard deviation over seeds, shown as "mean ± sd")."""
    shown = ", ".join(fmt.format(v) for v in measured)
    if spread is not None:
        shown = ", ".join(
            f"{fmt.format(v)} ± {fmt.format(sd)}" for v, sd in zip(measured, spread, strict=True)
        )
    printed = "—" if paper is None else ", ".join(f"{v:g}" for v in paper)
    return Comparison(quantity, printed, shown, agreement)


def trend(values: Sequence[float], increasing: bool, tolerance: float = 0.0) -> str:
    """The agreement note of a sweep whose paper values move in the stated direction; steps
    against it of up to ``tolerance`` (a stated noise level, e.g. KL_NOISE) are allowed, and
    said. A sweep that moves the other way says so."""
    direction, opposite = ("rises", "falls") if increasing else ("falls", "rises")
    if monotone(values, increasing):
        return f"{direction} (as the paper's)"
    if monotone(values, increasing, tolerance):
        return f"{direction} (as the paper's), with steps of at most {tolerance:g} against it"
    if monotone(values, not increasing):
        return f"{opposite}, where the paper's {direction}"
    return "not monotone"


def plot_sweeps(
    panels: dict[str, dict[str, DiagnosisReport]],
    path: Path,
    level: str | None = None,
) -> Path:
    """(ε,δ)-collapse curves, one panel per sweep and one line per setting."""
    figure, axes = new_figure((4.4 * len(panels), 3.5), 1, len(panels), squeeze=False)
    for axis, (title, reports) in zip(axes[0], panels.items(), strict=True):
        for label, report in reports.items():
            chosen = chosen_level(report, level)
            axis.step(chosen.epsilons, chosen.collapse_curve, where="post", label=label)
        axis.set_xscale("log")
        axis.set_xlabel("ε")
        axis.set_ylabel("collapsed dimensions" + (f" of {level}" if level else ""))
        axis.set_title(title, fontsize=9)
        axis.legend(fontsize=7)
    return save_figure(figure, path)


def train_with_snapshots(
    ctx: Context,
    group: str,
    family: str,
    dataset: Dataset,
    settings: dict,
    training: TrainConfig,
    epochs: Sequence[int],
    measure: Callable[[nn.Module, Dataset], dict] | None = None,
) -> tuple[list[dict], list[dict]]:
    """Train one linear run in stages (resume is exact, so the stages are one run) and measure
    the model after each: ``(history, [{"epoch", ...}])``. ``measure(model, dataset)`` (on the
    CPU) gives a snapshot's numbers; by default the D_MA of each map and encoder std to the
    theory's optimum (``d_ma_<map>``, ``d_ma_std_<level>``)."""
    measure = theory_distances if measure is None else measure
    config = model_config(family, dataset, **settings)
    training = ctx.training(training)
    run_dir = ctx.run_dir(group)
    record_path = run_dir / "snapshots.json"
    recorded = json.loads(record_path.read_text()) if record_path.exists() else []
    history: list[dict] = []
    if ctx.epochs is not None:  # the stages up to the epochs asked for, ending there
        epochs = sorted({min(epoch, ctx.epochs) for epoch in epochs})
    done = completed_epochs(run_dir)
    for epoch in epochs:
        if epoch < done and epoch != epochs[-1]:  # an earlier invocation went past this stage
            continue
        torch.manual_seed(training.seed)
        model = build_model(config)
        stage = Run(
            model, replace(training, epochs=epoch), run_dir, {"model": config_to_json(config)}
        )
        (history,) = train_many(
            [stage], dataset, progress=False, log_every=max(1, training.epochs // 4)
        )
        reached = history[-1]["epoch"]
        if any(row["epoch"] == reached for row in recorded):
            continue
        recorded.append({"epoch": reached} | measure(model.cpu(), dataset.to("cpu")))
        text = json.dumps(recorded, indent=1)
        write_text_atomic(record_path, text)
    return history, sorted(recorded, key=lambda row: row["epoch"])


def theory_distances(model: nn.Module, dataset: Dataset) -> dict:
    """D_MA of each trained map and encoder std to the theory's optimum for ``dataset``."""
    compared = theory_comparison(model, dataset)
    row = {f"d_ma_{name}": v["d_ma"] for name, v in compared["maps"].items()}
    return row | {f"d_ma_std_{name}": v["d_ma"] for name, v in compared["encoder_std"].items()}


def plot_weighted_kl(
    betas: Sequence[float], weighted_kl: Sequence[float], path: Path, symbol: str, title: str
) -> Path:
    """β·KL against β = θ_k (log axis) for fig6a and fig6b; ``symbol``: "β" or "β2"."""
    figure, axis = new_figure((5, 3.4))
    axis.plot(betas, weighted_kl, "o-")
    axis.set_xscale("log")
    axis.set_xlabel(f"{symbol} = θ_k")
    axis.set_ylabel(f"{symbol}·KL{'(z2)' if symbol == 'β2' else ''} (nats, test)")
    axis.set_title(title)
    return save_figure(figure, path)


def plot_d_ma(snapshots: list[dict], path: Path, title: str) -> Path:
    figure, axis = new_figure((5, 3.4))
    epochs = [row["epoch"] for row in snapshots]
    for key in snapshots[0]:
        if key.startswith("d_ma"):
            label = key.removeprefix("d_ma_").replace("std_", "σ ")
            axis.plot(epochs, [row[key] for row in snapshots], "o-", label=label)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("epoch")
    axis.set_ylabel("D_MA to the closed form")
    axis.set_title(title, fontsize=9)
    axis.legend(fontsize=8)
    return save_figure(figure, path)


def image_grid(images: torch.Tensor, image_shape: tuple[int, int, int], rows: int) -> np.ndarray:
    """``(n, D)`` images in [0, 1] -> one ``(rows·(H+1), cols·(W+1)[, C])`` mosaic, one white
    pixel between images."""
    channels, height, width = image_shape
    n = images.shape[0]
    cols = -(-n // rows)
    canvas = np.ones((rows * (height + 1), cols * (width + 1), channels))
    pictures = images.detach().cpu().clamp(0, 1).reshape(n, channels, height, width).numpy()
    for i, picture in enumerate(pictures):
        top, left = (height + 1) * (i // cols), (width + 1) * (i % cols)
        canvas[top : top + height, left : left + width] = picture.transpose(1, 2, 0)
    return canvas[..., 0] if channels == 1 else canvas


def total_train_seconds(outcomes: Iterable[RunOutcome]) -> float:
    return float(sum(o.train_seconds for o in outcomes))


def theory_convergence(
    snapshots: list[dict], history: list[dict], figure: Path, paper: str, bound: float = 0.08
) -> EntryResult:
    """The result of a ``train_with_snapshots`` run: every D_MA must end below ``bound`` and
    below its value at the first snapshot (a fixed std, exact from the start, counts as
    converged)."""
    first, last = snapshots[0], snapshots[-1]
    keys = [k for k in last if k.startswith("d_ma")]
    claim = Claim(
        f"every D_MA between the trained maps (and stds) and the closed form ends below {bound:g} "
        "and below its value at the first snapshot"
    )
    converged = {}
    for k in keys:
        name = k.removeprefix("d_ma_").replace("std_", "σ ")
        below = claim.less(f"{name}: final D_MA under {bound:g}", last[k], bound, "{:.3g}")
        if last[k] < 1e-9:  # a fixed std is exact from the start
            converged[k] = below
        else:
            falls = claim.less(f"{name}: final D_MA under the first", last[k], first[k], "{:.3g}")
            converged[k] = below and falls
    comparisons = [
        Comparison(
            f"{k.removeprefix('d_ma_').replace('std_', 'σ ')}: D_MA at epoch {last['epoch']}",
            paper,
            f"{last[k]:.4f} (epoch {first['epoch']}: {first[k]:.3f})",
            "agrees" if converged[k] else f"not below {bound:g} and falling",
        )
        for k in keys
    ]
    return EntryResult(
        **claim.fields(),
        rows=snapshots,
        comparisons=comparisons,
        figures=[figure],
        train_seconds=float(sum(record["seconds"] for record in history)),
    )
