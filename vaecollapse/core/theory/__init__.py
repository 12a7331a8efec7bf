"""Linear theory of posterior collapse: spectra, closed-form optima, an exact numeric solver and
collapse thresholds (NumPy/SciPy, float64)."""

from vaecollapse.core.theory.api import Prediction, predict, predict_for_config
from vaecollapse.core.theory.closed_form import (
    cvae_closed_form,
    mhvae_closed_form,
    ppca_closed_form,
    vae_closed_form,
)
from vaecollapse.core.theory.numeric import SolverOptions, solve_cvae, solve_hierarchical
from vaecollapse.core.theory.report import Optimum
from vaecollapse.core.theory.spectra import (
    Spectrum,
    cvae_spectrum,
    cvae_spectrum_from_moments,
    moments,
    residual_moment,
    vae_spectrum,
    vae_spectrum_from_moment,
)
from vaecollapse.core.theory.thresholds import (
    collapse_thresholds,
    largest_beta_keeping,
    largest_eta_dec_keeping,
    mhvae_thresholds,
    phase_table,
)

__all__ = [
    "Optimum",
    "Prediction",
    "SolverOptions",
    "Spectrum",
    "collapse_thresholds",
    "cvae_closed_form",
    "cvae_spectrum",
    "cvae_spectrum_from_moments",
    "largest_beta_keeping",
    "largest_eta_dec_keeping",
    "mhvae_closed_form",
    "mhvae_thresholds",
    "moments",
    "phase_table",
    "ppca_closed_form",
    "predict",
    "predict_for_config",
    "residual_moment",
    "solve_cvae",
    "solve_hierarchical",
    "vae_closed_form",
    "vae_spectrum",
    "vae_spectrum_from_moment",
]
