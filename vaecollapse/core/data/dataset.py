"""In-memory data sets: every split is a set of tensors, moved to a device in one call."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from vaecollapse.core.data.catalogue import DataSpec


@dataclass(frozen=True)
class Split:
    """One split of a data set.

    ``x``: ``(N, D)`` float32, the model input (pixels in [0, 1] unless centred).
    ``y``: ``(N, D2)`` float32 or None, the CVAE target (e.g. the three other quadrants).
    ``labels``: ``(N,)`` int64 class labels or None.
    """

    x: torch.Tensor
    y: torch.Tensor | None = None
    labels: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n = self.x.shape[0]
        for name in ("y", "labels"):
            value = getattr(self, name)
            if value is not None and value.shape[0] != n:
                raise ValueError(f"split has {n} inputs but {value.shape[0]} {name}")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def to(self, device: torch.device | str) -> Split:
        return Split(*(None if t is None else t.to(device) for t in (self.x, self.y, self.labels)))

    def select(self, index: torch.Tensor) -> Split:
        """Rows ``index`` (boolean mask or integer indices) of every tensor."""
        return Split(*(None if t is None else t[index] for t in (self.x, self.y, self.labels)))

    def summary(self) -> dict:
        info: dict = {"n": len(self), "x_shape": list(self.x.shape), "x_range": _range(self.x)}
        if self.y is not None:
            info["y_shape"] = list(self.y.shape)
            info["y_range"] = _range(self.y)
        if self.labels is not None:
            values, counts = torch.unique(self.labels, return_counts=True)
            info["label_counts"] = {
                str(int(v)): int(c) for v, c in zip(values, counts, strict=True)
            }
        return info


def _range(t: torch.Tensor) -> list[float]:
    if t.numel() == 0:
        return [float("nan"), float("nan")]
    return [float(t.min()), float(t.max())]


@dataclass(frozen=True)
class FileRecord:
    path: str
    md5: str
    check: str  # "release", "payload" or "skipped"


@dataclass(frozen=True)
class Provenance:
    """Where the data came from and how it was checked."""

    kind: str  # "release" (official files), "embedded", "user-file", "synthetic"
    directory: str | None = None
    found_via: str | None = None
    files: tuple[FileRecord, ...] = ()

    @property
    def checksums_verified(self) -> bool | None:
        """True when every file matched its known md5; None when there is nothing to verify."""
        if not self.files:
            return None
        return all(f.check != "skipped" for f in self.files)


@dataclass(frozen=True)
class Dataset:
    """A named data set with a train and (optionally) a test split, held as tensors.

    ``image_shape`` is the ``(C, H, W)`` layout of the flat rows of the un-split images (None when
    the rows are not images); ``view`` is ``"flat"`` or ``"quadrant"``. ``spec``: the
    ``DataSpec`` that loads this data set again (None for generated data).
    """

    name: str
    train: Split
    test: Split | None
    image_shape: tuple[int, int, int] | None
    provenance: Provenance
    view: str = "flat"
    digits: tuple[int, ...] | None = None
    centered: bool = False
    notes: tuple[str, ...] = field(default=())
    spec: DataSpec | None = None

    @property
    def x_dim(self) -> int:
        return int(self.train.x.shape[1])

    @property
    def y_dim(self) -> int | None:
        return None if self.train.y is None else int(self.train.y.shape[1])

    @property
    def splits(self) -> dict[str, Split]:
        return {"train": self.train} | ({"test": self.test} if self.test is not None else {})

    @property
    def evaluation_split(self) -> Split:
        """The split results are measured on: the test split, else the training split."""
        return self.train if self.test is None else self.test

    @property
    def evaluation_split_name(self) -> str:
        """``"test"`` or ``"training"``: which split ``evaluation_split`` is."""
        return "training" if self.test is None else "test"

    def to(self, device: torch.device | str) -> Dataset:
        test = None if self.test is None else self.test.to(device)
        return replace(self, train=self.train.to(device), test=test)

    def summary(self) -> dict:
        """A JSON-ready description: sizes per split, shapes, value ranges, provenance."""
        return {
            "name": self.name,
            "view": self.view,
            "digits": list(self.digits) if self.digits is not None else None,
            "centered": self.centered,
            "image_shape": list(self.image_shape) if self.image_shape else None,
            "x_dim": self.x_dim,
            "y_dim": self.y_dim,
            "splits": {name: split.summary() for name, split in self.splits.items()},
            "source": {
                "kind": self.provenance.kind,
                "directory": self.provenance.directory,
                "found_via": self.provenance.found_via,
                "files": [asdict(f) for f in self.provenance.files],
            },
            "checksums_verified": self.provenance.checksums_verified,
            "notes": list(self.notes),
        }


def file_records(verifications: list) -> tuple[FileRecord, ...]:
    return tuple(FileRecord(str(Path(v.file)), v.md5, v.method) for v in verifications)
