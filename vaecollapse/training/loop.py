"""The one training loop: epochs, minibatch steps, the records of ``metrics.jsonl``, checkpoints,
resume, the finiteness guard, test evaluation and the messages a failure leaves, written once
over a *strategy* that holds the models — one run (``trainer.Alone``) or R runs stacked into one
model (``batched.Stacked``). Every run directory gets the same files whichever strategy trains it.

A strategy computes losses and sums with a leading run axis where it trains several runs (shape
``(R,)``) and without one where it trains one (shape ``()``); the loop reads both the same way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

from vaecollapse.core.data import Dataset, minibatch_indices
from vaecollapse.core.errors import InputError, Interrupted
from vaecollapse.core.fileio import WriteError
from vaecollapse.core.logs import LOGGER
from vaecollapse.core.remedies import kl_weights
from vaecollapse.core.rundir import load_checkpoint, save_tensors, write_metrics
from vaecollapse.training.config import TrainConfig
from vaecollapse.training.optimizers import step_scheduler

# Metrics of an epoch that a sparse record sums over the epochs since the record before.
ADDITIVE_METRICS = frozenset({"seconds", "encoder_steps"})
EVALUATION_BATCH = 1024  # the least batch of an evaluation pass, which takes no gradients


class TrainingDivergedError(InputError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class Strategy(Protocol):
    """What the loop needs of the models it trains."""

    config: TrainConfig
    levels: tuple[str, ...]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None

    def minibatches(self, split: Any) -> tuple[Iterator[tuple], int, bool]:
        """This epoch's inputs per step, the number of steps, and whether every run sees the
        same inputs."""

    def losses(
        self, inputs: tuple, weights: dict[str, float], shared: bool, training: bool = True
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Each run's batch loss to minimise and its batch sums (``loss``, ``recon``,
        ``kl_<level>``). Outside ``training`` no remedy changes the loss (free bits)."""

    def before_step(self, weights: dict[str, float], epoch: int, step: int) -> None:
        """What precedes each minibatch step (He et al.'s aggressive encoder updates)."""

    def step(self, loss: torch.Tensor) -> None:
        """One optimizer step on every run's loss."""

    def train_mode(self, training: bool) -> None:
        """Switch the models between training and evaluation."""

    def epoch_extras(self, epoch: int) -> dict[str, Any]:
        """What the strategy adds to each run's record of the epoch just trained."""

    def checkpoint_states(self) -> list[dict[str, Any]]:
        """Each run's checkpoint entries besides its epoch and history: model, optimizer,
        scheduler, RNG states and the minibatch generator."""

    def resume(self, states: list[dict[str, Any]]) -> None:
        """Load each run's checkpoint (its model weights are already loaded)."""

    def final_weights(self) -> list[dict[str, torch.Tensor]]:
        """Each run's trained weights, for ``model.pt``."""


def split_sums(losses: Any, split: Any, batch_size: int) -> dict[str, torch.Tensor]:
    """The sums of ``losses(inputs, {}, True, training=False)`` over ``split``, divided by its
    rows: each run's mean loss, reconstruction and KL per level, in batches of at least
    ``EVALUATION_BATCH`` rows, without gradients."""
    totals: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for index in minibatch_indices(
            len(split), max(batch_size, EVALUATION_BATCH), shuffle=False, device=split.x.device
        ):
            _, sums = losses(split_inputs(split, index), {}, True, training=False)
            add_sums(totals, sums)
    return {key: value.double() / len(split) for key, value in totals.items()}


