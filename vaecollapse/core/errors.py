"""User-facing errors. Each carries a one-paragraph message; the CLI turns them into exit code 2."""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line (its type's name when it has none), for
    quoting inside one of our one-paragraph errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class InputError(ValueError):
    """Bad input from the user: wrong shapes, NaN, bad scales, unknown keys, unusable files."""

    exit_code = 2


class DataNotFoundError(InputError):
    """A data set's files are nowhere we looked and could not be downloaded."""


class CorruptDataError(InputError):
    """A data file exists but is truncated, corrupt or not the official release."""


class Interrupted(InputError):
    """Ctrl-C while work was under way; what was complete is kept. Exit code 130, as a shell
    reports a process stopped by SIGINT."""

    exit_code = 130


class MisreadingWarning(UserWarning):
    """A user's model whose outputs say they are read wrongly (a scale taken for a log-variance,
    probabilities for logits, an η_dec far from the residuals): the numbers would be wrong."""
