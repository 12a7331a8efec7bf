"""The verdict: which dimensions and levels collapsed, the likely cause in Dai et al.'s taxonomy,
and the hyper-parameter change that the linear theory (Dang et al.) predicts would keep more
dimensions active.

Causes named: ``benign`` (the data have no variance left for the dimension: unused capacity),
``over-regularisation`` (β·η_dec² beyond θ_i², the linear threshold), ``learnable encoder variance``
(a learned Σ collapses modes that a fixed, smaller Σ would keep), ``silenced by a collapsed level``
(MHVAE: a level with nothing to pass up) and ``beyond the linear prediction`` (more collapse than
the linear optimum implies: nonlinearity, optimisation, a bad local minimum). For nonlinear models
the thresholds are the linear model's, an approximation that the paper's experiments support.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from torch import nn

from ..data import Dataset
from ..theory import collapse_thresholds, cvae_spectrum, mhvae_thresholds, vae_spectrum
from .report import DiagnosisReport

NEGLIGIBLE = 1e-6  # θ_i below this times θ_1: the data have no variance along that mode


def _fixed_sigma(mode: str, sigma) -> float | None:
    """A level's fixed encoder std (the mean over dimensions when they differ), else None."""
    return None if mode != "fixed" or sigma is None else float(np.mean(sigma))


def _finding(level: str, dims: list[int] | int, cause: str, why: str, fix: str | None) -> dict:
    return {"level": level, "dims": dims, "cause": cause, "explanation": why, "suggestion": fix}


def _vae_type_findings(level: str, collapsed: list[int], config, spectrum) -> list[dict]:
    d = config.latent_dim
    sigma = _fixed_sigma(config.encoder_variance, config.sigma)
    rows = collapse_thresholds(
        spectrum, d, beta=config.beta, eta_enc=config.eta_enc, eta_dec=config.eta_dec, sigma=sigma
    )
    theta = np.array([r["theta"] for r in rows])
    top = theta[0] if theta.size and theta[0] > 0 else 1.0
    unused = int(np.sum(theta <= NEGLIGIBLE * top))
    predicted_collapsed = sum(not r["active"] for r in rows)
    observed = len(collapsed)
    kept = d - observed
    findings = []
    remaining = observed
    if unused:
        n = min(unused, remaining)
        if n:
            findings.append(
                _finding(
                    level,
                    n,
                    "benign",
                    f"{n} dimension(s) have no data variance to encode: the data span only "
                    f"{d - unused} of the {d} latent directions.",
                    None,
                )
            )
            remaining -= n
    over = min(max(predicted_collapsed - unused, 0), remaining)
    if over:
        k = kept  # the mode that would be revived next is the (kept + 1)-th
        row = rows[min(k, d - 1)]
        beta_needed, eta_needed = row["beta"], row["eta_dec"]
        strength = f"β·η_dec² = {config.beta * config.eta_dec**2:.3g}"
        if sigma is not None:
            strength += f" (times σ²/η_enc² = {(sigma / config.eta_enc) ** 2:.3g})"
        fix = (
            f"β < {beta_needed:.3g} (at η_dec = {config.eta_dec:g}) or η_dec < {eta_needed:.3g} "
            f"(at β = {config.beta:g}) keeps one more dimension ({kept + 1} active)"
        )
        findings.append(
            _finding(
                level,
                over,
                "over-regularisation",
                f"{strength} exceeds θ_i² for {predicted_collapsed - unused} data mode(s); the "
                f"linear optimum keeps {d - predicted_collapsed} of {d} dimensions.",
                fix,
            )
        )
        remaining -= over
        if config.encoder_variance != "fixed" and row["theta"] > 0:
            sigma_needed = row["theta"] * config.eta_enc / (math.sqrt(config.beta) * config.eta_dec)
            findings.append(
                _finding(
                    level,
                    over,
                    "learnable encoder variance",
                    "with a learnable Σ a mode dies as soon as θ_i < √β·η_dec; a fixed "
                    "Σ = σ²I moves the threshold to √β·η_dec·σ/η_enc.",
                    f"fixing Σ = σ²I with σ < {sigma_needed:.3g} keeps {kept + 1} active",
                )
            )
    if remaining:
        findings.append(
            _finding(
                level,
                remaining,
                "beyond the linear prediction",
                f"{remaining} more dimension(s) collapsed than the linear optimum implies "
                "(nonlinear decoder, optimisation or a bad local minimum; Dai et al.).",
                "train longer or with KL warm-up; compare a linear model on the same data",
            )
        )
    return findings


