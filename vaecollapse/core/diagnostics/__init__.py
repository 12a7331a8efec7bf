"""Collapse diagnostics: per-dimension KL, (ε,δ)-collapse, active units, IWAE, theory vs learned,
plots and a verdict. Pure functions of tensors where possible."""

from vaecollapse.core.diagnostics.entry import diagnose
from vaecollapse.core.diagnostics.iwae import (
    LikelihoodEstimate,
    importance_log_likelihood,
    model_log_weights,
)
from vaecollapse.core.diagnostics.linear import learned_spectra, theory_comparison
from vaecollapse.core.diagnostics.loss_scale import LossScale, loss_scale
from vaecollapse.core.diagnostics.metrics import (
    RunningMoments,
    active_units,
    collapse_curve,
    collapsed_dimensions,
    default_epsilons,
    kl_active_fraction,
    mutual_information,
    sorted_mean_abs_difference,
)
from vaecollapse.core.diagnostics.probes import (
    AmortisationGap,
    DecoderUsage,
    amortisation_gap,
    decoder_usage,
)
from vaecollapse.core.diagnostics.report import (
    DiagnosisReport,
    LevelReport,
    diagnose_model,
    level_statistics,
)
from vaecollapse.core.diagnostics.verdict import explain

__all__ = [
    "AmortisationGap",
    "DecoderUsage",
    "DiagnosisReport",
    "LevelReport",
    "LikelihoodEstimate",
    "LossScale",
    "RunningMoments",
    "active_units",
    "amortisation_gap",
    "collapse_curve",
    "collapsed_dimensions",
    "decoder_usage",
    "default_epsilons",
    "diagnose",
    "diagnose_model",
    "explain",
    "importance_log_likelihood",
    "kl_active_fraction",
    "learned_spectra",
    "level_statistics",
    "loss_scale",
    "model_log_weights",
    "mutual_information",
    "sorted_mean_abs_difference",
    "theory_comparison",
]
