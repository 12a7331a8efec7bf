"""Data sets as device tensors: official releases, embedded digits, user files, synthetic data."""

from .batching import minibatch_indices, minibatches
from .catalogue import DATASET_NAMES, DataSpec, load_dataset
from .dataset import Dataset, Provenance, Split
from .sources import RELEASES, cache_root, locate
from .synthetic import (
    TABLE4_CORRELATIONS,
    correlated_pairs,
    dai_two_points,
    gaussian_with_spectrum,
    synthetic_dataset,
)
from .userfiles import load_user_file, validate_matrix
from .views import (
    centered_view,
    digit_subset,
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
    "minibatch_indices",
    "minibatches",
    "quadrant_mask",
    "quadrant_view",
    "second_moment_rows",
    "synthetic_dataset",
    "validate_matrix",
]
