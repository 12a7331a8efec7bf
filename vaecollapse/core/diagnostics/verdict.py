"""The verdict: which dimensions and levels collapsed, the likely cause, and the change that would
keep more dimensions active.

Every finding carries a stable ``code`` (``CAUSES``; docs/diagnosis.md says what each means and
which fix it maps to) beside its prose. Causes are named from measurements: the model's settings
(this toolkit's models) or the ones a user states (``beta=``, ``eta_dec=``) with the data's
spectrum θ give the linear threshold β·η_dec² > θ_i² (Dang et al.); the probes (``probes``) say
whether the decoder reads the code, whether per-row posteriors would revive a dimension (a
lagging encoder) and what KL weight a user's loss function applies. For nonlinear models the
thresholds are the linear model's, an approximation that the paper's experiments support.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from vaecollapse.core.diagnostics.report import DiagnosisReport, LevelReport
from vaecollapse.core.theory import (
    collapse_thresholds,
    cvae_spectrum,
    mhvae_thresholds,
    vae_spectrum,
)
from vaecollapse.core.theory.spectra import Spectrum

NEGLIGIBLE = 1e-6  # θ_i below this times θ_1: the data have no variance along that mode
CARRIED_SHARE = 0.9  # the headline counts the dimensions that carry this share of the KL
SCALE_TOLERANCE = 3.0  # a KL weight this many times off the intended one is a wiring error
KL_ABSENT = 1e-3  # a measured KL weight below this share of the intended one: the KL is missing

CAUSES = {
    "over-regularised": (
        "the KL weight outweighs what the dimension gives the decoder: β·η_dec² exceeds θ_i² "
        "(the linear threshold), or per-row posteriors stay at the prior",
        "lower the KL weight β (or the decoder's noise η_dec), or keep a floor of KL per "
        "dimension: vaecollapse.free_bits",
    ),
    "decoder-ignores-latent": (
        "the encoder sends information the decoder does not read (redrawing those dimensions "
        "from the prior leaves log p(x | z) unchanged): an over-powerful or autoregressive "
        "decoder",
        "weaken the decoder (fewer layers, word dropout, a shorter context) or force the KL up: "
        "vaecollapse.free_bits, vaecollapse.KLSchedule",
    ),
    "lagging-encoder": (
        "per-row posteriors, optimised from the encoder's output, revive dimensions the encoder "
        "leaves at the prior: the encoder lags the decoder (He et al. 2019)",
        "aggressive encoder steps early in training: vaecollapse.aggressive_steps "
        "(or a KL warm-up: vaecollapse.KLSchedule)",
    ),
    "learnable-variance": (
        "with a learnable Σ a mode dies as soon as θ_i < √β·η_dec; a fixed Σ = σ²I moves the "
        "threshold",
        "fix the encoder variance at the σ given",
    ),
    "loss-scale": (
        "the loss function's KL weight, measured from its gradients, is not the intended β: a "
        "reconstruction averaged where the ELBO sums, or a KL that never reaches the gradient",
        "sum the reconstruction over the values of a row (reduction='sum'), or rescale β",
    ),
    "benign": (
        "the data have no variance left for the dimension: unused capacity, not a failure",
        "none needed (a smaller latent does the same)",
    ),
    "silenced-level": (
        "a hierarchy's level above a fully collapsed level receives nothing to encode",
        "revive the lower level first",
    ),
    "beyond-linear": (
        "more dimensions collapsed than the linear optimum implies, and per-row posteriors do "
        "not revive them: nonlinearity, optimisation or a bad local minimum (Dai et al.)",
        "train longer or with a KL warm-up (vaecollapse.KLSchedule); compare a linear model on the "
        "same data",
    ),
    "undetermined": (
        "collapsed, but nothing was measured that names a cause",
        "give decoder= (for the probes) and beta= (for the linear threshold)",
    ),
}


@dataclass(frozen=True)
class Objective:
    """What the linear threshold needs of a model's objective: β, the prior and decoder stds,
    a fixed encoder std (None: learnable), and where β and η_dec were read (for the prose)."""

    beta: float
    eta_enc: float
    eta_dec: float
    sigma: float | None = None
    source: str = "the model's settings"


def finding(level: str, dims: list[int] | int, code: str, why: str, fix: str | None) -> dict:
    """One finding: ``code`` (one of CAUSES), its prose name ``cause``, the measured reason and
    the fix."""
    if code not in CAUSES:
        raise ValueError(f"unknown cause code {code!r}")
    return {"level": level, "dims": dims, "code": code, "cause": code.replace("-", " "),
            "explanation": why, "suggestion": fix}  # fmt: skip


def _fixed_sigma(mode: str, sigma) -> float | None:
    """A level's fixed encoder std (the mean over dimensions when they differ), else None."""
    return None if mode != "fixed" or sigma is None else float(np.mean(sigma))


