"""vaecollapse: predict, detect and explain posterior collapse in VAEs, CVAEs and hierarchical
VAEs."""

from importlib.metadata import PackageNotFoundError, version

from .data import Dataset, DataSpec, Split, load_dataset
from .errors import CorruptDataError, DataNotFoundError, InputError

try:
    __version__ = version("vaecollapse")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"


def __getattr__(name: str):
    # Loaded on first use, so that `import vaecollapse` (and every CLI start) stays light.
    if name == "diagnose":
        from .diagnostics import diagnose

        return diagnose
    if name == "CollapseMonitor":
        from .monitor import CollapseMonitor

        return CollapseMonitor
    raise AttributeError(f"module 'vaecollapse' has no attribute {name!r}")


__all__ = [
    "CollapseMonitor",
    "CorruptDataError",
    "DataNotFoundError",
    "DataSpec",
    "Dataset",
    "InputError",
    "Split",
    "__version__",
    "diagnose",
    "load_dataset",
]
