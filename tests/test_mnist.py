"""The real MNIST files: shapes, label counts, checksums, and every kind of damaged file."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vaecollapse.core.data import load_dataset
from vaecollapse.core.errors import CorruptDataError

TRAIN_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture(scope="module")
def mnist(mnist_dir: Path):
    return load_dataset("mnist", data_dir=mnist_dir.parent)


def test_shapes_ranges_and_label_counts(mnist) -> None:
    assert mnist.train.x.shape == (60000, 784) and mnist.test.x.shape == (10000, 784)
    assert mnist.train.x.dtype == torch.float32
    assert float(mnist.train.x.min()) == 0.0 and float(mnist.train.x.max()) == 1.0
    assert torch.bincount(mnist.train.labels).tolist() == TRAIN_LABEL_COUNTS
    assert len(mnist.test.labels) == 10000
    assert mnist.image_shape == (1, 28, 28)
    # The pixel layout is row-major: a '1' has more ink in the central column than in the borders.
    ones = mnist.train.x[mnist.train.labels == 1].mean(0).reshape(28, 28)
    assert ones[:, 14].sum() > 5 * ones[:, 4].sum()


def test_checksums_verified_against_release(mnist) -> None:
    assert mnist.provenance.checksums_verified is True
    assert {f.check for f in mnist.provenance.files} == {"release"}
    assert len(mnist.provenance.files) == 4


def test_data_info_json(run_cli, mnist_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAECOLLAPSE_DATA", str(mnist_dir.parent))
    result = run_cli("data", "info", "mnist", "--json")
    assert result.code == 0, result.err
    info = json.loads(result.out)
    assert info["splits"]["train"]["n"] == 60000
    assert info["splits"]["test"]["n"] == 10000
    assert info["checksums_verified"] is True
    assert info["source"]["found_via"] == "$VAECOLLAPSE_DATA"
    assert info["splits"]["train"]["label_counts"]["1"] == 6742


def test_quadrant_and_digit_subset(mnist_dir: Path) -> None:
    ones = load_dataset("mnist-quadrant", digits=1, data_dir=mnist_dir.parent)
    assert ones.train.x.shape == (6742, 196) and ones.train.y.shape == (6742, 588)
    assert ones.test.x.shape[1] == 196 and set(ones.train.labels.tolist()) == {1}


def test_truncated_file_is_reported(mnist_copy: Path, run_cli) -> None:
    path = mnist_copy / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:5_000_000])
    with pytest.raises(CorruptDataError, match="truncated or corrupt") as err:
        load_dataset("mnist", data_dir=mnist_copy.parent)
    assert str(path) in str(err.value) and "Delete" in str(err.value)
    result = run_cli("data", "info", "mnist", "--data-dir", str(mnist_copy.parent))
    assert result.code == 2
    assert "train-images-idx3-ubyte.gz" in result.err and "Traceback" not in result.err


def _rewrite(path: Path, change) -> None:
    payload = bytearray(gzip.decompress(path.read_bytes()))
    change(payload)
    path.write_bytes(gzip.compress(bytes(payload)))


def test_bad_magic_number(mnist_copy: Path) -> None:
    _rewrite(mnist_copy / "t10k-labels-idx1-ubyte.gz", lambda p: p.__setitem__(3, 0x09))
    with pytest.raises(CorruptDataError, match="magic number"):
        load_dataset("mnist", data_dir=mnist_copy.parent)


def test_wrong_length_inside_valid_gzip(mnist_copy: Path) -> None:
    _rewrite(mnist_copy / "t10k-images-idx3-ubyte.gz", lambda p: p.__delitem__(slice(-100, None)))
    with pytest.raises(CorruptDataError, match="header"):
        load_dataset("mnist", data_dir=mnist_copy.parent)


def test_not_gzip(mnist_copy: Path) -> None:
    (mnist_copy / "train-labels-idx1-ubyte.gz").write_bytes(b"<html>not found</html>")
    with pytest.raises(CorruptDataError, match="not a readable gzip file"):
        load_dataset("mnist", data_dir=mnist_copy.parent)


def test_altered_content_fails_checksum_unless_verification_is_off(mnist_copy: Path) -> None:
    path = mnist_copy / "t10k-images-idx3-ubyte.gz"
    _rewrite(path, lambda p: p.__setitem__(1000, (p[1000] + 1) % 256))
    with pytest.raises(CorruptDataError, match="differs from the official release"):
        load_dataset("mnist", data_dir=mnist_copy.parent)
    unverified = load_dataset("mnist", data_dir=mnist_copy.parent, verify=False)
    assert unverified.provenance.checksums_verified is False
    assert unverified.test.x.shape == (10000, 784)


def test_recompressed_copy_verifies_by_payload(mnist_copy: Path, mnist_dir: Path) -> None:
    """Debian re-compresses Fashion-MNIST; a re-compressed MNIST copy must verify likewise."""
    path = mnist_copy / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), compresslevel=1, mtime=0))
    dataset = load_dataset("mnist", data_dir=mnist_copy.parent)
    checks = {Path(f.path).name: f.check for f in dataset.provenance.files}
    assert checks["train-labels-idx1-ubyte.gz"] == "payload"
    assert checks["train-images-idx3-ubyte.gz"] == "release"
    assert dataset.provenance.checksums_verified is True
    original = load_dataset("mnist", data_dir=mnist_dir.parent)
    assert np.array_equal(dataset.train.labels.numpy(), original.train.labels.numpy())