def collapsed_as_a_whole(level: LevelReport) -> bool:
    """A level whose mean KL per dimension is below ε: it sits as close to the prior as one
    collapsed dimension does, whatever the per-dimension count says (0.15 nats over 16
    dimensions, each above ε for a few rows, is one dead code, not 14 live dimensions)."""
    return level.kl_total < level.epsilon * level.latent_dim


def effectively_collapsed(level: LevelReport) -> list[int]:
    return list(range(level.latent_dim)) if collapsed_as_a_whole(level) else level.collapsed_dims


def carrying_dims(level: LevelReport, share: float = CARRIED_SHARE) -> int:
    """How many dimensions carry ``share`` of the level's KL."""
    kl = np.sort(level.kl_per_dim)[::-1]
    if kl.sum() <= 0:
        return 0
    return int(np.searchsorted(np.cumsum(kl) / kl.sum(), share - 1e-12) + 1)


def counts_note(level: LevelReport) -> str | None:
    """One sentence where the (ε,δ) count and Burda's AU disagree, saying why."""
    kl_active = level.latent_dim - len(level.collapsed_dims)
    au = level.active_units
    if au < kl_active:
        return (
            f"{kl_active - au} dimension(s) have KL ≥ ε yet a mean that hardly moves with x "
            f"(Var E[z|x] ≤ 0.01, so Burda's AU counts {au}): q departs from the prior alike "
            "for every row, which costs KL but carries little information"
        )
    if au > kl_active:
        return (
            f"{au - kl_active} dimension(s) move their mean with x (AU counts {au}) while their "
            "KL stays below ε for most rows: the means vary, but little against the prior's "
            "spread"
        )
    return None


def _threshold_findings(
    level: str, collapsed: list[int], d: int, objective: Objective, spectrum: Spectrum, gap
) -> list[dict]:
    """Benign, over-regularised, learnable-variance, then lagging-encoder or beyond-linear for
    what the linear optimum does not explain."""
    o = objective
    rows = collapse_thresholds(
        spectrum, d, beta=o.beta, eta_enc=o.eta_enc, eta_dec=o.eta_dec, sigma=o.sigma
    )
    theta = np.array([r["theta"] for r in rows])
    top = theta[0] if theta.size and theta[0] > 0 else 1.0
    unused = int(np.sum(theta <= NEGLIGIBLE * top))
    predicted_collapsed = sum(not r["active"] for r in rows)
    kept = d - len(collapsed)
    findings = []
    remaining = len(collapsed)
    n = min(unused, remaining)
    if n:
        findings.append(finding(
            level, n, "benign",
            f"{n} dimension(s) have no data variance to encode: the data span only "
            f"{d - unused} of the {d} latent directions.",
            None,
        ))  # fmt: skip
        remaining -= n
    over = min(max(predicted_collapsed - unused, 0), remaining)
    if over:
        row = rows[min(kept, d - 1)]  # the mode that would be revived next
        strength = f"β·η_dec² = {o.beta * o.eta_dec**2:.3g}"
        if o.sigma is not None:
            strength += f" (times σ²/η_enc² = {(o.sigma / o.eta_enc) ** 2:.3g})"
        fix = (
            f"β < {row['beta']:.3g} (at η_dec = {o.eta_dec:.3g}) or η_dec < {row['eta_dec']:.3g} "
            f"(at β = {o.beta:.3g}) keeps one more dimension ({kept + 1} active)"
        )
        findings.append(finding(
            level, over, "over-regularised",
            f"{strength} ({o.source}) exceeds θ_i² for {predicted_collapsed - unused} data "
            f"mode(s); the linear optimum keeps {d - predicted_collapsed} of {d} dimensions.",
            fix,
        ))  # fmt: skip
        remaining -= over
        if o.sigma is None and row["theta"] > 0:
            sigma_needed = row["theta"] * o.eta_enc / (math.sqrt(o.beta) * o.eta_dec)
            findings.append(finding(
                level, over, "learnable-variance",
                "with a learnable Σ a mode dies as soon as θ_i < √β·η_dec; a fixed Σ = σ²I moves "
                "the threshold to √β·η_dec·σ/η_enc.",
                f"fixing Σ = σ²I with σ < {sigma_needed:.3g} keeps {kept + 1} active",
            ))  # fmt: skip
    if remaining:
        # the linear optimum explains a count, not which dimensions: those that per-row
        # posteriors revive are the ones it does not explain
        revived = set() if gap is None else set(gap.revived)
        ordered = sorted(collapsed, key=lambda i: i not in revived)
        findings += _unexplained(level, sorted(ordered[:remaining]), gap, linear=True)
    return findings


