"""User data from ``.npy`` (an N x D array) or ``.npz`` (arrays ``x``, optional ``y``, ``labels``
and their ``*_test`` counterparts) files, validated before anything uses them."""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vaecollapse.core.data.dataset import Dataset, Provenance, Split
from vaecollapse.core.errors import InputError
from vaecollapse.core.limits import check_fits, readable_size

NPZ_KEYS = ("x", "y", "labels", "x_test", "y_test", "labels_test")


def validate_matrix(array: object, what: str) -> np.ndarray:
    """Check that ``array`` is a finite, non-empty, real ``(N, D)`` array; return it as float32."""
    array = np.asarray(array)
    if array.dtype == np.bool_:
        array = array.astype(np.float32)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise InputError(
            f"{what} has type {array.dtype}; it must hold real numbers (integers or floats)."
        )
    if array.ndim != 2:
        hint = " Flatten each example, e.g. x.reshape(len(x), -1)." if array.ndim > 2 else ""
        raise InputError(
            f"{what} has shape {array.shape}; it must be a 2-D array of N examples by D values."
            + hint
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(f"{what} is empty (shape {array.shape}); it needs at least one example.")
    bad = ~np.isfinite(array)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InputError(
            f"{what} contains {int(bad.sum())} NaN or infinite values (first at row {row}, column "
            f"{col}); remove or impute them first."
        )
    largest, limit = float(np.abs(array).max()), float(np.finfo(np.float32).max)
    if largest > limit:
        row, col = np.unravel_index(int(np.abs(array).argmax()), array.shape)
        raise InputError(
            f"{what} holds values up to {largest:.3g} (at row {row}, column {col}), beyond "
            f"float32's range (±{limit:.3g}) in which models train; rescale "
            "the data first (e.g. to [0, 1] or unit variance)."
        )
    return array.astype(np.float32)


def validate_labels(array: object, n: int, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise InputError(
            f"{what} must be a 1-D array of integer labels; got {array.dtype} {array.shape}."
        )
    if len(array) != n:
        raise InputError(f"{what} has {len(array)} entries but there are {n} examples.")
    return array.astype(np.int64)


def square_image_shape(width: int) -> tuple[int, int, int] | None:
    """Rows of length s*s are taken to be s x s grey images (needed only by the quadrant view)."""
    side = math.isqrt(width)
    return (1, side, side) if side * side == width else None


# A stored array that inflates past BOMB_BYTES and by more than BOMB_RATIO times its compressed
# size is a decompression bomb, not data: real data sets compress a few times, not hundreds.
BOMB_BYTES = 1 << 30
BOMB_RATIO = 200


@dataclass(frozen=True)
class ArrayHeader:
    """What a stored array's header says: its name, shape and dtype, and its bytes on disk."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    stored: int

    @property
    def size(self) -> int:
        """Bytes the array takes once read (Python's integers: a forged shape cannot wrap)."""
        return math.prod(self.shape) * self.dtype.itemsize


def _read_header(handle) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(handle)
    read = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    shape, _, dtype = read(handle)
    return tuple(shape), dtype


def _array_headers(path: Path) -> list[ArrayHeader]:
    """Every array's header in a ``.npy`` or ``.npz`` file, read without reading the arrays."""
    if path.suffix == ".npy":
        with open(path, "rb") as handle:
            shape, dtype = _read_header(handle)
        return [ArrayHeader("x", shape, dtype, path.stat().st_size)]
    headers = []
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.filename.endswith(".npy"):
                with archive.open(info) as handle:
                    shape, dtype = _read_header(handle)
                name = info.filename.removesuffix(".npy")
                headers.append(ArrayHeader(name, shape, dtype, info.compress_size))
    return headers


def _check_sizes(path: Path, headers: list[ArrayHeader]) -> None:
    """Refuse, by the headers alone, a decompression bomb and arrays that cannot fit in memory
    (each is held twice while loading: as stored and as float32)."""
    for header in headers:
        if path.suffix == ".npy" and header.size > header.stored:
            raise InputError(
                f"{path}: its header promises an array of {header.shape} ({header.dtype}, "
                f"{readable_size(header.size)}) but the file holds "
                f"{readable_size(header.stored)}; it is truncated or forged. Save it again "
                "with numpy.save."
            )
        if header.size > BOMB_BYTES and header.size > BOMB_RATIO * max(header.stored, 1):
            raise InputError(
                f"{path}: array '{header.name}' ({header.shape}, {header.dtype}) would inflate "
                f"from {readable_size(header.stored)} to {readable_size(header.size)}, "
                f"{header.size / max(header.stored, 1):.0f} times, as a decompression bomb does; "
                "vaecollapse does not read it. Save the real data with numpy.savez."
            )
    needed = sum(h.size + math.prod(h.shape) * 4 for h in headers)
    shapes = ", ".join(f"{h.name} {h.shape}" for h in headers)
    check_fits(
        needed, f"loading {path} ({shapes})", "Use a smaller sample of the data, or a machine "
        "with more memory.",
    )  # fmt: skip


def load_user_file(path: str | Path) -> Dataset:
    """Load a ``.npy`` or ``.npz`` file as a Dataset (train split, plus test split if given)."""
    path = Path(path).expanduser()
    if path.suffix not in (".npy", ".npz"):
        raise InputError(f"{path}: user data must be a .npy or .npz file.")
    if not path.is_file():
        raise InputError(f"{path}: no such file.")
    try:
        _check_sizes(path, _array_headers(path))
        with open(path, "rb") as handle:
            loaded = np.load(handle, allow_pickle=False)
            if path.suffix == ".npy":
                arrays = {"x": loaded}
            else:
                with loaded:
                    arrays = {key: loaded[key] for key in loaded.files}
    except InputError:
        raise
    except MemoryError:
        raise InputError(
            f"{path} could not be read: its arrays do not fit in the memory free now."
        ) from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(
            f"{path} could not be read as a NumPy {path.suffix} file ({exc}). Save arrays with "
            "numpy.save / numpy.savez of numeric arrays (no Python objects)."
        ) from None
    if path.suffix == ".npz":
        unknown = sorted(set(arrays) - set(NPZ_KEYS))
        if unknown:
            raise InputError(
                f"{path} has arrays {unknown} that vaecollapse does not use; accepted names are "
                f"{', '.join(NPZ_KEYS)} (x is required)."
            )
        if "x" not in arrays:
            raise InputError(
                f"{path} has no array named 'x'; accepted names are {', '.join(NPZ_KEYS)}."
            )

    def split(suffix: str) -> Split | None:
        if "x" + suffix not in arrays:
            for key in ("y", "labels"):
                if key + suffix in arrays:
                    raise InputError(f"{path} has '{key}{suffix}' but no 'x{suffix}'.")
            return None
        x = validate_matrix(arrays["x" + suffix], f"{path}['x{suffix}']")
        if len(x) < 2:
            raise InputError(
                f"{path}['x{suffix}'] holds one example; a data set needs at least two (the "
                "diagnostics measure how the encoder's output varies across the data)."
            )
        y = labels = None
        if "y" + suffix in arrays:
            y = validate_matrix(arrays["y" + suffix], f"{path}['y{suffix}']")
            if len(y) != len(x):
                raise InputError(
                    f"{path}: 'x{suffix}' has {len(x)} rows but 'y{suffix}' has {len(y)}; "
                    "each input needs exactly one target."
                )
        if "labels" + suffix in arrays:
            labels = validate_labels(arrays["labels" + suffix], len(x), f"{path}['labels{suffix}']")
        return Split(
            torch.from_numpy(x),
            None if y is None else torch.from_numpy(y),
            None if labels is None else torch.from_numpy(labels),
        )

    train, test = split(""), split("_test")
    assert train is not None
    if test is not None:
        for key, a, b in (("x", train.x, test.x), ("y", train.y, test.y)):
            if (a is None) != (b is None) or (a is not None and a.shape[1] != b.shape[1]):
                raise InputError(
                    f"{path}: '{key}' and '{key}_test' must both be present with the same width."
                )
    return Dataset(
        name=path.name,
        train=train,
        test=test,
        image_shape=square_image_shape(train.x.shape[1]) if train.y is None else None,
        provenance=Provenance(kind="user-file", directory=str(path.parent.resolve())),
        view="flat" if train.y is None else "paired",
    )
