"""Ray as a sweep's engine: the same points as the local backend, finished points never trained
again, and clear refusals when Ray is missing or its cluster unreachable."""

from __future__ import annotations

import csv
import socket
import sys
from pathlib import Path

import pytest
import torch

# one worker of `-n N` runs them all, so the module's Ray instance starts once
pytestmark = pytest.mark.xdist_group("ray")

SWEEP = """
model = "vae"
dataset = "digits"
backbone = "mlp"
hidden = 16
latent_dim = 3
epochs = 2
lr = 3e-3

[grid]
beta = [0.5, 4]
latent_dim = [2, 3]
""".replace("latent_dim = 3\n", "", 1)


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance of two CPUs for the module, shut down after it."""
    import ray  # an extra that .ci/run installs: missing, this fails rather than skips

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def _said(result) -> str:
    return " ".join(result.err.split())


def _rows(out: Path) -> list[dict]:
    with (out / "sweep.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_a_sweep_on_ray_trains_what_the_local_backend_trains(run_cli, tmp_path, local_ray):
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(SWEEP)
    local, remote = tmp_path / "local", tmp_path / "ray"
    assert run_cli("sweep", str(sweep), "--out", str(local)).code == 0
    # an interrupted sweep: two points finished before the Ray call
    for index in (0, 3):
        assert run_cli("sweep", str(sweep), "--out", str(remote), "--run", str(index)).code == 0
    finished = {i: (remote / "runs" / f"p{i:03d}" / "model.pt").stat().st_mtime_ns for i in (0, 3)}
    result = run_cli("sweep", str(sweep), "--out", str(remote), "--backend", "ray")
    assert result.code == 0, result.err
    assert "4 of 4 points finished" in result.out
    for i, stamp in finished.items():  # not trained again
        assert (remote / "runs" / f"p{i:03d}" / "model.pt").stat().st_mtime_ns == stamp
    # the latent sizes cannot share a batch: points 1 and 2 trained as two tasks
    for a, b in zip(_rows(local), _rows(remote), strict=True):
        assert a["beta"] == b["beta"] and a["latent_dim"] == b["latent_dim"]
        for column in ("kl", "train_loss", "test_loss"):
            assert float(b[column]) == pytest.approx(float(a[column]), rel=1e-5, abs=1e-7)
    for index in range(4):
        mine, theirs = (
            torch.load(root / "runs" / f"p{index:03d}" / "model.pt", weights_only=True)
            for root in (local, remote)
        )
        for name, tensor in mine.items():
            torch.testing.assert_close(theirs[name], tensor, rtol=1e-5, atol=1e-6)


def test_a_sweep_interrupted_on_ray_finishes_without_retraining(run_cli, tmp_path, local_ray):
    """One task fails (its run directory is held by another process, as by a killed worker's
    successor), the others finish; the same command again trains only what did not."""
    from vaecollapse.core.rundir import directory_lock

    sweep = tmp_path / "sweep.toml"
    sweep.write_text(SWEEP)
    out = tmp_path / "out"
    assert run_cli("sweep", str(sweep), "--out", str(out), "--run", "0").code == 0
    held = out / "runs" / "p001"
    held.mkdir(parents=True)
    with directory_lock(held):
        first = run_cli("sweep", str(sweep), "--out", str(out), "--backend", "ray")
    assert first.code == 2 and "point(s) 1, 3 did not finish on Ray" in _said(first)
    finished = {i: (out / "runs" / f"p{i:03d}" / "model.pt").stat().st_mtime_ns for i in (0, 2)}
    assert not (out / "runs" / "p003" / "model.pt").exists()  # trained with point 1, in one batch
    again = run_cli("sweep", str(sweep), "--out", str(out), "--backend", "ray")
    assert again.code == 0, again.err
    assert "4 of 4 points finished" in again.out
    for i, stamp in finished.items():
        assert (out / "runs" / f"p{i:03d}" / "model.pt").stat().st_mtime_ns == stamp


def test_ray_missing_exits_2_with_the_install_command(run_cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as if not installed
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(SWEEP)
    result = run_cli("sweep", str(sweep), "--out", str(tmp_path / "out"), "--backend", "ray")
    assert result.code == 2 and "pip install 'vaecollapse[ray]'" in _said(result)
    assert not (tmp_path / "out").exists()


def test_an_unreachable_cluster_exits_2_naming_it(run_cli, tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(SWEEP)
    address = f"127.0.0.1:{port}"
    result = run_cli(
        "sweep", str(sweep), "--out", str(tmp_path / "out"), "--backend", "ray",
        "--address", address,
    )  # fmt: skip
    assert result.code == 2 and f"cannot reach the Ray cluster at --address {address}" in _said(
        result
    )
    assert not (tmp_path / "out").exists()
    bad = run_cli("sweep", str(sweep), "--out", str(tmp_path / "out"), "--address", address)
    assert bad.code == 2 and "--backend ray" in bad.err
