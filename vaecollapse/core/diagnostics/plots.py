"""Diagnostic figures: (ε,δ)-collapse curves, per-dimension KL bars and σ_z histograms (Dai et
al. Fig. 2). Each function draws into the ``ax`` it is given (or a new figure) and returns the
Figure; :func:`save_figure` writes a PNG. Figures are matplotlib ``Figure`` objects made without
pyplot, so the library never switches a notebook's backend nor keeps figures alive."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from vaecollapse.core.diagnostics.report import DiagnosisReport
from vaecollapse.core.fileio import replace_atomically


def new_figure(figsize: tuple[float, float], rows: int = 1, cols: int = 1, squeeze: bool = True):
    """A Figure and its axes (an array of them for a grid unless ``squeeze``), without pyplot."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize)
    return figure, figure.subplots(rows, cols, squeeze=squeeze)


def _axis(ax, figsize: tuple[float, float]):
    """``ax`` and its figure, or a new figure's only axis."""
    if ax is not None:
        return ax.figure, ax
    return new_figure(figsize)


def save_figure(figure, path: str | Path) -> Path:
    """Write ``figure`` as a PNG at ``path`` (atomically); returns the path."""
    path = Path(path)
    figure.tight_layout()
    replace_atomically(path, lambda tmp: figure.savefig(tmp, dpi=120, format="png"))
    return path


def plot_collapse_curves(reports: Mapping[str, DiagnosisReport], *, ax=None):
    """Collapsed dimensions against ε (log axis) at each report's δ; one line per report and
    level. Returns the Figure."""
    figure, axis = _axis(ax, (5.5, 3.8))
    for label, report in reports.items():
        for name, level in report.levels.items():
            suffix = f" {name}" if len(report.levels) > 1 else ""
            axis.step(level.epsilons, level.collapse_curve, where="post", label=f"{label}{suffix}")
    axis.set_xscale("log")
    axis.set_xlabel("ε")
    axis.set_ylabel("collapsed dimensions")
    delta = next(iter(reports.values())).delta
    axis.set_title(f"(ε, δ)-collapse, δ = {delta:g}")
    axis.legend(fontsize=8)
    return figure


def plot_kl_bars(report: DiagnosisReport, *, ax=None):
    """Mean KL of every latent dimension (a grid's: every channel, summed over its positions) on
    a log axis, one panel per level (or every level side by side in ``ax``), with the threshold
    ε drawn and the (ε,δ)-collapsed dimensions (channels collapsed at every position) in grey
    and named in the legend. Returns the Figure."""
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        figure, axes = new_figure((4.5 * len(report.levels), 3.4), 1, len(report.levels), False)
        axes = list(axes[0])
    else:
        figure, axes = ax.figure, [ax] * len(report.levels)
    every = np.concatenate([_bars(level)[0] for level in report.levels.values()])
    positive = every[every > 0]
    floor = min(report.epsilon, float(positive.min()) if positive.size else report.epsilon) / 10
    offset = 0
    for axis, (name, level) in zip(axes, report.levels.items(), strict=True):
        kl, collapsed, unit = _bars(level)
        values = np.maximum(kl, floor)
        colours = ["0.7" if i in collapsed else "C0" for i in range(values.size)]
        positions = offset + np.arange(values.size)
        axis.bar(positions, values - floor, bottom=floor, color=colours)
        axis.set_yscale("log")
        axis.axhline(report.epsilon, color="C3", linestyle="--", linewidth=1)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel(f"{name} {unit}" if ax is None else f"{unit} (levels in turn)")
        axis.set_ylabel("mean KL (nats)")
        axis.set_title(f"{name}: {len(collapsed)} of {values.size} collapsed")
        offset += values.size if ax is not None else 0
    collapsed_label = f"collapsed (KL < ε for ≥ {1 - report.delta:.0%} of rows)"
    handles = [Patch(color="C0", label="active"), Patch(color="0.7", label=collapsed_label)]
    threshold = axes[0].lines[0]
    threshold.set_label(f"ε = {report.epsilon:g}")
    axes[0].legend(handles=[*handles, threshold], fontsize=7)
    return figure


def _bars(level) -> tuple[np.ndarray, set[int], str]:
    """A level's bars: KL per dimension, or per channel for a grid; which are collapsed."""
    if level.is_grid:
        return level.kl_per_channel, set(level.collapsed_channels), "channel"
    return level.kl_per_dim, set(level.collapsed_dims), "dimension"


def has_kl_map(level) -> bool:
    """Whether a level is a grid whose positions form a line or an image."""
    return level.is_grid and len(level.position_shape) <= 2


def plot_kl_map(report: DiagnosisReport):
    """Mean KL at each position of every grid level, summed over its channels: a heat map for
    an image grid (H, W), a line for a sequence (T,). Returns the Figure."""
    grids = [(name, level) for name, level in report.levels.items() if has_kl_map(level)]
    figure, axes = new_figure((4.5 * len(grids), 3.4), 1, len(grids), False)
    for axis, (name, level) in zip(axes[0], grids, strict=True):
        kl = level.kl_per_position
        if kl.ndim == 2:
            image = axis.imshow(kl, cmap="viridis", interpolation="nearest")
            figure.colorbar(image, ax=axis, label="KL (nats, summed over channels)")
            axis.set_xlabel("width")
            axis.set_ylabel("height")
        else:
            axis.plot(np.arange(kl.size), kl)
            axis.set_xlabel("position")
            axis.set_ylabel("KL (nats, summed over channels)")
        axis.set_title(f"{name}: KL per position")
    return figure


def plot_std_histograms(reports: Mapping[str, DiagnosisReport], *, ax=None):
    """Histograms of q's standard deviations σ_z over samples and dimensions (first level).
    Returns the Figure."""
    figure, axis = _axis(ax, (5.5, 3.8))
    for label, report in reports.items():
        stds = next(iter(report.levels.values())).encoder_std.flatten().numpy()
        axis.hist(stds, bins=40, range=(0, max(1.2, float(stds.max()))), alpha=0.6, label=label)
    axis.set_xlabel("σ_z")
    axis.set_ylabel("count (samples × dimensions)")
    axis.legend(fontsize=8)
    return figure
