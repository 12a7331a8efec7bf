"""Ray as the engine that runs a sweep's points: each group of points that can share a batch (or a
point alone) becomes one Ray task with a CPU request, on a local Ray instance or on a cluster.

Tasks write into the sweep's output directory exactly as a local run does (run directories under
``runs/``, each locked by the process that trains it), so a sweep may be started with one backend
and finished with the other, and a finished point is never trained again. Every node must see the
output directory and the data set's files at the same paths (a shared filesystem).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path

from vaecollapse.core.errors import InputError
from vaecollapse.core.logs import LOGGER

INSTALL = "pip install 'vaecollapse[ray]' (or pip install ray)"
CONNECT_SECONDS = 5.0


def start_ray(address: str | None):
    """The ``ray`` module, connected to the cluster at ``address`` (``host:port``, ``ray://...``
    or ``auto``) or to a new local instance with this machine's CPUs (the one already running
    in this process, if any). A missing Ray or an unreachable address is an InputError that says
    what to do."""
    try:
        import ray
    except ImportError:
        raise InputError(f"--backend ray needs Ray, which is not installed: {INSTALL}.") from None
    if address not in (None, "auto"):
        _check_reachable(address)
    if ray.is_initialized():
        return ray
    try:
        ray.init(
            address=address, include_dashboard=False, log_to_driver=False,
            configure_logging=False,
        )  # fmt: skip
    except ConnectionError as exc:
        raise InputError(f"cannot connect to the Ray cluster at {address}: {exc}") from None
    return ray


def _check_reachable(address: str) -> None:
    """Refuse, within seconds, an address nothing listens on (Ray itself retries for minutes)."""
    host_port = address.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(
            f"--address {address} is not host:port (or ray://host:port, or auto); e.g. the "
            "address `ray start --head` prints."
        )
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS):
            pass
    except OSError as exc:
        raise InputError(
            f"cannot reach the Ray cluster at --address {address} ({exc.strerror or exc}); start "
            "it with `ray start --head` and give the address it prints."
        ) from None


def _train_group(sweep, out: str, indices: list[int], device: str, threads: int) -> list[int]:
    """A Ray task: train the points ``indices`` of ``sweep`` into ``out`` with ``threads`` torch
    threads (a group that can share a batch trains as one)."""
    import torch

    from vaecollapse.core.memory import keep_freed_memory
    from vaecollapse.studies.sweep import prepare_points, train_points

    torch.set_num_threads(threads)
    keep_freed_memory()
    dataset, runs = prepare_points(sweep, Path(out), indices)
    train_points(runs, dataset, device)
    return indices


def train_on_ray(
    sweep,
    out: Path,
    groups: Sequence[Sequence[int]],
    *,
    address: str | None = None,
    cpus_per_task: int = 1,
    device: str = "auto",
) -> None:
    """Train every group of points as one Ray task asking for ``cpus_per_task`` CPUs (and one GPU
    where ``device`` names CUDA). Waits for every task, so that all that can finish do, then
    raises the first failed task's error (a bad input as the InputError it is)."""
    ray = start_ray(address)
    gpus = 1 if device.startswith("cuda") else 0
    task = ray.remote(num_cpus=cpus_per_task, num_gpus=gpus)(_train_group)
    LOGGER.info(f"sweep: {len(groups)} task(s) on Ray, {cpus_per_task} CPU(s) each")
    pending = [task.remote(sweep, str(out), list(group), device, cpus_per_task) for group in groups]
    failures = []
    for reference, group in zip(pending, groups, strict=True):
        try:
            ray.get(reference)
            LOGGER.info(f"sweep: Ray trained point(s) {', '.join(map(str, group))}")
        except ray.exceptions.RayTaskError as exc:
            failures.append((group, exc))
    if failures:
        group, exc = failures[0]
        failed = ", ".join(str(i) for g, _ in failures for i in g)
        if isinstance(exc.cause, InputError):
            raise InputError(
                f"point(s) {failed} did not finish on Ray; the others did. Point(s) "
                f"{', '.join(map(str, group))}: {exc.cause}"
            ) from None
        raise exc
