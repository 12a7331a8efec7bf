"""Named data sets and the one entry point, :func:`load_dataset`."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import MISSING, asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from vaecollapse.core.data.dataset import Dataset, Provenance, Split, file_records
from vaecollapse.core.data.readers import CIFAR_IMAGE_SHAPE, read_cifar_batch, read_idx_gz
from vaecollapse.core.data.sources import RELEASES, locate
from vaecollapse.core.data.userfiles import load_user_file
from vaecollapse.core.data.views import centered_view, digit_subset, quadrant_view
from vaecollapse.core.errors import InputError
from vaecollapse.core.fileio import check_name_lengths
from vaecollapse.core.options import LIST, check_fields, declared, setting

DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


def _load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 images, values 0..16 scaled to [0, 1]).

    The data set has no official split; a fixed permutation (seed 0) keeps 20% as the test split.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.data / 16.0).astype(np.float32)
    labels = bunch.target.astype(np.int64)
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(images))
    n_test = round(DIGITS_TEST_FRACTION * len(images))
    train_idx, test_idx = np.sort(order[n_test:]), np.sort(order[:n_test])

    def split(idx: np.ndarray) -> Split:
        return Split(torch.from_numpy(images[idx]), None, torch.from_numpy(labels[idx]))

    return Dataset(
        name="digits",
        train=split(train_idx),
        test=split(test_idx),
        image_shape=(1, 8, 8),
        provenance=Provenance(kind="embedded", found_via="scikit-learn"),
        notes=("scikit-learn's bundled copy; fixed 80/20 split with seed 0",),
    )


def _load_idx_release(name: str, data_dir: str | os.PathLike | None, verify: bool) -> Dataset:
    release = RELEASES[name]
    where = locate(release, data_dir)
    checks = []

    def read(file_name: str) -> np.ndarray:
        array, check = read_idx_gz(where.directory / file_name, release.known(file_name), verify)
        checks.append(check)
        return array

    def split(prefix: str) -> Split:
        images = read(f"{prefix}-images-idx3-ubyte.gz")
        labels = read(f"{prefix}-labels-idx1-ubyte.gz")
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise InputError(
                f"{where.directory}: {prefix} images {images.shape} and labels {labels.shape} do "
                "not match; the folder mixes files from different releases."
            )
        x = torch.from_numpy(images.reshape(len(images), -1).copy()).float().div_(255.0)
        return Split(x, None, torch.from_numpy(labels.astype(np.int64)))

    train, test = split("train"), split("t10k")
    side = math.isqrt(train.x.shape[1])
    return Dataset(
        name=name,
        train=train,
        test=test,
        image_shape=(1, side, side),
        provenance=Provenance(
            "release", str(where.directory), where.found_via, file_records(checks)
        ),
    )


def _load_cifar10(data_dir: str | os.PathLike | None, verify: bool) -> Dataset:
    release = RELEASES["cifar-10-batches-py"]
    where = locate(release, data_dir)
    checks = []

    def split(file_names: Iterable[str]) -> Split:
        images, labels = [], []
        for file_name in file_names:
            data, lab, check = read_cifar_batch(
                where.directory / file_name, release.known(file_name), verify
            )
            images.append(data)
            labels.append(lab)
            checks.append(check)
        x = torch.from_numpy(np.concatenate(images)).float().div_(255.0)
        return Split(x, None, torch.from_numpy(np.concatenate(labels)))

    return Dataset(
        name="cifar10",
        train=split(f"data_batch_{i}" for i in range(1, 6)),
        test=split(["test_batch"]),
        image_shape=CIFAR_IMAGE_SHAPE,
        provenance=Provenance(
            "release", str(where.directory), where.found_via, file_records(checks)
        ),
    )


DATASET_NAMES = ("digits", "mnist", "fashion-mnist", "cifar10")
VIEWS = ("flat", "quadrant")


@dataclass(frozen=True)
class DataSpec:
    """What to load: a data set name (``mnist``, ``mnist-quadrant``, ...) or a ``.npy``/``.npz``
    path, and the view to take of it. Each setting is declared with its domain
    (``vaecollapse.core.options``); a run stores this whole specification, so it can be loaded
    again."""

    dataset: str = setting(
        MISSING,
        str,
        "Data set name (digits, mnist, fashion-mnist, cifar10; -quadrant for the CVAE task) or "
        "a .npy/.npz file",
    )
    view: str | None = setting(
        None,
        str,
        "flat images, or the quadrant task (x = bottom-left, y = the rest); default: from the name",
        choices=VIEWS,
    )
    digits: tuple[int, ...] | None = setting(
        None, int, "Keep only these labels, e.g. 1 or 1,7", low=0, shape=LIST
    )
    center: bool = setting(False, bool, "Subtract the training mean (the papers do not)")
    data_dir: str | None = setting(
        None,
        str,
        "Folder holding the data set's files (or a root with one folder per data set)",
    )
    verify: bool = setting(
        True, bool, "Check the official files' md5 sums (structure is always checked)"
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.dataset.strip():
            raise InputError("dataset is empty; give a data set name or a .npy/.npz file.")
        check_data_dir(self.data_dir)

    @classmethod
    def from_json(cls, stored: dict) -> DataSpec:
        """The specification a run stored (``source`` is the older name of ``dataset``)."""
        fields = dict(stored)
        if "source" in fields:
            fields["dataset"] = fields.pop("source")
        unknown = sorted(set(fields) - set(declared(cls)))
        if unknown or "dataset" not in fields:
            raise InputError(
                f"the stored data specification {stored} is not one vaecollapse wrote "
                f"(unknown or missing entries: {unknown or ['dataset']})."
            )
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def load(self, device: torch.device | str | None = None) -> Dataset:
        return load_dataset(
            self.dataset,
            view=self.view,
            digits=self.digits,
            center=self.center,
            data_dir=self.data_dir,
            verify=self.verify,
            device=device,
        )


def check_data_dir(data_dir: str | os.PathLike | None) -> None:
    """Refuse a data folder that is named empty or is a file (neither could hold a data set)."""
    if data_dir is None:
        return
    if not str(data_dir).strip():
        raise InputError("data_dir is empty; name the folder holding the data set, or omit it.")
    check_name_lengths(data_dir, "data_dir")
    path = Path(data_dir).expanduser()
    if path.exists() and not path.is_dir():
        raise InputError(
            f"data_dir {path} is a file; name the folder that holds the data set's files."
        )


def _parse_source(source: str, view: str | None) -> tuple[str, str]:
    base, implied = source, "flat"
    if source.endswith("-quadrant") and source.removesuffix("-quadrant") in DATASET_NAMES:
        base, implied = source.removesuffix("-quadrant"), "quadrant"
    if view is None:
        return base, implied
    if view not in VIEWS:
        raise InputError(f"Unknown view '{view}'; choose one of {', '.join(VIEWS)}.")
    if implied == "quadrant" and view != "quadrant":
        raise InputError(f"'{source}' already names the quadrant view but view '{view}' was asked.")
    return base, view


def load_dataset(
    source: str | os.PathLike,
    *,
    view: str | None = None,
    digits: int | Iterable[int] | None = None,
    center: bool = False,
    data_dir: str | os.PathLike | None = None,
    verify: bool = True,
    device: torch.device | str | None = None,
) -> Dataset:
    """Load a data set by name or from a user file, take a view, and place it on ``device``.

    ``source``: ``digits`` (embedded, offline), ``mnist``, ``fashion-mnist``, ``cifar10``, any of
    them with ``-quadrant`` (the CVAE task), or a path to a ``.npy``/``.npz`` file.
    ``digits``: keep only these labels. ``center``: subtract the training mean (the paper does not).
    ``verify``: check md5 checksums of official files (structure is always checked).
    """
    source = str(source)
    check_data_dir(data_dir)
    base, chosen_view = _parse_source(source, view)
    if Path(base).suffix in (".npy", ".npz") or os.sep in base:
        check_name_lengths(base, "the data file")
        source = base = str(Path(base).expanduser().resolve())  # reloadable from anywhere
    if base == "digits":
        dataset = _load_digits()
    elif base in ("mnist", "fashion-mnist"):
        dataset = _load_idx_release(base, data_dir, verify)
    elif base == "cifar10":
        dataset = _load_cifar10(data_dir, verify)
    elif Path(base).suffix in (".npy", ".npz") or os.sep in base:
        dataset = load_user_file(base)
    else:
        raise InputError(
            f"Unknown data set '{source}'. Known names: {', '.join(DATASET_NAMES)} (add "
            "'-quadrant' for the CVAE quadrant task), or give a path to a .npy or .npz file."
        )
    if digits is not None:
        wanted = (digits,) if isinstance(digits, int) else tuple(digits)
        dataset = digit_subset(dataset, wanted)
    if chosen_view == "quadrant":
        dataset = quadrant_view(dataset)
    if center:
        dataset = centered_view(dataset)
    spec = DataSpec(
        dataset=source,
        view=view,
        digits=None if digits is None else dataset.digits,
        center=center,
        data_dir=None if data_dir is None else str(Path(data_dir).expanduser().resolve()),
        verify=verify,
    )
    dataset = replace(dataset, spec=spec)
    return dataset if device is None else dataset.to(device)
