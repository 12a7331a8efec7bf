"""Finding files: search order, the offline error, and verified downloads from a loopback mirror."""

from __future__ import annotations

import functools
import http.server
import io
import os
import pickle
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from vaecollapse.core.data import RELEASES, load_dataset, locate
from vaecollapse.core.data.sources import KnownFile, md5_of_bytes
from vaecollapse.core.errors import DataNotFoundError


@pytest.fixture
def serve() -> Iterator:
    """Start HTTP servers on 127.0.0.1 over given folders; yields a function returning base URLs."""
    servers = []

    def start(directory: Path) -> str:
        handler = functools.partial(
            type(
                "Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}
            ),
            directory=str(directory),
        )
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_offline_error_is_one_paragraph_exit_2_no_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "VAECOLLAPSE_DATA"}
    env |= {"XDG_CACHE_HOME": str(tmp_path / "cache"), "VAECOLLAPSE_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "vaecollapse", "data", "info", "mnist"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr and run.stdout == ""
    message = " ".join(run.stderr.split())
    assert "Data set 'mnist' was not found" in message
    assert str(tmp_path / "cache" / "vaecollapse" / "mnist") in message
    assert "VAECOLLAPSE_DATA" in message and "--data-dir" in message
    assert "\n\n" not in run.stderr.strip()


def test_failed_download_names_the_reason(isolated_data_env: Path, monkeypatch) -> None:
    monkeypatch.delenv("VAECOLLAPSE_OFFLINE")
    closed = replace(RELEASES["mnist"], mirrors=("http://127.0.0.1:9/",))
    monkeypatch.setitem(RELEASES, "mnist", closed)
    with pytest.raises(DataNotFoundError, match="download failed"):
        load_dataset("mnist")
    assert not list((isolated_data_env / "cache" / "vaecollapse" / "mnist").glob("*.gz"))


def test_search_order_explicit_dir_before_environment(
    mnist_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("VAECOLLAPSE_DATA", str(tmp_path / "nowhere"))
    found = locate(RELEASES["mnist"], data_dir=mnist_dir)  # the folder itself also works
    assert found.directory == mnist_dir and found.found_via == "--data-dir"
    monkeypatch.setenv("VAECOLLAPSE_DATA", str(mnist_dir.parent))
    assert locate(RELEASES["mnist"]).found_via == "$VAECOLLAPSE_DATA"


def test_download_verifies_skips_bad_mirror_and_caches(
    mnist_dir: Path, mnist_copy: Path, isolated_data_env: Path, serve, monkeypatch
) -> None:
    monkeypatch.delenv("VAECOLLAPSE_OFFLINE")
    bad = mnist_copy  # a mirror that serves a damaged images file
    (bad / "t10k-images-idx3-ubyte.gz").write_bytes(b"damaged")
    mirrors = (serve(bad), serve(mnist_dir))
    monkeypatch.setitem(RELEASES, "mnist", replace(RELEASES["mnist"], mirrors=mirrors))
    dataset = load_dataset("mnist")
    cache = isolated_data_env / "cache" / "vaecollapse" / "mnist"
    assert dataset.provenance.found_via == "download"
    assert dataset.provenance.checksums_verified is True
    assert (cache / "t10k-images-idx3-ubyte.gz").read_bytes() == (
        mnist_dir / "t10k-images-idx3-ubyte.gz"
    ).read_bytes()
    assert not list(cache.glob(".*part"))
    assert load_dataset("mnist").provenance.found_via == "user cache"


def _cifar_batch(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    batch = {
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"labels": rng.integers(0, 10, n).tolist(),
    }
    return pickle.dumps(batch, protocol=2)


def test_cifar_archive_download_unpacks_into_cache(
    isolated_data_env: Path, serve, monkeypatch
) -> None:
    monkeypatch.delenv("VAECOLLAPSE_OFFLINE")
    release = RELEASES["cifar-10-batches-py"]
    batches = {name: _cifar_batch(4, i) for i, name in enumerate(release.file_names)}
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, payload in batches.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    site = isolated_data_env / "site"
    site.mkdir()
    (site / "cifar-10-python.tar.gz").write_bytes(archive.getvalue())
    stand_in = replace(
        release,
        files=tuple(KnownFile(n, md5_of_bytes(p)) for n, p in batches.items()),
        archive=KnownFile("cifar-10-python.tar.gz", md5_of_bytes(archive.getvalue())),
        mirrors=(serve(site),),
    )
    monkeypatch.setitem(RELEASES, "cifar-10-batches-py", stand_in)
    dataset = load_dataset("cifar10")
    assert dataset.train.x.shape == (20, 3072) and dataset.test.x.shape == (4, 3072)
    assert dataset.provenance.checksums_verified is True
    cache = isolated_data_env / "cache" / "vaecollapse"
    assert sorted(p.name for p in (cache / "cifar-10-batches-py").iterdir()) == sorted(batches)
    assert not (cache / "cifar-10-python.tar.gz").exists()