def split_inputs(split: Any, index: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The model's inputs for rows ``index`` of a split: ``(x,)``, or ``(x, y)`` for a CVAE."""
    return (split.x[index],) if split.y is None else (split.x[index], split.y[index])


def add_sums(totals: dict[str, torch.Tensor], sums: dict[str, torch.Tensor]) -> None:
    """Add a batch's sums to ``totals`` as device tensors (no host sync per step)."""
    for key, value in sums.items():
        totals[key] = totals.get(key, 0.0) + value.detach()


def due(epochs_done: int, every: int, epochs: int) -> bool:
    """Whether something done every ``every`` epochs (and after the last) is due now."""
    return epochs_done % every == 0 or epochs_done == epochs


def kept(directories: list[Path]) -> str:
    """Which checkpoints survive a failure of the runs training into ``directories`` (atomic
    writes keep the last complete one)."""
    if len(directories) > 1:
        return "each run keeps its last checkpoint"
    checkpoint_path = directories[0] / "checkpoint.pt"
    if not checkpoint_path.exists():
        return "no checkpoint had been written yet"
    try:
        epoch = load_checkpoint(checkpoint_path)["epoch"]
    except InputError:
        return f"{checkpoint_path} is kept"
    return f"the checkpoint of epoch {epoch} is kept in {checkpoint_path}"


def check_finite(loss: torch.Tensor, epoch: int, step: int, directories: list[Path]) -> None:
    """Raise ``TrainingDivergedError`` where any run's loss (``(R,)``, or ``()`` for one run) is
    NaN or infinite, naming the runs and the checkpoints kept."""
    finite = torch.isfinite(loss).reshape(-1)
    if bool(finite.all()):
        return
    where = ""
    if len(directories) > 1:
        bad = [str(directories[i]) for i in (~finite).nonzero().flatten().tolist()]
        where = f" in {', '.join(bad)}"
    value = float(loss.detach().reshape(-1)[~finite][0])
    raise TrainingDivergedError(
        f"The loss became {value} at epoch {epoch + 1}, step {step + 1}{where}; "
        f"{kept(directories)}. Lower the learning rate or check the data and hyper-parameters"
        + (", or train those runs apart." if where else ".")
    )


@dataclass
class Loop:
    """Training from ``start`` epochs to ``strategy.config.epochs``, writing into each run's
    ``directories`` entry (all locked by the caller); ``monitor``: a CollapseMonitor updated
    after every epoch."""

    strategy: Strategy
    data: Dataset
    directories: list[Path]
    monitor: Any = None

    @property
    def config(self) -> TrainConfig:
        return self.strategy.config

    def run(
        self, start: int, histories: list[list[dict]], show_bar: bool, log_every: int, prefix: str
    ) -> list[list[dict]]:
        """Train every run's remaining epochs; returns each run's records."""
        config, epochs, epoch = self.config, self.config.epochs, start
        unrecorded: list[dict[str, float]] = [{} for _ in histories]
        try:
            for epoch in range(start, epochs):
                records = self.one_epoch(epoch, show_bar)
                saving = due(epoch + 1, config.checkpoint_every, epochs)
                recording = saving or due(epoch + 1, config.record_every, epochs)
                for r, record in enumerate(records):
                    for key in ADDITIVE_METRICS & record.keys():
                        record[key] += unrecorded[r].pop(key, 0)
                    if recording:
                        histories[r].append(record)
                    else:
                        unrecorded[r] = {k: record[k] for k in ADDITIVE_METRICS & record.keys()}
                if self.monitor is not None:
                    self.monitor.update(epoch + 1)
                first = records[0]
                step_scheduler(self.strategy.scheduler, first.get("test_loss", first["train_loss"]))
                if saving:
                    self.save(epoch + 1, histories)
                if due(epoch + 1, log_every, epochs):
                    LOGGER.info(prefix + self.summary(records, epoch + 1))
            for weights, directory in zip(
                self.strategy.final_weights(), self.directories, strict=True
            ):
                save_tensors(weights, directory / "model.pt")
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted at epoch {epoch + 1} of {epochs}; {kept(self.directories)}. Run "
                "the same command again to resume."
            ) from None
        except WriteError as exc:
            raise WriteError(exc.path, f"{exc.reason}; {kept(self.directories)}") from None
        return histories

    def summary(self, records: list[dict], epoch: int) -> str:
        """The progress line of an epoch: one run's losses, or the range over several."""
        epochs = self.config.epochs
        if len(records) > 1:
            train = [r["train_loss"] for r in records]
            return (
                f"{len(records)} runs batched: epoch {epoch}/{epochs}  train {min(train):.4f} … "
                f"{max(train):.4f}"
            )
        (record,) = records
        line = f"epoch {epoch}/{epochs}  train {record['train_loss']:.4f}"
        if "test_loss" in record:
            line += f"  test {record['test_loss']:.4f}"
        return line

    def one_epoch(self, epoch: int, show_bar: bool) -> list[dict]:
        """Train one epoch; returns each run's record of it."""
        strategy, config, split = self.strategy, self.config, self.data.train
        started = time.perf_counter()
        batches, steps, shared = strategy.minibatches(split)
        runs = len(self.directories)
        totals: dict[str, torch.Tensor] = {}
        label = f"epoch {epoch + 1}/{config.epochs}" + (f" ({runs} runs)" if runs > 1 else "")
        bar = tqdm(batches, total=steps, desc=label, disable=not show_bar, leave=False)
        weights: dict[str, float] = {}
        for step, inputs in enumerate(bar):
            weights = kl_weights(config, strategy.levels, epoch + step / steps)
            strategy.before_step(weights, epoch, step)
            loss, sums = strategy.losses(inputs, weights, shared)
            check_finite(loss, epoch, step, self.directories)
            strategy.step(loss)
            add_sums(totals, sums)
            if show_bar:  # reading the running KL syncs the device: only when a bar is shown
                seen = min((step + 1) * config.batch_size, len(split))
                kl = sum(float(v.mean()) for k, v in totals.items() if k.startswith("kl_")) / seen
                bar.set_postfix(loss=f"{float(loss.detach().mean()):.4g}", kl=f"{kl:.4g}")
        means = {k: (v.double() / len(split)).reshape(-1).tolist() for k, v in totals.items()}
        extras = strategy.epoch_extras(epoch)
        test = self.evaluate(self.data.test) if self.data.test is not None else None
        seconds = (time.perf_counter() - started) / runs
        levels = [k for k in means if k.startswith("kl_")]
        records = []
        for r in range(runs):
            record = {
                "epoch": epoch + 1,
                "train_loss": means["loss"][r],
                "recon": means["recon"][r],
                "kl": {k.removeprefix("kl_"): means[k][r] for k in levels},
                "kl_weight": weights,
                "lr": strategy.optimizer.param_groups[0]["lr"],
                **extras,
            }
            if test is not None:
                record["test_loss"] = test[r]
            records.append(record | {"seconds": seconds})
        return records

    def evaluate(self, split: Any) -> list[float]:
        """Each run's mean loss over ``split`` with every KL weight 1 (``split_sums``)."""
        self.strategy.train_mode(False)
        sums = split_sums(self.strategy.losses, split, self.config.batch_size)
        self.strategy.train_mode(True)
        return sums["loss"].reshape(-1).tolist()

    def save(self, epoch: int, histories: list[list[dict]]) -> None:
        """Each run's checkpoint and ``metrics.jsonl``, atomically."""
        states = self.strategy.checkpoint_states()
        for state, history, directory in zip(states, histories, self.directories, strict=True):
            save_tensors({"epoch": epoch, **state, "history": history}, directory / "checkpoint.pt")
            write_metrics(directory / "metrics.jsonl", history)
