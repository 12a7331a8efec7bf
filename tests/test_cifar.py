"""The CIFAR-10 python-batch reader, on small stand-in batches written in the real format."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from vaecollapse.core.data import load_dataset
from vaecollapse.core.errors import CorruptDataError

from .stand_ins import write_cifar_stand_in


def test_stand_in_loads_without_verification(tmp_path: Path) -> None:
    folder = write_cifar_stand_in(tmp_path)
    dataset = load_dataset("cifar10", data_dir=tmp_path, verify=False)
    assert dataset.train.x.shape == (25, 3072) and dataset.test.x.shape == (5, 3072)
    assert dataset.image_shape == (3, 32, 32)
    assert dataset.provenance.checksums_verified is False
    raw = pickle.loads((folder / "test_batch").read_bytes())
    assert torch.equal(dataset.test.x, torch.from_numpy(raw[b"data"]).float() / 255)
    quadrants = load_dataset("cifar10-quadrant", data_dir=tmp_path, verify=False)
    assert quadrants.train.x.shape == (25, 768) and quadrants.train.y.shape == (25, 2304)


def test_unofficial_files_fail_verification(tmp_path: Path) -> None:
    write_cifar_stand_in(tmp_path)
    with pytest.raises(CorruptDataError, match="md5"):
        load_dataset("cifar10", data_dir=tmp_path)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (pickle.dumps({b"data": _Exploit(), b"labels": []}), "refusing to load"),
        (pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}), "3072"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), "labels"),
        (pickle.dumps([1, 2, 3]), "'data' and 'labels'"),
        (b"\x80\x02garbage", "not a readable CIFAR-10"),
    ],
)
def test_damaged_batches(tmp_path: Path, payload: bytes, message: str) -> None:
    folder = write_cifar_stand_in(tmp_path)
    (folder / "data_batch_3").write_bytes(payload)
    with pytest.raises(CorruptDataError, match=message):
        load_dataset("cifar10", data_dir=tmp_path, verify=False)