def _unexplained(
    level: str, dims: list[int], gap, *, linear: bool, missing: str = ""
) -> list[dict]:
    """Collapsed dimensions the linear threshold does not explain (``linear``) or that it was
    not asked about (``missing``: what it would need): lagging-encoder where per-row posteriors
    revive them, otherwise beyond-linear (``linear``) or over-regularised (the objective prefers
    the prior)."""
    findings = []
    revived = [] if gap is None else [i for i in dims if i in gap.revived]
    if revived:
        before, after = (float(kl[revived].sum()) for kl in (gap.kl_before, gap.kl_after))
        findings.append(finding(
            level, revived, "lagging-encoder",
            f"optimising each row's q(z|x) for {gap.steps} steps from the encoder's output brings "
            f"{len(revived)} of these dimension(s) back (KL {before:.3g} → {after:.3g} nats) and "
            f"gains {gap.gain:.3g} ± "
            f"{gap.gain_error:.2g} nats per row: the decoder would use them, the encoder lags.",
            CAUSES["lagging-encoder"][1],
        ))  # fmt: skip
    rest = [i for i in dims if i not in revived]
    if not rest:
        return findings
    if linear:
        findings.append(finding(
            level, rest, "beyond-linear",
            f"{len(rest)} more dimension(s) collapsed than the linear optimum implies"
            + ("" if gap is None else ", and per-row posteriors leave them at the prior")
            + " (a nonlinear decoder, the optimisation or a bad local minimum; Dai et al.).",
            CAUSES["beyond-linear"][1],
        ))  # fmt: skip
    elif gap is not None:
        findings.append(finding(
            level, rest, "over-regularised",
            f"optimising each row's q(z|x) for {gap.steps} steps leaves these dimensions at the "
            "prior: the objective itself prefers collapse, the KL weight outweighing what they "
            f"would give the decoder.{missing and ' ' + missing}",
            CAUSES["over-regularised"][1],
        ))  # fmt: skip
    else:
        findings.append(finding(
            level, rest, "undetermined",
            "KL below ε for most rows: q(z|x) does not depend on x here; nothing measured names "
            "the cause.",
            CAUSES["undetermined"][1],
        ))  # fmt: skip
    return findings


def _scale_findings(level: str, collapsed: list[int], scale, intended: float, widths) -> list[dict]:
    """loss-scale when the loss function's KL weight is missing or far from ``intended``."""
    if scale.kl_weight < KL_ABSENT * intended:
        return [finding(
            level, collapsed, "loss-scale",
            f"loss_fn's gradient holds no KL term (measured weight {scale.kl_weight:.2g}): the KL "
            "is detached, multiplied by zero or never added, so nothing holds q(z|x) to the "
            "prior and the KL numbers here do not describe what was trained.",
            "add the KL to the loss (not detached) with its weight β",
        )]  # fmt: skip
    ratio = scale.kl_weight / intended
    if abs(math.log(ratio)) <= math.log(SCALE_TOLERANCE):
        return []
    return [finding(
        level, collapsed, "loss-scale",
        f"loss_fn weights the KL by β_eff = {scale.kl_weight:.4g} in the summed-ELBO convention, "
        f"{ratio:.4g}× the intended β = {intended:g}"
        + _likely_reduction(ratio, widths) + ".",
        CAUSES["loss-scale"][1],
    )]  # fmt: skip


