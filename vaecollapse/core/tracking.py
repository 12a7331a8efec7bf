"""What the live monitors share: debounced on/off states of many items (latent dimensions, codes),
their JSONL records read back for a resumed run, and a TensorBoard writer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaecollapse.core.errors import InputError

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
