"""A live collapse monitor for any training loop: every few epochs it diagnoses the model on a
fixed set of rows, writes one JSON line, optionally TensorBoard scalars and histograms, and
reports events — a dimension collapsing or reviving — so a user watches collapse happen.

    monitor = CollapseMonitor(model, x_val, out="monitor.jsonl", stop_when="level-collapsed")
    for epoch in range(1, epochs + 1):
        train_one_epoch(...)
        monitor.update(epoch)          # -> ["dimension 7 of z collapsed at epoch 12 ..."]
        if monitor.should_stop:
            break

The model is anything ``vaecollapse.diagnose`` accepts (this toolkit's models, a latent-model
protocol implementation, or a user's encoder with the adapter's options).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vaecollapse.core.adapters import as_latent_model, as_tensor_data
from vaecollapse.core.diagnostics.report import _check_settings, diagnose_model
from vaecollapse.core.errors import InputError
from vaecollapse.core.tracking import AT_START, FLAGGED, Hysteresis, RecordedMonitor

DEFAULT_ROWS = 2048  # rows diagnosed at each update: enough for AU and MI, cheap next to an epoch


def monitored_rows(split_rows: int, split: str = "test") -> str:
    """What a table or figure calls the rows a trainer's monitor diagnoses in a split of
    ``split_rows`` rows: the first DEFAULT_ROWS, or all of a smaller split."""
    if split_rows <= DEFAULT_ROWS:
        return f"all {split_rows} {split} rows"
    return f"first {DEFAULT_ROWS} {split} rows"


DEFAULT_PATIENCE = 2  # checks a new state must hold before it is reported
STOP_RULES = ("level-collapsed",)


@dataclass(frozen=True)
class CollapseEvent:
    """A dimension's state changing for good: ``kind`` is ``collapsed``, ``revived`` or
    ``collapsed-at-start`` (already collapsed at the first check); ``epoch``: when the new state
    began; ``confirmed_at``: the check that confirmed it (``patience`` checks later)."""

    level: str
    dim: int
    kind: str
    epoch: int
    confirmed_at: int
    mean_kl: float
    share_below: float
    epsilon: float

    @property
    def message(self) -> str:
        j, name, eps = self.dim, self.level, self.epsilon
        if self.kind == "revived":
            measured = f"KL ≥ ε = {eps:g} for {1 - self.share_below:.0%} of the rows"
        else:
            measured = f"KL < ε = {eps:g} for {self.share_below:.0%} of the rows"
        measured += f"; mean KL {self.mean_kl:.3g}"
        if self.kind == "collapsed-at-start":
            first = f"is collapsed at the first check, epoch {self.epoch}"
            return f"dimension {j} of {name} {first} ({measured})"
        held = (
            "" if self.confirmed_at == self.epoch else f"; held through epoch {self.confirmed_at}"
        )
        return f"dimension {j} of {name} {self.kind} at epoch {self.epoch} ({measured}{held})"


class CollapseMonitor(RecordedMonitor):
    """Diagnoses ``model`` on the first ``rows`` rows of ``data`` (and ``y``) every ``every``
    epochs. ``out``: a JSONL file, rewritten atomically at each update (earlier lines are kept,
    so a resumed run continues it); ``tensorboard``: a log directory or a ``SummaryWriter``
    (``kl/<level>/dim_<j>`` scalars, ``encoder_std/<level>`` histograms, ``mutual_information``
    and ``active_units`` per level).

    A dimension already collapsed at the first update is reported then. After that a change —
    collapsing or reviving — is reported once it has held for ``patience`` updates in a row
    (hysteresis: a dimension whose KL hovers around ε does not flip every epoch), dated from the
    update where it began. ``on_event(event)`` is called with each :class:`CollapseEvent`.
    ``stop_when``: ``"level-collapsed"`` (every dimension of a level collapsed, or its mean KL
    per dimension below ε, for ``patience`` updates in a row) or a function of the latest record
    returning True to stop; ``should_stop`` and ``stop_reason`` then say so, for a hand-written
    loop to break on. ``summary()`` says per dimension when it collapsed for good."""

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
        patience: int = DEFAULT_PATIENCE,
        on_event: Callable[[CollapseEvent], Any] | None = None,
        stop_when: str | Callable[[dict], bool] | None = None,
        **adapter: Any,
    ) -> None:
        _check_settings(epsilon, delta, eta_enc)
        if every < 1 or rows < 1 or patience < 1:
            raise InputError(
                f"every, rows and patience must be at least 1; got {every}, {rows} and {patience}."
            )
        if stop_when is not None and not callable(stop_when) and stop_when not in STOP_RULES:
            raise InputError(
                f"stop_when must be one of {STOP_RULES} or a function of the latest record; got "
                f"{stop_when!r}."
            )
        self.model = as_latent_model(model, eta_enc=eta_enc, **adapter)
        self.x = as_tensor_data(data)[:rows]
        self.y = None if y is None else as_tensor_data(y)[:rows]
        self.epsilon, self.delta = epsilon, delta
        self.patience, self.stop_when = patience, stop_when
        self._start_records(every, out, tensorboard, on_event)

    def _replay(self) -> None:
        """The debounced states and the stop rule's counts from the records kept so far."""
        self.dimensions: dict[str, Hysteresis] = {}
        self.collapsed_run: dict[str, int] = {}
        for record in self.records:
            self._advance(record["levels"], record["epoch"])

    def update(self, epoch: int) -> list[str]:
        """Diagnose now if ``epoch`` is one of every ``every``-th; returns the events' messages,
        which are also logged (and passed to ``on_event``)."""
        if not self._due(epoch):
            return []
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
            if level.is_grid:
                levels[name]["latent_shape"] = list(level.latent_shape)
                levels[name]["kl_per_channel"] = level.kl_per_channel.tolist()
                levels[name]["collapsed_channels"] = level.collapsed_channels
        events = self._advance(levels, epoch)
        record = {"epoch": epoch, "levels": levels, "events": [e.message for e in events]}
        if previous is not None:
            first = next(iter(levels))
            change = levels[first]["kl_total"] - previous[first]["kl_total"]
            record["trend"] = f"KL of {first} {'+' if change >= 0 else ''}{change:.4g} nats"
        if self.writer is not None:
            self._to_tensorboard(report, epoch)
        return self._publish(record, events)

    def _advance(self, levels: dict, epoch: int) -> list[CollapseEvent]:
        """Move every dimension's debounced state on by one check; the confirmed changes."""
        events = []
        for name, level in levels.items():
            raw = set(level["collapsed"])
            kl, below = level["kl_per_dim"], level["share_below_epsilon"]
            whole = len(raw) == len(kl) or level["kl_total"] < self.epsilon * len(kl)
            self.collapsed_run[name] = self.collapsed_run.get(name, 0) + 1 if whole else 0
            tracked = self.dimensions.setdefault(name, Hysteresis(self.patience))
            for change in tracked.step(raw, len(kl), epoch):
                kind = {AT_START: "collapsed-at-start", FLAGGED: "collapsed"}.get(
                    change.kind, "revived"
                )
                j = change.item
                events.append(CollapseEvent(name, j, kind, change.since, epoch, kl[j], below[j],
                                            self.epsilon))  # fmt: skip
        return events

    def _stop_reason(self, record: dict) -> str | None:
        if self.stop_when is None:
            return None
        if callable(self.stop_when):
            return "stop_when returned True" if self.stop_when(record) else None
        for name, run in self.collapsed_run.items():
            if run >= self.patience:
                return (
                    f"every dimension of {name} has been collapsed for {run} checks in a row "
                    f"(patience {self.patience}), up to epoch {record['epoch']}"
                )
        return None

    def summary(self) -> dict[str, list[dict]]:
        """Per level and dimension: its state, the epoch it has held it ``since`` (for a
        collapsed dimension: when it collapsed for good, so far), and how often it collapsed
        and revived."""
        return {
            name: [
                {
                    "dim": j,
                    "state": "collapsed" if s.flagged else "active",
                    "since": s.since,
                    "collapses": s.flags,
                    "revivals": s.clears,
                }
                for j, s in enumerate(tracked.states)
            ]
            for name, tracked in self.dimensions.items()
        }

    def _to_tensorboard(self, report, epoch: int) -> None:
        for name, level in report.levels.items():
            # a grid's thousands of values as one scalar per channel
            unit, values = ("channel", level.kl_per_channel) if level.is_grid else (
                "dim", level.kl_per_dim)  # fmt: skip
            for j, kl in enumerate(values):
                self.writer.add_scalar(f"kl/{name}/{unit}_{j}", float(kl), epoch)
            self.writer.add_scalar(f"active_units/{name}", level.active_units, epoch)
            if level.mutual_information is not None:
                self.writer.add_scalar(
                    f"mutual_information/{name}", level.mutual_information[0], epoch
                )
            self.writer.add_histogram(f"encoder_std/{name}", level.encoder_std.flatten(), epoch)
        self.writer.flush()


def _device(model: Any) -> torch.device:
    parameter = next(iter(getattr(model, "parameters", lambda: iter(()))()), None)
    return torch.device("cpu") if parameter is None else parameter.device
