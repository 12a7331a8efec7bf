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
from .linear import fixed_sigma
from .report import DiagnosisReport

NEGLIGIBLE = 1e-6  # θ_i below this times θ_1: the data have no variance along that mode


def _fixed_sigma(head) -> float | None:
    """The fixed encoder std of a head (the mean over dimensions when they differ), else None."""
    sigma = fixed_sigma(head)
    return None if sigma is None else float(np.mean(sigma))


def _finding(level: str, dims: list[int] | int, cause: str, why: str, fix: str | None) -> dict:
    return {"level": level, "dims": dims, "cause": cause, "explanation": why, "suggestion": fix}


def _vae_type_findings(level: str, collapsed: list[int], config, head, spectrum) -> list[dict]:
    d = config.latent_dim
    sigma = _fixed_sigma(head)
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
        if head.variance != "fixed" and row["theta"] > 0:
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


def explain(report: DiagnosisReport, model: nn.Module, dataset: Dataset) -> dict:
    """The verdict for a report of ``model`` (a VAE, CVAE or MHVAE of this toolkit) on ``dataset``
    (its training split gives the data spectrum θ)."""
    from ..models import CVAE, MHVAE

    config = model.config
    levels = {
        name: {"collapsed": level.collapsed_dims, "latent_dim": level.latent_dim}
        for name, level in report.levels.items()
    }
    findings: list[dict] = []
    if isinstance(model, MHVAE):
        findings += _mhvae_findings(report, model, dataset)
    else:
        spectrum = (
            cvae_spectrum(dataset.train.x, dataset.train.y)
            if isinstance(model, CVAE)
            else vae_spectrum(dataset.train.x)
        )
        collapsed = levels["z"]["collapsed"]
        if collapsed:
            findings += _vae_type_findings("z", collapsed, config, model.head, spectrum)
    summary = "; ".join(
        f"{name}: {len(v['collapsed'])} of {v['latent_dim']} dimensions collapsed"
        for name, v in levels.items()
    )
    return {"summary": summary, "levels": levels, "findings": findings}


def _mhvae_findings(report: DiagnosisReport, model, dataset: Dataset) -> list[dict]:
    config = model.config
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
    head1, head2 = (e.head for e in model.encoders)
    sigma1 = _fixed_sigma(head1)
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
        sigma2=_fixed_sigma(head2),
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
