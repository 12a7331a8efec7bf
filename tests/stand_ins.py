"""Small data sets written in the official formats, for tests that must not need the real ones."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from vaecollapse.core.data import RELEASES


def write_cifar_stand_in(root: Path, n_per_batch: int = 5, patterns: int = 0) -> Path:
    """CIFAR-10 python batches under ``root/cifar-10-batches-py``: uniform random pixels, or, with
    ``patterns`` > 0, images mixing that many fixed random patterns (data with a few strong
    directions, like real images, on which collapse experiments behave)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((patterns, 3072)) * 0.15
    for name in RELEASES["cifar-10-batches-py"].file_names:
        if patterns:
            mixed = 0.5 + rng.standard_normal((n_per_batch, patterns)) @ basis
            data = np.clip(mixed * 255, 0, 255).astype(np.uint8)
        else:
            data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        batch = {
            b"batch_label": name.encode(),
            b"data": data,
            b"labels": rng.integers(0, 10, n_per_batch).tolist(),
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return folder