def _likely_reduction(ratio: float, widths: dict[str, int]) -> str:
    """The reduction mismatch a ratio of KL weights most likely comes from, as a clause."""
    data, latent, rows = widths["data"], widths["latent"], widths["rows"]
    candidates = [
        (data, f"the reconstruction averaged over the {data} values of a row where the ELBO sums"),
        (data / 2, f"a mean squared error over the {data} values of a row (the ELBO sums "
                   "squared errors over 2η_dec²)"),
        (1 / latent, f"the KL averaged over the {latent} latent dimensions where the ELBO sums"),
        (rows, "the reconstruction averaged over the batch and the KL summed over it"),
        (1 / rows, "the KL averaged over the batch and the reconstruction summed over it"),
    ]  # fmt: skip
    for value, reason in candidates:
        if value > 0 and abs(math.log(ratio / value)) < 0.05:
            return f": {reason}"
    return ""


def user_findings(
    report: DiagnosisReport,
    probes: dict,
    *,
    objective: Objective | None,
    spectrum: Spectrum | None,
    intended_beta: float,
    widths: dict[str, int],
    missing: str = "",
) -> list[dict]:
    """Findings for a one-level model known only by its outputs: ``probes`` (``decoder_usage``,
    ``amortisation_gap``, ``loss_scale``, each or None), the linear ``objective`` where β (and
    for a Gaussian decoder η_dec) are known, the data's ``spectrum`` where it could be formed;
    ``missing``: a sentence on what the linear threshold would need, where it could not run."""
    name, level = next(iter(report.levels.items()))
    collapsed = effectively_collapsed(level)
    findings = []
    scale, usage, gap = (
        probes.get("loss_scale"),
        probes.get("decoder_usage"),
        probes.get("amortisation_gap"),
    )
    if scale is not None:
        findings += _scale_findings(name, collapsed, scale, intended_beta, widths)
    if usage is not None:
        sent = [i for i in range(level.latent_dim) if i not in collapsed]
        ablation = usage.ablation_of_values()
        # a dimension whose mean KL is below ε sends too little to call it unread
        unread = [
            i for i in sent
            if ablation[i] <= report.epsilon and level.kl_per_dim[i] >= report.epsilon
        ]  # fmt: skip
        if unread:
            kl = float(level.kl_per_dim[unread].sum())
            findings.append(finding(
                name, unread, "decoder-ignores-latent",
                f"the encoder puts {kl:.3g} nats of KL into {len(unread)} dimension(s) that the "
                f"decoder does not read: redrawing each {'' if usage.per_value else 'channel '}"
                f"from the prior changes log p(x|z) by at most "
                f"{float(np.max(ablation[unread])):.2g} nats (whole code: "
                f"{usage.information_used:.3g} ± {usage.used_error:.2g} nats per row against "
                "another row's).",
                CAUSES["decoder-ignores-latent"][1],
            ))  # fmt: skip
    if not collapsed:
        return findings
    if objective is not None and spectrum is not None:
        findings += _threshold_findings(name, collapsed, level.latent_dim, objective, spectrum,
                                        gap)  # fmt: skip
    else:
        benign = _benign_dims(collapsed, level.latent_dim, spectrum)
        if benign:
            findings.append(finding(
                name, len(benign), "benign",
                f"{len(benign)} dimension(s) have no data variance to encode: the data span only "
                f"{level.latent_dim - len(benign)} of the {level.latent_dim} latent directions.",
                None,
            ))  # fmt: skip
        rest = collapsed[len(benign) :]
        findings += _unexplained(name, rest, gap, linear=False, missing=missing)
    return findings


def _benign_dims(collapsed: list[int], d: int, spectrum: Spectrum | None) -> list[int]:
    if spectrum is None or spectrum.values.size == 0:
        return []
    theta = np.zeros(d)
    top = min(d, spectrum.values.size)
    theta[:top] = spectrum.values[:top]
    unused = int(np.sum(theta <= NEGLIGIBLE * max(float(theta[0]), 1e-300)))
    return collapsed[: min(unused, len(collapsed))]


