"""User-facing errors. Each carries a one-paragraph message; the CLI turns them into exit code 2."""

from __future__ import annotations


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
