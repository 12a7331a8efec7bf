"""vaecollapse: predict, detect and explain posterior collapse in VAEs, CVAEs and hierarchical
VAEs."""

from importlib.metadata import PackageNotFoundError, version

from .data import Dataset, DataSpec, Split, load_dataset
from .errors import CorruptDataError, DataNotFoundError, InputError

try:
    __version__ = version("vaecollapse")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "CorruptDataError",
    "DataNotFoundError",
    "DataSpec",
    "Dataset",
    "InputError",
    "Split",
    "__version__",
    "load_dataset",
]
