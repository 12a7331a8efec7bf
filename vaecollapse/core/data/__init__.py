"""Data sets as device tensors: official releases, embedded digits, user files, synthetic data."""

from vaecollapse.core.data.batching import minibatch_indices, minibatches
from vaecollapse.core.data.catalogue import DATASET_NAMES, DataSpec, load_dataset
from vaecollapse.core.data.dataset import Dataset, Provenance, Split
from vaecollapse.core.data.sources import RELEASES, cache_root, locate
from vaecollapse.core.data.synthetic import (
    TABLE4_CORRELATIONS,
    correlated_pairs,
    dai_two_points,
    gaussian_with_spectrum,
    synthetic_dataset,
)
from vaecollapse.core.data.userfiles import load_user_file, validate_matrix
from vaecollapse.core.data.views import (
    centered_view,
    digit_subset,
    logit_view,
    principal_axes_view,
    quadrant_mask,
    quadrant_view,
    second_moment_rows,
)

__all__ = [
    "DATASET_NAMES",
    "RELEASES",
    "TABLE4_CORRELATIONS",
    "DataSpec",
    "Dataset",
    "Provenance",
    "Split",
    "cache_root",
    "centered_view",
    "correlated_pairs",
    "dai_two_points",
    "digit_subset",
    "gaussian_with_spectrum",
    "load_dataset",
    "load_user_file",
    "locate",
    "logit_view",
    "minibatch_indices",
    "minibatches",
    "principal_axes_view",
    "quadrant_mask",
    "quadrant_view",
    "second_moment_rows",
    "synthetic_dataset",
    "validate_matrix",
]