def explain(
    report: DiagnosisReport,
    model,
    dataset=None,
    *,
    data=None,
    targets=None,
    probes: dict | None = None,
) -> dict:
    """The verdict for a report of one of this toolkit's models (``model.config``: β's, η's,
    encoder variances) on ``dataset`` (its training split gives the data spectrum θ) or on the
    rows ``data`` (and a conditional model's ``targets``); ``probes`` refine what the linear
    threshold leaves unexplained."""
    config = model.config
    x, y = (dataset.train.x, dataset.train.y) if dataset is not None else (data, targets)
    findings: list[dict] = []
    if hasattr(config, "level_dims"):  # a hierarchy
        findings += _mhvae_findings(report, config, x)
    elif x is not None:
        conditional = hasattr(config, "y_dim")
        if not conditional or y is not None:
            spectrum = cvae_spectrum(x, y) if conditional else vae_spectrum(x)
            collapsed = effectively_collapsed(report.levels["z"])
            if collapsed:
                sigma = _fixed_sigma(config.encoder_variance, config.sigma)
                objective = Objective(config.beta, config.eta_enc, config.eta_dec, sigma)
                gap = (probes or {}).get("amortisation_gap")
                findings += _threshold_findings("z", collapsed, config.latent_dim, objective,
                                                spectrum, gap)  # fmt: skip
    return verdict(report, findings)


def verdict(report: DiagnosisReport, findings: list[dict]) -> dict:
    """The verdict dict: a one-line ``summary``, per level its collapsed dimensions and whether
    it collapsed as a whole, and the ``findings``."""
    levels = {
        name: {
            "collapsed": level.collapsed_dims,
            "latent_dim": level.latent_dim,
            "collapsed_as_a_whole": collapsed_as_a_whole(level),
            "carrying_dims": carrying_dims(level),
            "counts_note": counts_note(level),
        }
        for name, level in report.levels.items()
    }
    summary = "; ".join(
        f"{name}: collapsed as a whole ({report.levels[name].kl_total:.3g} nats over "
        f"{v['latent_dim']} dimensions)"
        if v["collapsed_as_a_whole"]
        else f"{name}: {len(v['collapsed'])} of {v['latent_dim']} dimensions collapsed"
        for name, v in levels.items()
    )
    return {"summary": summary, "levels": levels, "findings": findings}


def _mhvae_findings(report: DiagnosisReport, config, x) -> list[dict]:
    names = config.level_names()
    findings = []
    for lower, upper in itertools.pairwise(names):
        if (
            collapsed_as_a_whole(report.levels[lower])
            or len(report.levels[lower].collapsed_dims) == report.levels[lower].latent_dim
        ):
            findings.append(finding(
                upper, effectively_collapsed(report.levels[upper]), "silenced-level",
                f"every dimension of {lower} collapsed, so {upper} receives nothing to encode.",
                f"revive {lower} first (smaller β, η_dec)",
            ))  # fmt: skip
    if config.levels != 2 or x is None:
        return findings
    (mode1, mode2), (std1, std2) = config.level_variances(), config.level_sigmas()
    sigma1 = _fixed_sigma(mode1, std1)
    collapsed2 = effectively_collapsed(report.levels["z2"])
    if sigma1 is None or not collapsed2 or findings:
        return findings
    (d1, d2), (beta1, beta2) = config.level_dims(), config.level_betas()
    rows = mhvae_thresholds(
        vae_spectrum(x), d1, d2, beta1=beta1, beta2=beta2, eta_enc=config.eta_enc,
        eta_dec=config.eta_dec, sigma1=sigma1, sigma2=_fixed_sigma(mode2, std2),
    )  # fmt: skip
    predicted = sum(not r["active"] for r in rows)
    kept = d2 - len(collapsed2)
    if predicted:
        row = rows[min(kept, d2 - 1)]
        findings.append(finding(
            "z2", min(predicted, len(collapsed2)), "over-regularised",
            f"β2·η_dec² = {beta2 * config.eta_dec**2:.3g} exceeds max(θ_i·√β1·σ1, β1·σ1²) for "
            f"{predicted} mode(s) (Theorems 3/5); larger β2 or η_dec collapses z2, larger β1 or "
            "σ1 revives it.",
            f"β2 < {row['beta2']:.3g} or β1 > {row['beta1']:.3g} or η_dec < {row['eta_dec']:.3g} "
            f"keeps {kept + 1} active",
        ))  # fmt: skip
    if len(collapsed2) > predicted:
        findings.append(finding(
            "z2", len(collapsed2) - predicted, "beyond-linear",
            "more z2 dimensions collapsed than the linear optimum implies.",
            None,
        ))  # fmt: skip
    return findings
