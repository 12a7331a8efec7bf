"""Collapse phase diagrams: a grid of (β, η_dec) points of one model, trained as one batch
(``vaecollapse.training.batched``), the observed number of active dimensions per point as a heat
map, the linear theory's threshold curves drawn over it, and the points where the two disagree
marked.

For the linear backbone the theory is a prediction: every point trains full-batch on the data's
second-moment rows (``second_moment_rows``: the exact full-batch objective of a linear model with
a learnable, data-independent encoder variance, at the cost of D rows instead of N) with Rprop,
whose per-element step sizes suit a deterministic objective, and each point's distance to the
theory's optimum (D_MA, the largest over its maps and encoder stds) is reported beside its
count. For an MLP backbone the linear curves are a reference, not a prediction. The MHVAE's
diagram is over (β2, η_dec) at a set β1, with z1's encoder std fixed and Σ2 learnable (Theorem 3),
and counts z2's active dimensions.

Every point is an ordinary run directory under ``runs/``; running the same command again over the
same ``--out`` resumes unfinished points and retrains none that finished.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullLocator

from vaecollapse.core.data import Dataset, second_moment_rows
from vaecollapse.core.diagnostics.linear import theory_comparison
from vaecollapse.core.diagnostics.plots import new_figure, save_figure
from vaecollapse.core.diagnostics.report import diagnose_model
from vaecollapse.core.errors import InputError
from vaecollapse.core.families import FAMILY_NAMES, ModelFamily, model_family
from vaecollapse.core.fileio import write_text_atomic
from vaecollapse.core.logs import LOGGER
from vaecollapse.core.models.factory import build_model, config_to_json, model_config
from vaecollapse.core.options import LIST, MAX_SEED, POSITIVE, check_fields, setting
from vaecollapse.core.pages import write_report
from vaecollapse.core.rundir import claimed_directory, guard_definition
from vaecollapse.core.theory import predict
from vaecollapse.training.batched import Run
from vaecollapse.training.config import TrainConfig
from vaecollapse.training.many import train_many

PHASE_BACKBONES = ("linear", "mlp")
ETA_DEC_RANGE = (0.5, 2.0)
# How far the default β range reaches past the thresholds: far enough to show the regions with
# every mode active and none, near enough that full-batch training reaches the optimum in the
# default steps (convergence slows as β·η_dec² → 0, where the encoder variances vanish).
THRESHOLD_MARGIN = 2.0
CURVE_POINTS = 80  # η_dec values at which the threshold curves are drawn
SETTINGS_FILE = "phase.json"  # marks the output directory and guards a resume
D_MA_BAR = 0.01  # the distance to the theory's optimum under which a point counts as trained


@dataclass(frozen=True)
class PhaseSettings:
    """What a phase diagram trains; each setting declared with its domain."""

    model: str = setting("vae", str, "Model family", choices=FAMILY_NAMES)
    dataset: str | None = setting(
        None, str, "Data set (default: digits-quadrant for the CVAE, else digits)"
    )
    latent_dim: int = setting(8, int, "Latent size", low=1)
    backbone: str = setting(
        "linear", str, "linear (the theory's model) or mlp (the theory as a reference)",
        choices=PHASE_BACKBONES,
    )  # fmt: skip
    hidden: int = setting(128, int, "Width of the MLP's hidden layer", low=1)
    grid: int = setting(16, int, "Points along each axis when β's or η_dec's are not given", low=2)
    betas: tuple[float, ...] | None = setting(
        None, float, "β values, the MHVAE's β2 (default: spanning the theory's thresholds)",
        shape=LIST,
        **POSITIVE,
    )  # fmt: skip
    eta_decs: tuple[float, ...] | None = setting(
        None, float, f"η_dec values (default: {ETA_DEC_RANGE[0]:g} to {ETA_DEC_RANGE[1]:g})",
        shape=LIST, **POSITIVE,
    )  # fmt: skip
    epochs: int | None = setting(
        None, int, "Epochs (default: 2000 full-batch steps linear, 40 epochs mlp)", low=1
    )
    lr: float | None = setting(
        None, float, "Learning rate (default: Rprop's first step 1e-2 linear, Adam 3e-3 mlp)",
        **POSITIVE,
    )  # fmt: skip
    beta1: float = setting(
        1.0, float, "MHVAE: the KL weight of z1 (the diagram's β is z2's, β2)", **POSITIVE
    )
    sigma1: float = setting(
        1.0, float, "MHVAE: z1's fixed encoder std, Σ1 = σ1²I (Theorem 3's setting)", **POSITIVE
    )
    seed: int = setting(
        0, int, "Seed of every point's initial weights and batches", low=0, high=MAX_SEED
    )
    epsilon: float = setting(0.01, float, "ε of (ε,δ)-collapse (nats)", **POSITIVE)
    delta: float = setting(0.05, float, "δ of (ε,δ)-collapse", low=0, high=1, high_open=True)

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.family.hierarchical and (self.beta1 != 1.0 or self.sigma1 != 1.0):
            raise InputError(
                "beta1 and sigma1 set the MHVAE's first level; the VAE and CVAE have one level."
            )
        for name in ("betas", "eta_decs"):
            values = getattr(self, name)
            if values is not None and len(set(values)) != len(values):
                raise InputError(f"{name} repeats a value; give each once.")

    @property
    def family(self) -> ModelFamily:
        return model_family(self.model)

    @property
    def data_name(self) -> str:
        return self.dataset or self.family.default_dataset

    @property
    def linear(self) -> bool:
        return self.backbone == "linear"

    @property
    def level(self) -> str:
        """The level whose active dimensions the diagram counts: the MHVAE's top level z2."""
        return self.family.swept_level

    @property
    def beta_name(self) -> str:
        return self.family.swept_beta_symbol

    def theory_settings(self, eta_dec: float, beta: float = 1.0) -> dict:
        """``predict``'s options at (β, η_dec); the MHVAE's β is β2, with σ1 fixed and Σ2
        learnable (Theorem 3)."""
        if self.family.hierarchical:
            return {"betas": (self.beta1, beta), "sigmas": (self.sigma1, None), "eta_dec": eta_dec}
        return {"beta": beta, "eta_dec": eta_dec}

    def model_settings(self, beta: float, eta_dec: float) -> dict:
        """The settings of the point (β, η_dec): a learnable encoder variance, shared by every
        input (linear, the theory's) or an MLP of the input."""
        learned = "shared" if self.linear else "amortized"
        common = {"latent_dim": self.latent_dim, "backbone": self.backbone, "hidden": self.hidden}
        if self.family.hierarchical:
            levels = {"encoder_variances": ("fixed", learned), "sigmas": (self.sigma1, None)}
            return common | levels | {"betas": (self.beta1, beta), "eta_dec": eta_dec}
        return common | {"beta": beta, "eta_dec": eta_dec, "encoder_variance": learned}

    def training(self, rows: int) -> TrainConfig:
        """Linear: full-batch Rprop over the ``rows`` second-moment rows, one step an epoch;
        MLP: Adam over minibatches of the data."""
        if self.linear:
            epochs = self.epochs or 2000
            return TrainConfig(
                epochs=epochs, batch_size=rows, lr=self.lr or 1e-2, optimizer="Rprop",
                analytic=True, seed=self.seed, record_every=max(1, epochs // 20),
                checkpoint_every=max(1, epochs // 2),
            )  # fmt: skip
        return TrainConfig(
            epochs=self.epochs or 40, batch_size=128, lr=self.lr or 3e-3, seed=self.seed
        )


@dataclass
class PhasePoint:
    """One point of the grid: the theory's and the trained model's active dimensions. ``d_ma``:
    the largest D_MA of the trained maps and stds to the theory's optimum (linear only);
    ``boundary_kl``: the mean KL of the dimension the two counts disagree on (the weakest the
    theory keeps, or the strongest it drops), in nats."""

    beta: float
    eta_dec: float
    predicted_active: int
    observed_active: int
    kl_total: float
    train_loss: float
    d_ma: float | None
    boundary_kl: float | None
    run_dir: str

    @property
    def agrees(self) -> bool:
        return self.predicted_active == self.observed_active


@dataclass
class PhaseResult:
    settings: PhaseSettings
    betas: list[float]
    eta_decs: list[float]
    points: list[PhasePoint]
    curves: dict[str, list]  # eta_dec: the curve grid; beta: per η_dec, each mode's threshold
    seconds: dict[str, float]


def default_axes(settings: PhaseSettings, dataset: Dataset) -> tuple[list[float], list[float]]:
    """The η_dec and β grids: the given ones, else η_dec log-spaced over ``ETA_DEC_RANGE`` and β
    log-spaced from ``THRESHOLD_MARGIN`` below the last mode's threshold at the smallest η_dec
    to as far above the first mode's at the largest (the theory's thresholds for these data)."""
    etas = settings.eta_decs or tuple(np.geomspace(*ETA_DEC_RANGE, settings.grid))
    etas = sorted(float(e) for e in etas)
    if settings.betas is not None:
        return sorted(settings.betas), etas
    low = min(_thresholds(settings, dataset, etas[0]))
    high = max(_thresholds(settings, dataset, etas[-1]))
    low, high = sorted((low, high))
    betas = np.geomspace(low / THRESHOLD_MARGIN, high * THRESHOLD_MARGIN, settings.grid)
    return [float(f"{b:.6g}") for b in betas], [float(f"{e:.6g}") for e in etas]


def _thresholds(settings: PhaseSettings, dataset: Dataset, eta_dec: float) -> list[float]:
    """The β (the MHVAE's β2) at which each of the latent dimension's modes collapses, at
    ``eta_dec``."""
    options = settings.theory_settings(eta_dec)
    prediction = predict(settings.model, dataset, settings.latent_dim, **options)
    key = settings.family.swept_beta
    return [mode[key] for mode in prediction.thresholds][: settings.latent_dim]


def threshold_curves(settings: PhaseSettings, dataset: Dataset, etas: list[float]) -> dict:
    """Each mode's collapse threshold β over a fine η_dec grid spanning ``etas``."""
    fine = np.geomspace(etas[0], etas[-1], CURVE_POINTS)
    return {
        "eta_dec": fine.tolist(),
        "beta": [_thresholds(settings, dataset, float(e)) for e in fine],
    }


def run_phase(settings: PhaseSettings, dataset: Dataset, out: str | Path, device: str = "auto"):
    """Train, diagnose and draw the phase diagram into ``out`` (locked meanwhile; another
    setting's diagram there is refused); returns the ``PhaseResult``."""
    with claimed_directory(out, "phase") as directory:
        return _run_phase(settings, dataset, directory, device)


def _run_phase(settings: PhaseSettings, dataset: Dataset, out: Path, device: str) -> PhaseResult:
    definition = asdict(replace(settings, epochs=None))
    guard_definition(out / SETTINGS_FILE, definition, "a phase diagram of other settings")
    started = time.perf_counter()
    betas, etas = default_axes(settings, dataset)
    train_data = second_moment_rows(dataset) if settings.linear else dataset
    training = settings.training(len(train_data.train))
    runs, cells = [], []
    for beta in betas:
        for eta in etas:
            model_settings = settings.model_settings(beta, eta)
            config = model_config(settings.model, train_data, **model_settings)
            torch.manual_seed(settings.seed)  # every point starts from the same weights
            run_dir = out / "runs" / f"beta{beta:.6g}-eta{eta:.6g}"
            runs.append(
                Run(build_model(config), training, run_dir, {"model": config_to_json(config)})
            )
            cells.append((beta, eta))
    LOGGER.info(
        f"phase: {len(runs)} points ({len(betas)} β × {len(etas)} η_dec), {settings.backbone} "
        f"{settings.model.upper()} d={settings.latent_dim} on {dataset.name}"
    )
    histories = train_many(
        runs, train_data, device=device, progress=False, log_every=max(1, training.epochs // 4),
        log_prefix="phase: ",
    )  # fmt: skip
    trained = time.perf_counter()
    points = [
        _measure(settings, dataset, run, history[-1], beta, eta)
        for run, history, (beta, eta) in zip(runs, histories, cells, strict=True)
    ]
    curves = threshold_curves(settings, dataset, etas)
    measured = time.perf_counter()
    result = PhaseResult(
        settings, betas, etas, points, curves,
        {"train": trained - started, "diagnose": measured - trained},
    )  # fmt: skip
    plot_phase(result, out / "phase.png")
    result.seconds["total"] = time.perf_counter() - started
    write_text_atomic(out / "phase.csv", _csv(points))
    markdown = format_summary(result, settings.data_name)
    write_text_atomic(out / "summary.md", markdown)
    write_report(out / "report.html", "Phase diagram", markdown, [out / "phase.png"])
    write_text_atomic(out / "summary.json", json.dumps(_json(result), indent=2) + "\n")
    return result


def _measure(settings, dataset, run: Run, last: dict, beta: float, eta: float) -> PhasePoint:
    """The point's counts on the data's test split (the training split if it has none)."""
    model = run.model.cpu()
    split = dataset.evaluation_split
    report = diagnose_model(model, split.x, split.y, epsilon=settings.epsilon, delta=settings.delta)
    level = report.levels[settings.level]
    observed = settings.latent_dim - len(level.collapsed_dims)
    options = settings.theory_settings(eta, beta)
    prediction = predict(settings.model, dataset, settings.latent_dim, **options)
    predicted = int(prediction.optimum.active_dims[settings.level])
    d_ma = None
    if settings.linear:
        comparison = theory_comparison(model, dataset)
        parts = [*comparison["maps"].values(), *comparison["encoder_std"].values()]
        d_ma = max(part["d_ma"] for part in parts)
    kls = np.sort(level.kl_per_dim)[::-1]
    boundary = None
    if observed != predicted:
        boundary = float(kls[min(predicted, observed)])
    return PhasePoint(
        beta, eta, predicted, observed, level.kl_total, last["train_loss"], d_ma, boundary,
        str(run.run_dir),
    )  # fmt: skip


def _edges(values: list[float]) -> np.ndarray:
    """Cell edges on a log axis: geometric midpoints, the outer ones mirrored."""
    logs = np.log(values)
    if len(logs) == 1:
        return np.exp([logs[0] - 0.1, logs[0] + 0.1])
    middle = (logs[1:] + logs[:-1]) / 2
    return np.exp(np.concatenate([[2 * logs[0] - middle[0]], middle, [2 * logs[-1] - middle[-1]]]))


def _round_ticks(values: list[float], count: int = 5) -> list[float]:
    """About ``count`` log-spaced tick positions over ``values``, to two significant digits."""
    return sorted({float(f"{v:.2g}") for v in np.geomspace(values[0], values[-1], count)})


def plot_phase(result: PhaseResult, path: Path) -> Path:
    """Left: the observed active count per point, the theory's threshold curves (mode k is
    active below its curve) and a cross on every point where the counts disagree. Right
    (linear): each point's D_MA to the theory's optimum; (MLP) the theory's count."""
    s = result.settings
    figure, (left, right) = new_figure((11, 4.4), 1, 2)
    shape = (len(result.betas), len(result.eta_decs))
    observed = np.array([p.observed_active for p in result.points]).reshape(shape)
    x_edges, y_edges = _edges(result.eta_decs), _edges(result.betas)
    mesh = left.pcolormesh(
        x_edges, y_edges, observed, cmap="viridis", vmin=-0.5, vmax=s.latent_dim + 0.5
    )
    figure.colorbar(mesh, ax=left, label=f"(ε,δ)-active dimensions (ε={s.epsilon:g})")
    curves = np.array(result.curves["beta"])  # (η_dec points, modes)
    fine = np.array(result.curves["eta_dec"])
    for k in range(curves.shape[1]):
        left.plot(fine, curves[:, k], color="white", lw=1)
        inside = np.flatnonzero((curves[:, k] > y_edges[0]) & (curves[:, k] < y_edges[-1]))
        if inside.size:  # name the mode where its curve enters the plot
            i = inside[0]
            left.annotate(
                str(k + 1), (fine[i], curves[i, k]), color="white", fontsize=7,
                xytext=(2, 2), textcoords="offset points",
            )  # fmt: skip
    wrong = [p for p in result.points if not p.agrees]
    if wrong:
        left.plot(
            [p.eta_dec for p in wrong], [p.beta for p in wrong], "x", color="red", ms=6,
            label=f"{len(wrong)} differ from the {'theory' if s.linear else 'linear theory'}",
        )  # fmt: skip
        left.legend(fontsize=8, loc="lower left")
    kind = "theory" if s.linear else "linear theory (reference)"
    first = f", β1={s.beta1:g}, σ1={s.sigma1:g}" if s.family.hierarchical else ""
    left.set_title(
        f"{s.backbone} {s.model.upper()} d={s.latent_dim}{first}: trained, {kind} curves",
        fontsize=9,
    )
    if s.linear:
        values = np.array([p.d_ma for p in result.points]).reshape(shape)
        mesh = right.pcolormesh(
            x_edges, y_edges, np.log10(np.maximum(values, 1e-6)), cmap="magma", vmax=0
        )
        figure.colorbar(mesh, ax=right, label="log10 D_MA to the theory's optimum")
        right.set_title(f"distance to the optimum (bar: D_MA < {D_MA_BAR:g})")
    else:
        predicted = np.array([p.predicted_active for p in result.points]).reshape(shape)
        mesh = right.pcolormesh(
            x_edges, y_edges, predicted, cmap="viridis", vmin=-0.5, vmax=s.latent_dim + 0.5
        )
        figure.colorbar(mesh, ax=right, label="active dimensions, linear theory")
        right.set_title("the linear theory's count (reference)")
    for axis in (left, right):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlim(x_edges[0], x_edges[-1])
        axis.set_ylim(y_edges[0], y_edges[-1])
        for ticks, values in ((axis.xaxis, result.eta_decs), (axis.yaxis, result.betas)):
            ticks.set_major_locator(FixedLocator(_round_ticks(values)))
            ticks.set_major_formatter(FormatStrFormatter("%g"))
            ticks.set_minor_locator(NullLocator())
        axis.set_xlabel("η_dec")
        axis.set_ylabel(s.beta_name)
    return save_figure(figure, path)


def _csv(points: list[PhasePoint]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    names = [*PhasePoint.__dataclass_fields__, "agrees"]
    writer.writerow(names)
    for p in points:
        writer.writerow([*asdict(p).values(), p.agrees])
    return buffer.getvalue()


def _json(result: PhaseResult) -> dict:
    return {
        "settings": asdict(result.settings),
        "betas": result.betas,
        "eta_decs": result.eta_decs,
        "points": [asdict(p) | {"agrees": p.agrees} for p in result.points],
        "agreeing": sum(p.agrees for p in result.points),
        "max_d_ma": _max_d_ma(result.points),
        "threshold_curves": result.curves,
        "seconds": result.seconds,
    }


def _max_d_ma(points: list[PhasePoint]) -> float | None:
    values = [p.d_ma for p in points if p.d_ma is not None]
    return max(values) if values else None


def format_summary(result: PhaseResult, data_name: str) -> str:
    s, points = result.settings, result.points
    agreeing = sum(p.agrees for p in points)
    lines = [
        f"# Phase diagram: {s.backbone} {s.model.upper()}, d = {s.latent_dim}, on {data_name}"
        + (
            f" (β1 = {s.beta1:g}, σ1 = {s.sigma1:g}; the count is z2's)"
            if s.family.hierarchical
            else ""
        ),
        "",
        f"{len(points)} points: {s.beta_name} from {result.betas[0]:.3g} to {result.betas[-1]:.3g} "
        f"({len(result.betas)}), η_dec from {result.eta_decs[0]:.3g} to {result.eta_decs[-1]:.3g} "
        f"({len(result.eta_decs)}); trained as one batch in {result.seconds['train']:.1f} s, "
        f"measured in {result.seconds['diagnose']:.1f} s, {result.seconds['total']:.1f} s in all.",
        "",
        f"- (ε,δ)-active count (ε = {s.epsilon:g}, δ = {s.delta:g}) equal to the theory's: "
        f"{agreeing} of {len(points)} points.",
    ]
    worst = _max_d_ma(points)
    if worst is not None:
        reached = sum(p.d_ma < D_MA_BAR for p in points)
        lines.append(
            f"- Trained to the theory's optimum (D_MA < {D_MA_BAR:g}): {reached} of "
            f"{len(points)} points; the largest D_MA is {worst:.3g}."
        )
    else:
        lines.append(
            "- MLP backbone: the linear theory's counts are a reference, not a prediction."
        )
    wrong = [p for p in points if not p.agrees]
    if wrong:
        lines += [
            "",
            "Points where the counts differ (KL: the mean KL, in nats, of the dimension they "
            "differ on; where D_MA is small the model is at the optimum and that mode carries "
            "less than ε there, next to its threshold):",
            "",
            f"| {s.beta_name} | η_dec | theory | trained | KL | D_MA |",
            "|---|---|---|---|---|---|",
        ]
        for p in wrong:
            d_ma = "—" if p.d_ma is None else f"{p.d_ma:.3g}"
            lines.append(
                f"| {p.beta:.4g} | {p.eta_dec:.4g} | {p.predicted_active} | {p.observed_active} | "
                f"{p.boundary_kl:.3g} | {d_ma} |"
            )
    lines += ["", "Figure: phase.png; every point: phase.csv and its run directory under runs/."]
    return "\n".join(lines) + "\n"
