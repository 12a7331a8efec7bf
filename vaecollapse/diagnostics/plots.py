"""Diagnostic figures (matplotlib, headless PNG): (ε,δ)-collapse curves, per-dimension KL bars and
σ_z histograms (Dai et al. Fig. 2)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..fileio import replace_atomically
from .report import DiagnosisReport


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: Path) -> Path:
    replace_atomically(path, lambda tmp: figure.savefig(tmp, dpi=120, format="png"))
    pyplot().close(figure)
    return path


def plot_collapse_curves(reports: Mapping[str, DiagnosisReport], path: str | Path) -> Path:
    """Collapsed dimensions against ε (log axis) at each report's δ; one line per report and
    level."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(5.5, 3.8))
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
    figure.tight_layout()
    return save_figure(figure, Path(path))


def plot_kl_bars(report: DiagnosisReport, path: str | Path) -> Path:
    """Mean KL of every latent dimension, one panel per level, collapsed dimensions in grey."""
    plt = pyplot()
    figure, axes = plt.subplots(1, len(report.levels), figsize=(4.5 * len(report.levels), 3.4))
    for axis, (name, level) in zip(np.atleast_1d(axes), report.levels.items(), strict=True):
        values = level.kl_per_dim
        collapsed = set(level.collapsed_dims)
        colours = ["0.7" if i in collapsed else "C0" for i in range(values.size)]
        axis.bar(np.arange(values.size), values, color=colours)
        axis.set_xlabel(f"{name} dimension")
        axis.set_ylabel("mean KL (nats)")
        axis.set_title(f"{name}: {len(collapsed)} of {values.size} collapsed")
    figure.tight_layout()
    return save_figure(figure, Path(path))


def plot_std_histograms(reports: Mapping[str, DiagnosisReport], path: str | Path) -> Path:
    """Histograms of q's standard deviations σ_z over samples and dimensions (first level)."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(5.5, 3.8))
    for label, report in reports.items():
        stds = next(iter(report.levels.values())).encoder_std.flatten().numpy()
        axis.hist(stds, bins=40, range=(0, max(1.2, float(stds.max()))), alpha=0.6, label=label)
    axis.set_xlabel("σ_z")
    axis.set_ylabel("count (samples × dimensions)")
    axis.legend(fontsize=8)
    figure.tight_layout()
    return save_figure(figure, Path(path))
