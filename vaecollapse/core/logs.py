"""Progress messages go through ``logging`` (logger ``vaecollapse``): silent in a library user's
program unless asked for, shown on stderr by the command line, which calls :func:`show_progress`
(as a script or notebook may)."""

from __future__ import annotations

import logging
import sys

LOGGER = logging.getLogger("vaecollapse")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a message comes (notebooks and test runners
    replace it)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def show_progress(level: int = logging.INFO) -> None:
    """Print vaecollapse's progress messages on stderr (once, however often this is called)."""
    if not progress_shown():
        LOGGER.addHandler(_StderrHandler())
    LOGGER.setLevel(level)


def progress_shown() -> bool:
    """Whether :func:`show_progress` is in effect (worker processes repeat the parent's choice)."""
    return any(isinstance(handler, _StderrHandler) for handler in LOGGER.handlers)