def explain(report: DiagnosisReport, model: nn.Module, dataset: Dataset | None) -> dict:
    """The verdict for a report of ``model`` on ``dataset`` (its training split gives the data
    spectrum θ). The causes need the model's settings (``model.config`` of this toolkit's
    models: β's, η's, encoder variances); without them each collapsed level is reported with
    what the numbers alone say."""
    config = getattr(model, "config", None)
    levels = {
        name: {"collapsed": level.collapsed_dims, "latent_dim": level.latent_dim}
        for name, level in report.levels.items()
    }
    findings: list[dict] = []
    if config is None or dataset is None:
        findings += _unexplained_findings(report)
    elif hasattr(config, "level_dims"):  # a hierarchy
        findings += _mhvae_findings(report, config, dataset)
    else:
        train = dataset.train
        conditional = hasattr(config, "y_dim")
        spectrum = cvae_spectrum(train.x, train.y) if conditional else vae_spectrum(train.x)
        collapsed = levels["z"]["collapsed"]
        if collapsed:
            findings += _vae_type_findings("z", collapsed, config, spectrum)
    summary = "; ".join(
        f"{name}: {len(v['collapsed'])} of {v['latent_dim']} dimensions collapsed"
        for name, v in levels.items()
    )
    return {"summary": summary, "levels": levels, "findings": findings}


def _unexplained_findings(report: DiagnosisReport) -> list[dict]:
    """Without the model's settings: which dimensions sit at the prior, and what to try."""
    findings = []
    for name, level in report.levels.items():
        collapsed = level.collapsed_dims
        if not collapsed:
            continue
        stds = level.encoder_std.double().mean(0)[collapsed]
        findings.append(
            _finding(
                name,
                collapsed,
                "collapsed to the prior",
                f"KL below ε = {report.epsilon:g} for at least {1 - report.delta:.0%} of the data "
                f"(mean σ there {float(stds.mean()):.3g}): q(z|x) does not depend on x in these "
                "dimensions. Which cause (β·η_dec² too large, a learnable variance, the decoder "
                "ignoring z) needs the model's settings: train it with vaecollapse, or compare "
                "`vaecollapse theory` for a linear model on the same data.",
                "lower β or the decoder's noise η_dec, or try KL warm-up",
            )
        )
    return findings


def _mhvae_findings(report: DiagnosisReport, config, dataset: Dataset) -> list[dict]:
    names = config.level_names()
    findings = []
    for lower, upper in itertools.pairwise(names):
        lower_report = report.levels[lower]
        if len(lower_report.collapsed_dims) == lower_report.latent_dim:
            findings.append(
                _finding(
                    upper,
                    report.levels[upper].collapsed_dims,
                    "silenced by a collapsed level",
                    f"every dimension of {lower} collapsed, so {upper} receives nothing to encode.",
                    f"revive {lower} first (smaller β, η_dec)",
                )
            )
    if config.levels != 2:
        return findings
    (mode1, mode2), (std1, std2) = config.level_variances(), config.level_sigmas()
    sigma1 = _fixed_sigma(mode1, std1)
    collapsed2 = report.levels["z2"].collapsed_dims
    if sigma1 is None or not collapsed2 or findings:
        return findings
    (d1, d2), (beta1, beta2) = config.level_dims(), config.level_betas()
    rows = mhvae_thresholds(
        vae_spectrum(dataset.train.x),
        d1,
        d2,
        beta1=beta1,
        beta2=beta2,
        eta_enc=config.eta_enc,
        eta_dec=config.eta_dec,
        sigma1=sigma1,
        sigma2=_fixed_sigma(mode2, std2),
    )
    predicted = sum(not r["active"] for r in rows)
    kept = d2 - len(collapsed2)
    if predicted:
        row = rows[min(kept, d2 - 1)]
        findings.append(
            _finding(
                "z2",
                min(predicted, len(collapsed2)),
                "over-regularisation",
                f"β2·η_dec² = {beta2 * config.eta_dec**2:.3g} exceeds "
                "max(θ_i·√β1·σ1, β1·σ1²) for "
                f"{predicted} mode(s) (Theorems 3/5); larger β2 or η_dec collapses z2, "
                "larger β1 or σ1 revives it.",
                f"β2 < {row['beta2']:.3g} or β1 > {row['beta1']:.3g} or "
                f"η_dec < {row['eta_dec']:.3g} keeps {kept + 1} active",
            )
        )
    if len(collapsed2) > predicted:
        findings.append(
            _finding(
                "z2",
                len(collapsed2) - predicted,
                "beyond the linear prediction",
                "more z2 dimensions collapsed than the linear optimum implies.",
                None,
            )
        )
    return findings
