"""Pieces shared by the subcommands: data options, settings gathered from files and flags, JSON
output."""

from __future__ import annotations

import json
from typing import Any

import click

from vaecollapse.core.data import DataSpec
from vaecollapse.core.errors import InputError
from vaecollapse.core.options import (
    command_options,
    from_command_line,
    read_settings_file,
    split_settings,
)


def print_json(obj: Any) -> None:
    """One JSON object on stdout."""
    click.echo(json.dumps(obj, indent=2, allow_nan=False, default=str))


# The data options of every command that loads a data set; `data info` names it as an argument.
data_options = command_options(DataSpec)
data_options_without_name = command_options(DataSpec, exclude=("dataset",))


def data_spec(flags: dict[str, Any], **given: Any) -> DataSpec:
    """The DataSpec of a command's data options (``given``: values from elsewhere)."""
    return DataSpec(**(split_settings(from_command_line(flags, DataSpec), DataSpec) | given))


def gathered_settings(
    config_file: str | None, flags: dict[str, Any], sections: tuple[type, ...],
    defaults: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A command's settings: ``defaults``, then the ``--config`` file's, then the flags', each
    overriding the one before, every value checked against its declaration."""
    settings = dict(defaults or {})
    if config_file is not None:
        if not config_file.strip():
            raise InputError("--config is empty; name a .toml or .yaml file, or leave it out.")
        settings |= read_settings_file(config_file, *sections)
    return settings | from_command_line(flags, *sections)
