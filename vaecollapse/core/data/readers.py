"""Parsers for the standard file formats, with checksum verification and structural checks.

Every problem is reported as :class:`CorruptDataError` naming the file and the fix.
"""

from __future__ import annotations

import gzip
import io
import pickle
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from vaecollapse.core.data.sources import KnownFile, md5_of_bytes
from vaecollapse.core.errors import CorruptDataError

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension


@dataclass(frozen=True)
class Verification:
    """How a file was checked: ``"release"`` (md5 of the file), ``"payload"`` (md5 of its
    decompressed content, for re-compressed copies) or ``"skipped"``."""

    file: Path
    md5: str
    method: str

    @property
    def verified(self) -> bool:
        return self.method != "skipped"


def _fix_hint(path: Path) -> str:
    return (
        f"Delete {path} and fetch the official file again (or point VAECOLLAPSE_DATA / --data-dir "
        "at a good copy)."
    )


def read_idx_gz(
    path: Path, known: KnownFile | None, verify: bool = True
) -> tuple[np.ndarray, Verification]:
    """Read a gzip-compressed IDX file of unsigned bytes.

    Returns the array (``(N, H, W)`` for images, ``(N,)`` for labels) as uint8.
    """
    raw = path.read_bytes()
    file_md5 = md5_of_bytes(raw)
    try:
        payload = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise CorruptDataError(
            f"{path} is not a readable gzip file ({exc}); it is truncated or corrupt. "
            + _fix_hint(path)
        ) from None
    array = _parse_idx(payload, path)
    method = "skipped"
    if verify and known is not None:
        if file_md5 == known.md5:
            method = "release"
        elif known.payload_md5 is not None and md5_of_bytes(payload) == known.payload_md5:
            method = "payload"
        else:
            raise CorruptDataError(
                f"{path} has md5 {file_md5}, but the official {known.name} has {known.md5}: the "
                "file differs from the official release. " + _fix_hint(path)
            )
    return array, Verification(path, file_md5, method)


def _parse_idx(payload: bytes, path: Path) -> np.ndarray:
    if len(payload) < 8:
        raise CorruptDataError(f"{path} is too short to be an IDX file. " + _fix_hint(path))
    magic = int.from_bytes(payload[:4], "big")
    if magic not in (IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC):
        raise CorruptDataError(
            f"{path} has magic number {magic:#010x}, expected {IDX_IMAGES_MAGIC:#010x} (images) or "
            f"{IDX_LABELS_MAGIC:#010x} (labels): it is not an IDX file of unsigned bytes. "
            + _fix_hint(path)
        )
    rank = magic & 0xFF
    header = 4 + 4 * rank
    if len(payload) < header:
        raise CorruptDataError(f"{path} has a truncated IDX header. " + _fix_hint(path))
    shape = tuple(int.from_bytes(payload[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank))
    expected = header + int(np.prod(shape))
    if len(payload) != expected:
        raise CorruptDataError(
            f"{path} holds {len(payload)} bytes once decompressed but its header {shape} implies "
            f"{expected}: the file is truncated or corrupt. " + _fix_hint(path)
        )
    return np.frombuffer(payload, dtype=np.uint8, offset=header).reshape(shape)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and NumPy arrays only: a tampered batch file cannot run code."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # protocol-2 pickles of bytes go through it; a pure function
    }

    def find_class(self, module: str, name: str) -> type:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


CIFAR_IMAGE_SHAPE = (3, 32, 32)


def read_cifar_batch(
    path: Path, known: KnownFile | None, verify: bool = True
) -> tuple[np.ndarray, np.ndarray, Verification]:
    """Read one CIFAR-10 python batch: images ``(N, 3072)`` uint8 in CHW order, labels ``(N,)``."""
    raw = path.read_bytes()
    file_md5 = md5_of_bytes(raw)
    method = "skipped"
    if verify and known is not None:
        if file_md5 != known.md5:
            raise CorruptDataError(
                f"{path} has md5 {file_md5}, but the official {known.name} has {known.md5}: the "
                "file is truncated, corrupt or not from the official release. " + _fix_hint(path)
            )
        method = "release"
    try:
        batch = _ArrayOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # any unpickling failure means the same thing to the user
        raise CorruptDataError(
            f"{path} is not a readable CIFAR-10 python batch ({exc}). " + _fix_hint(path)
        ) from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise CorruptDataError(
            f"{path} does not hold the 'data' and 'labels' entries of a CIFAR-10 batch. "
            + _fix_hint(path)
        )
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    width = int(np.prod(CIFAR_IMAGE_SHAPE))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != width:
        raise CorruptDataError(
            f"{path} holds images of shape {data.shape} and type {data.dtype}; a CIFAR-10 batch "
            f"holds (N, {width}) uint8. " + _fix_hint(path)
        )
    if labels.shape != (data.shape[0],) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise CorruptDataError(
            f"{path} has {labels.shape} labels for {data.shape[0]} images, or labels outside "
            "0..9. " + _fix_hint(path)
        )
    return data, labels, Verification(path, file_md5, method)
