"""Fashion-MNIST from Debian's package, whose gzip files are re-compressed copies of the release."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vaecollapse.data import RELEASES, load_dataset

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

pytestmark = pytest.mark.skipif(
    not DEBIAN_DIR.is_dir(), reason="Debian package dataset-fashion-mnist is not installed"
)


def test_debian_copy_is_found_and_verified(isolated_data_env: Path) -> None:
    assert RELEASES["fashion-mnist"].system_dirs == (DEBIAN_DIR,)
    dataset = load_dataset("fashion-mnist")
    assert dataset.provenance.found_via == "system data set package"
    assert dataset.provenance.checksums_verified is True
    assert dataset.train.x.shape == (60000, 784) and dataset.test.x.shape == (10000, 784)
    assert torch.bincount(dataset.train.labels).tolist() == [6000] * 10
    assert torch.bincount(dataset.test.labels).tolist() == [1000] * 10
