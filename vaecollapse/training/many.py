"""Training a set of runs — the one entry every study and reproduction trains through. Runs that
can share a batch (``batched.batch_groups``) train as one stacked model; the others one by one,
or ``jobs`` at a time in worker processes that split this process's threads: small models keep a
CPU's cores busier as separate processes than as one process's threads."""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import torch

from vaecollapse.core.data import Dataset
from vaecollapse.core.logs import LOGGER, progress_shown, show_progress
from vaecollapse.core.memory import keep_freed_memory
from vaecollapse.training.batched import Run, batch_groups, batch_refusal, train_batched
from vaecollapse.training.trainer import train


def train_many(
    runs: Sequence[Run],
    dataset: Dataset,
    *,
    device: str = "auto",
    progress: bool | None = None,
    log_every: int = 1,
    log_prefix: str = "",
    batch: bool = True,
    jobs: int = 1,
) -> list[list[dict]]:
    """Train every run (or resume it, or skip it when complete); returns each run's metrics.
    ``batch``: runs that can share a batch train as one; ``jobs``: how many of the others train
    at a time, each in its own process (a worker's error — a diverged run, a clashing
    configuration — is raised here once the runs already under way have finished)."""
    histories: list[list[dict]] = [[] for _ in runs]
    groups = batch_groups(runs) if batch else [[i] for i in range(len(runs))]
    alone = [group[0] for group in groups if len(group) == 1]
    if batch and len(runs) > 1 and alone:
        backbone = getattr(runs[alone[0]].model.config, "backbone", None)
        reason = batch_refusal(runs) or f"the {backbone} backbone is not batched"
        LOGGER.info(f"{log_prefix}{len(alone)} of {len(runs)} runs not batched ({reason})")
    for group in groups:
        if len(group) > 1:
            LOGGER.info(f"{log_prefix}training {len(group)} runs as one batch")
            trained = train_batched(
                [runs[i] for i in group], dataset, device=device, progress=progress,
                log_every=log_every, log_prefix=log_prefix,
            )  # fmt: skip
            for i, history in zip(group, trained, strict=True):
                histories[i] = history
    named = len(runs) > 1
    settings = {"device": device, "progress": progress, "log_every": log_every}
    prefixes = {
        i: f"[{runs[i].label or runs[i].run_dir.name}] " if named else log_prefix for i in alone
    }
    if jobs > 1 and len(alone) > 1:
        workers = min(jobs, len(alone))
        threads = max(1, torch.get_num_threads() // workers)
        spawn = multiprocessing.get_context("spawn")  # a forked torch process may deadlock
        LOGGER.info(f"{log_prefix}training {len(alone)} runs, {workers} at a time")
        with ProcessPoolExecutor(
            workers, spawn, initializer=_start_worker, initargs=(threads, progress_shown())
        ) as pool:
            futures = {
                i: pool.submit(_train_alone, runs[i], dataset, prefixes[i], settings) for i in alone
            }
            for i, future in futures.items():
                histories[i] = future.result()
    else:
        for i in alone:
            histories[i] = _train_alone(runs[i], dataset, prefixes[i], settings)
    return histories


def _train_alone(run: Run, dataset: Dataset, log_prefix: str, settings: dict) -> list[dict]:
    return train(
        run.model, dataset, run.config, run.run_dir, run_config=run.run_config,
        log_prefix=log_prefix, **settings,
    )  # fmt: skip


def _start_worker(threads: int, show: bool) -> None:
    """A worker: its share of the threads, the parent's choice of progress messages, and the
    command line's allocator setting (``keep_freed_memory``)."""
    torch.set_num_threads(threads)
    keep_freed_memory()
    if show:
        show_progress()
