"""Fashion-MNIST: the shared copy (Debian's re-compressed gzip files, whose decompressed content
has the release's md5s) is found and verified, and a system folder such as the one Debian's
package installs is searched."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from vaecollapse.core.data import RELEASES, load_dataset


def test_the_shared_copy_is_found_and_verified(fashion_dir: Path) -> None:
    dataset = load_dataset("fashion-mnist", data_dir=fashion_dir)
    assert dataset.provenance.checksums_verified is True
    assert {f.check for f in dataset.provenance.files} == {"payload"}  # re-compressed copies
    assert dataset.train.x.shape == (60000, 784) and dataset.test.x.shape == (10000, 784)
    assert torch.bincount(dataset.train.labels).tolist() == [6000] * 10
    assert torch.bincount(dataset.test.labels).tolist() == [1000] * 10


def test_a_system_data_set_folder_is_searched(
    isolated_data_env: Path, fashion_dir: Path, monkeypatch
) -> None:
    system = isolated_data_env / "usr-share-datasets-fashion-mnist"
    system.mkdir()
    for name in RELEASES["fashion-mnist"].file_names:
        (system / name).symlink_to(fashion_dir / name)
    release = RELEASES["fashion-mnist"]
    assert release.system_dirs == (Path("/usr/share/datasets/fashion-mnist"),)  # Debian's
    monkeypatch.setitem(RELEASES, "fashion-mnist", replace(release, system_dirs=(system,)))
    dataset = load_dataset("fashion-mnist")
    assert dataset.provenance.found_via == "system data set package"
    assert dataset.provenance.checksums_verified is True
