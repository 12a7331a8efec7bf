"""What the live monitors share: debounced on/off states of many items (latent dimensions, codes),
their JSONL records kept and read back for a resumed run, the events' dispatch, and a TensorBoard
writer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaecollapse.core.errors import InputError
from vaecollapse.core.fileio import write_text_atomic
from vaecollapse.core.logs import LOGGER

TENSORBOARD_EXTRA = "pip install 'vaecollapse[tensorboard]'  (or: pip install tensorboard)"
AT_START, FLAGGED, CLEARED = "at-start", "flagged", "cleared"


@dataclass
class ItemState:
    """One item's debounced state: ``flagged`` since ``since``; a different raw state seen
    ``pending`` checks in a row, from ``pending_since``; how often it was flagged and cleared."""

    flagged: bool
    since: int
    pending: int = 0
    pending_since: int = 0
    flags: int = 0
    clears: int = 0


@dataclass(frozen=True)
class Change:
    """An item's state changing for good: ``kind`` AT_START (flagged at the first check),
    FLAGGED or CLEARED; ``since``: the check where the new state began."""

    item: int
    kind: str
    since: int


class Hysteresis:
    """Debounced states of ``size`` items: at the first check the flagged ones are reported as
    AT_START; after that a change is confirmed once it has held ``patience`` checks in a row, and
    dated from the check where it began (an item hovering at its threshold does not flip every
    check)."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.states: list[ItemState] | None = None

    def step(self, flagged: set[int], size: int, epoch: int) -> list[Change]:
        """Move every item's state on by the check at ``epoch``; the confirmed changes."""
        if self.states is None:
            self.states = [ItemState(j in flagged, epoch) for j in range(size)]
            return [Change(j, AT_START, epoch) for j in sorted(flagged)]
        changes = []
        for j, state in enumerate(self.states):
            if (j in flagged) == state.flagged:
                state.pending = 0
                continue
            if state.pending == 0:
                state.pending_since = epoch
            state.pending += 1
            if state.pending < self.patience:
                continue
            state.flagged, state.since, state.pending = j in flagged, state.pending_since, 0
            if state.flagged:
                state.flags += 1
            else:
                state.clears += 1
            changes.append(Change(j, FLAGGED if state.flagged else CLEARED, state.since))
        return changes


def read_records(path: Path | None) -> list[dict]:
    """The JSON lines a monitor wrote to ``path`` before (none when it does not exist)."""
    if path is None or not path.exists():
        return []
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line]
    except ValueError:
        raise InputError(
            f"{path} is not a monitor record (a line is not JSON); remove it or give another out."
        ) from None


def summary_writer(target: Any):
    """A TensorBoard writer: ``target`` itself when it has ``add_scalar``, else one writing into
    the log directory ``target``; None for None."""
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


class RecordedMonitor:
    """What both live monitors do around their own measurement: a check every ``every`` epochs,
    one JSON record a check kept in ``out`` (rewritten atomically; a resumed run continues it and
    redoes the checks from the epoch it resumes at), the stop rule's verdict, and the events
    logged and passed to ``on_event``. A monitor defines ``_replay`` (its states from
    ``records``) and ``_stop_reason(record)``."""

    def _start_records(self, every: int, out, tensorboard: Any, on_event) -> None:
        if on_event is not None and not callable(on_event):
            raise InputError(f"on_event must be a function of an event; got {on_event!r}.")
        self.every, self.on_event = every, on_event
        self.out = None if out is None else Path(out)
        self.records: list[dict] = read_records(self.out)
        self.writer = summary_writer(tensorboard)
        self.stop_reason: str | None = None
        self._replay()

    def _replay(self) -> None:
        raise NotImplementedError

    def _stop_reason(self, record: dict) -> str | None:
        raise NotImplementedError

    @property
    def should_stop(self) -> bool:
        return self.stop_reason is not None

    def _due(self, epoch: int) -> bool:
        """Whether ``epoch`` is a check; the records from ``epoch`` on are dropped first (a
        resumed run redoes them)."""
        if epoch % self.every:
            return False
        kept = [r for r in self.records if r["epoch"] < epoch]
        if len(kept) != len(self.records):
            self.records = kept
            self._replay()
        return True

    def _publish(self, record: dict, events: list) -> list[str]:
        """Keep ``record``, judge the stop rule, rewrite ``out``, and log each event (each has a
        ``message``) and pass it to ``on_event``; the events' messages."""
        self.records.append(record)
        self.stop_reason = self._stop_reason(record)
        if self.out is not None:
            write_text_atomic(self.out, "".join(json.dumps(r) + "\n" for r in self.records))
        for event in events:
            LOGGER.info(event.message)
            if self.on_event is not None:
                self.on_event(event)
        return [event.message for event in events]
