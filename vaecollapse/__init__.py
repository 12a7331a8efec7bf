"""vaecollapse: predict, detect, explain and fix posterior collapse in VAEs, CVAEs and
hierarchical VAEs — this toolkit's models and anyone's.

The public API: :func:`diagnose` (any VAE on any data), :func:`diagnose_codebook` (a discrete
latent's codebook use), :class:`CollapseMonitor` and :class:`CodebookMonitor` (live monitors for
any training loop), :func:`as_latent_model` (a user's model under the latent-model protocol),
:func:`predict` (the linear theory's collapse prediction), :func:`train` with :class:`TrainConfig`
and the model configurations :class:`VAEConfig`, :class:`CVAEConfig` and :class:`MHVAEConfig`,
the remedies for a hand-written loop (:class:`KLSchedule`, :func:`free_bits`,
:func:`aggressive_steps`), :func:`load_dataset`, and the errors.

The package is layered, each layer importing only from those below it: ``core`` (data, models,
objectives, the latent-model protocol, theory, diagnostics with the adapters and the monitor),
``training`` (the one loop over one run or stacked runs, optimizers, diagnosing run
directories), ``studies`` (sweeps, phase diagrams, the remedy bench, Ray, the demo) and
``integrations`` (Lightning), ``reproductions`` (the papers' experiments) and ``cli`` (the
command line, which nothing imports).
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from vaecollapse.core.data import Dataset, DataSpec, Split, load_dataset
from vaecollapse.core.errors import (
    CorruptDataError,
    DataNotFoundError,
    InputError,
    MisreadingWarning,
)

try:
    __version__ = version("vaecollapse")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

# Loaded on first use, so that `import vaecollapse` (and every CLI start) stays light.
_LAZY = {
    "diagnose": "vaecollapse.core.diagnostics",
    "diagnose_codebook": "vaecollapse.core.codebook",
    "CodebookMonitor": "vaecollapse.core.codebook",
    "CollapseMonitor": "vaecollapse.core.monitor",
    "as_latent_model": "vaecollapse.core.adapters",
    "predict": "vaecollapse.core.theory",
    "VAEConfig": "vaecollapse.core.models",
    "CVAEConfig": "vaecollapse.core.models",
    "MHVAEConfig": "vaecollapse.core.models",
    "KLSchedule": "vaecollapse.core.remedies",
    "free_bits": "vaecollapse.core.remedies",
    "aggressive_steps": "vaecollapse.core.remedies",
    "train": "vaecollapse.training.trainer",
    "TrainConfig": "vaecollapse.training.config",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vaecollapse' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "CVAEConfig",
    "CodebookMonitor",
    "CollapseMonitor",
    "CorruptDataError",
    "DataNotFoundError",
    "DataSpec",
    "Dataset",
    "InputError",
    "KLSchedule",
    "MHVAEConfig",
    "MisreadingWarning",
    "Split",
    "TrainConfig",
    "VAEConfig",
    "__version__",
    "aggressive_steps",
    "as_latent_model",
    "diagnose",
    "diagnose_codebook",
    "free_bits",
    "load_dataset",
    "predict",
    "train",
]
