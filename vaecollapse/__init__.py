"""vaecollapse: predict, detect, explain and fix posterior collapse in VAEs, CVAEs and
hierarchical VAEs — this toolkit's models and anyone's.

The public API: :func:`diagnose` (any VAE on any data), :class:`CollapseMonitor` (a live monitor
for any training loop), :func:`as_latent_model` (a user's model under the latent-model
protocol), :func:`predict` (the linear theory's collapse prediction), :func:`train` with
:class:`TrainConfig` and the model configurations :class:`VAEConfig`, :class:`CVAEConfig` and
:class:`MHVAEConfig`, :func:`load_dataset`, and the errors.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from .data import Dataset, DataSpec, Split, load_dataset
from .errors import CorruptDataError, DataNotFoundError, InputError, MisreadingWarning

try:
    __version__ = version("vaecollapse")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

# Loaded on first use, so that `import vaecollapse` (and every CLI start) stays light.
_LAZY = {
    "diagnose": ".diagnostics",
    "CollapseMonitor": ".monitor",
    "as_latent_model": ".adapters",
    "predict": ".theory",
    "train": ".train",
    "TrainConfig": ".train",
    "VAEConfig": ".models",
    "CVAEConfig": ".models",
    "MHVAEConfig": ".models",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'vaecollapse' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "CVAEConfig",
    "CollapseMonitor",
    "CorruptDataError",
    "DataNotFoundError",
    "DataSpec",
    "Dataset",
    "InputError",
    "MHVAEConfig",
    "MisreadingWarning",
    "Split",
    "TrainConfig",
    "VAEConfig",
    "__version__",
    "as_latent_model",
    "diagnose",
    "load_dataset",
    "predict",
    "train",
]
