"""A live collapse monitor for any training loop: every few epochs it diagnoses the model on a
fixed set of rows, writes one JSON line, optionally TensorBoard scalars and histograms, and
reports events — a dimension collapsing or reviving — so a user watches collapse happen.

    monitor = CollapseMonitor(model, x_val, out="monitor.jsonl")
    for epoch in range(1, epochs + 1):
        train_one_epoch(...)
        monitor.update(epoch)          # -> ["dimension 7 of z collapsed at epoch 12 ..."]

The model is anything ``vaecollapse.diagnose`` accepts (this toolkit's models, a latent-model
protocol implementation, or a user's encoder with the adapter's options).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .adapters import as_latent_model, as_tensor_data
from .diagnostics.report import _check_settings, diagnose_model
from .errors import InputError
from .fileio import write_text_atomic
from .logs import LOGGER

DEFAULT_ROWS = 2048  # rows diagnosed at each update: enough for AU and MI, cheap next to an epoch
TENSORBOARD_EXTRA = "pip install 'vaecollapse[tensorboard]'  (or: pip install tensorboard)"


def monitored_rows(split_rows: int, split: str = "test") -> str:
    """What a table or figure calls the rows a trainer's monitor diagnoses in a split of
    ``split_rows`` rows: the first DEFAULT_ROWS, or all of a smaller split."""
    if split_rows <= DEFAULT_ROWS:
        return f"all {split_rows} {split} rows"
    return f"first {DEFAULT_ROWS} {split} rows"


class CollapseMonitor:
    """Diagnoses ``model`` on the first ``rows`` rows of ``data`` (and ``y``) every ``every``
    epochs. ``out``: a JSONL file, rewritten atomically at each update (earlier lines are kept,
    so a resumed run continues it); ``tensorboard``: a log directory or a ``SummaryWriter``
    (``kl/<level>/dim_<j>`` scalars, ``encoder_std/<level>`` histograms, ``mutual_information``
    and ``active_units`` per level)."""

    def __init__(
        self,
        model: Any,
        data: Any,
        y: Any = None,
        *,
        every: int = 1,
        out: str | Path | None = None,
        tensorboard: Any = None,
        epsilon: float = 0.01,
        delta: float = 0.05,
        eta_enc: float = 1.0,
        rows: int = DEFAULT_ROWS,
        **adapter: Any,
    ) -> None:
        _check_settings(epsilon, delta, eta_enc)
        if every < 1 or rows < 1:
            raise InputError(f"every and rows must be at least 1; got {every} and {rows}.")
        self.model = as_latent_model(model, eta_enc=eta_enc, **adapter)
        self.x = as_tensor_data(data)[:rows]
        self.y = None if y is None else as_tensor_data(y)[:rows]
        self.every, self.epsilon, self.delta = every, epsilon, delta
        self.out = None if out is None else Path(out)
        self.records: list[dict] = self._earlier_records()
        self.writer = _summary_writer(tensorboard)

    def _earlier_records(self) -> list[dict]:
        if self.out is None or not self.out.exists():
            return []
        try:
            return [json.loads(line) for line in self.out.read_text().splitlines() if line]
        except ValueError:
            raise InputError(
                f"{self.out} is not a monitor record (a line is not JSON); remove it or give "
                "another out."
            ) from None

    def update(self, epoch: int) -> list[str]:
        """Diagnose now if ``epoch`` is one of every ``every``-th; returns the events, which are
        also logged."""
        if epoch % self.every:
            return []
        self.records = [r for r in self.records if r["epoch"] < epoch]  # a resumed run redoes
        previous = self.records[-1]["levels"] if self.records else None
        modes = {m: m.training for m in getattr(self.model, "modules", lambda: ())()}
        device = _device(self.model)
        with torch.no_grad():
            report = diagnose_model(
                self.model, self.x.to(device), None if self.y is None else self.y.to(device),
                epsilon=self.epsilon, delta=self.delta,
                generator=torch.Generator().manual_seed(0),  # same draws at every update
            )  # fmt: skip
        for module, training in modes.items():  # back to how the training loop had them
            module.train(training)
        levels = {}
        events = []
        for name, level in report.levels.items():
            information = level.mutual_information
            below = (level.kl < self.epsilon).double().mean(0)  # share of rows under ε, (d,)
            levels[name] = {
                "kl_per_dim": level.kl_per_dim.tolist(),
                "kl_total": level.kl_total,
                "collapsed": level.collapsed_dims,
                "active_units": level.active_units,
                "mutual_information": None if information is None else information[0],
                "encoder_std_mean": level.encoder_std.double().mean(0).tolist(),
                "share_below_epsilon": below.tolist(),
            }
            if previous is not None and name in previous:
                events += _events(name, previous[name], levels[name], epoch, self.epsilon)
        record = {"epoch": epoch, "levels": levels, "events": events}
        if previous is not None:
            first = next(iter(levels))
            change = levels[first]["kl_total"] - previous[first]["kl_total"]
            record["trend"] = f"KL of {first} {'+' if change >= 0 else ''}{change:.4g} nats"
        self.records.append(record)
        if self.out is not None:
            write_text_atomic(self.out, "".join(json.dumps(r) + "\n" for r in self.records))
        if self.writer is not None:
            self._to_tensorboard(report, epoch)
        for event in events:
            LOGGER.info(event)
        return events

    def _to_tensorboard(self, report, epoch: int) -> None:
        for name, level in report.levels.items():
            for j, kl in enumerate(level.kl_per_dim):
                self.writer.add_scalar(f"kl/{name}/dim_{j}", float(kl), epoch)
            self.writer.add_scalar(f"active_units/{name}", level.active_units, epoch)
            if level.mutual_information is not None:
                self.writer.add_scalar(
                    f"mutual_information/{name}", level.mutual_information[0], epoch
                )
            self.writer.add_histogram(f"encoder_std/{name}", level.encoder_std.flatten(), epoch)
        self.writer.flush()


def _events(name: str, before: dict, now: dict, epoch: int, epsilon: float) -> list[str]:
    collapsed, revived = (
        sorted(set(now["collapsed"]) - set(before["collapsed"])),
        sorted(set(before["collapsed"]) - set(now["collapsed"])),
    )
    kl, below = now["kl_per_dim"], now["share_below_epsilon"]
    return [
        f"dimension {j} of {name} collapsed at epoch {epoch} (KL < ε = {epsilon:g} for "
        f"{below[j]:.0%} of the rows; mean KL {kl[j]:.3g})"
        for j in collapsed
    ] + [
        f"dimension {j} of {name} revived at epoch {epoch} (KL ≥ ε = {epsilon:g} for "
        f"{1 - below[j]:.0%} of the rows; mean KL {kl[j]:.3g})"
        for j in revived
    ]


def _device(model: Any) -> torch.device:
    parameter = next(iter(getattr(model, "parameters", lambda: iter(()))()), None)
    return torch.device("cpu") if parameter is None else parameter.device


def _summary_writer(target: Any):
    if target is None:
        return None
    if hasattr(target, "add_scalar"):
        return target
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise InputError(
            f"TensorBoard logging needs the tensorboard package, which is not installed: "
            f"{TENSORBOARD_EXTRA}."
        ) from None
    return SummaryWriter(str(target))
