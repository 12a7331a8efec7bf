"""A live codebook monitor for any training loop: every few epochs it runs the quantiser (or the
model) over a fixed set of samples, writes one JSON line, optionally TensorBoard scalars, and
reports codes dying and reviving, so a user sees the codebook collapse as it happens.

    monitor = CodebookMonitor(quantizer, encodings_of_val, out="codebook.jsonl", stop_below=0.1)
    for epoch in range(1, epochs + 1):
        train_one_epoch(...)
        monitor.update(epoch)          # -> ["code 17 died at epoch 3 ...", ...]
        if monitor.should_stop:
            break
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from vaecollapse.core.codebook.collect import BATCH
from vaecollapse.core.codebook.report import CodebookReport, diagnose_codebook
from vaecollapse.core.errors import InputError
from vaecollapse.core.tracking import AT_START, FLAGGED, Hysteresis, RecordedMonitor

DEFAULT_PATIENCE = 2  # checks a new state must hold before it is reported


@dataclass(frozen=True)
class CodeEvent:
    """A code's state changing for good: ``kind`` is ``died``, ``revived`` or ``dead-at-start``;
    ``epoch``: when the new state began; ``confirmed_at``: the check that confirmed it."""

    code: int
    kind: str
    epoch: int
    confirmed_at: int
    count: int  # its assignments at the confirming check
    dead_share: float

    @property
    def message(self) -> str:
        rule = "never chosen" if self.dead_share == 0 else f"chosen ≤ {self.dead_share:.2%}"
        if self.kind == "dead-at-start":
            return f"code {self.code} is dead at the first check, epoch {self.epoch} ({rule})"
        held = (
            "" if self.confirmed_at == self.epoch else f"; held through epoch {self.confirmed_at}"
        )
        measured = rule if self.kind == "died" else f"chosen {self.count} times"
        return f"code {self.code} {self.kind} at epoch {self.epoch} ({measured}{held})"


class CodebookMonitor(RecordedMonitor):
    """Diagnoses the codebook of ``model`` (a quantiser or a model returning
    ``(quantized, indices, ...)``, see :func:`diagnose_codebook`) on ``data`` every ``every``
    epochs, over all of ``data``: keep it a fixed set, such as a validation split.

    ``out``: a JSONL file rewritten atomically at each update (earlier lines are kept, so a
    resumed run continues it); ``tensorboard``: a log directory or a ``SummaryWriter``
    (``codebook/used``, ``codebook/dead``, ``codebook/perplexity``). A code dead at the first
    update is reported then; after that a code dying or reviving is reported once the change has
    held ``patience`` updates in a row, dated from the update where it began. ``on_event(event)``
    is called with each :class:`CodeEvent`. ``stop_below``: a share of the codebook; once fewer
    codes than that are used for ``patience`` updates in a row, ``should_stop`` and
    ``stop_reason`` say so. ``summary()`` lists the dead codes and when each died."""

    def __init__(
        self,
        model: nn.Module,
        data: Any,
        *,
        codebook_size: int | None = None,
        every: int = 1,
        out: str | Path | None = None,
        tensorboard: Any = None,
        dead_share: float = 0.0,
        patience: int = DEFAULT_PATIENCE,
        on_event: Callable[[CodeEvent], Any] | None = None,
        stop_below: float | None = None,
        batch_size: int = BATCH,
    ) -> None:
        if every < 1 or patience < 1:
            raise InputError(f"every and patience must be at least 1; got {every} and {patience}.")
        if stop_below is not None and not 0 < stop_below <= 1:
            raise InputError(f"stop_below is a share of the codebook in (0, 1]; got {stop_below}.")
        self.model, self.data, self.codebook_size = model, data, codebook_size
        self.dead_share, self.patience = dead_share, patience
        self.stop_below, self.batch_size = stop_below, batch_size
        self._start_records(every, out, tensorboard, on_event)

    def _replay(self) -> None:
        """The debounced states and the stop rule's count from the records kept so far."""
        self.codes = Hysteresis(self.patience)
        self.below_run = 0
        for record in self.records:
            self._advance(record, record["epoch"])

    def update(self, epoch: int) -> list[str]:
        """Diagnose now if ``epoch`` is one of every ``every``-th; returns the events' messages,
        which are also logged (and passed to ``on_event``)."""
        if not self._due(epoch):
            return []
        report = diagnose_codebook(
            self.model, self.data, self.codebook_size, dead_share=self.dead_share,
            batch_size=self.batch_size,
        )  # fmt: skip
        record = {
            "epoch": epoch, "used": report.used, "dead": report.dead,
            "perplexity": report.perplexity, "codes_for_95": report.usage.codes_for_95,
            "codebook_size": report.usage.codebook_size, "counts": report.usage.counts,
        }  # fmt: skip
        events = self._advance(record, epoch)
        record["events"] = [event.message for event in events]
        if self.writer is not None:
            self._to_tensorboard(report, epoch)
        return self._publish(record, events)

    def _advance(self, record: dict, epoch: int) -> list[CodeEvent]:
        size = record["codebook_size"]
        if self.stop_below is not None:
            below = record["used"] < self.stop_below * size
            self.below_run = self.below_run + 1 if below else 0
        kinds = {AT_START: "dead-at-start", FLAGGED: "died"}
        events = []
        for change in self.codes.step(set(record["dead"]), size, epoch):
            kind = kinds.get(change.kind, "revived")
            count = record["counts"][change.item]
            events.append(CodeEvent(change.item, kind, change.since, epoch, count, self.dead_share))
        return events

    def _stop_reason(self, record: dict) -> str | None:
        if self.stop_below is None or self.below_run < self.patience:
            return None
        return (
            f"fewer than {self.stop_below:.0%} of the {record['codebook_size']} codes have been "
            f"used for {self.below_run} checks in a row (patience {self.patience}), up to epoch "
            f"{record['epoch']}: {record['used']} used"
        )

    def summary(self) -> list[dict]:
        """The codes dead now, each with the epoch it has been dead ``since`` and how often it
        died and revived."""
        states = self.codes.states or []
        return [
            {"code": j, "since": s.since, "deaths": s.flags, "revivals": s.clears}
            for j, s in enumerate(states)
            if s.flagged
        ]

    def _to_tensorboard(self, report: CodebookReport, epoch: int) -> None:
        self.writer.add_scalar("codebook/used", report.used, epoch)
        self.writer.add_scalar("codebook/dead", len(report.dead), epoch)
        self.writer.add_scalar("codebook/perplexity", report.perplexity, epoch)
        self.writer.flush()
