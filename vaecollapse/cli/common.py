"""Pieces shared by the subcommands: data options, JSON output."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from ..data import DataSpec


def print_json(obj: Any) -> None:
    """One JSON object on stdout."""
    click.echo(json.dumps(obj, indent=2, allow_nan=False, default=str))


def data_loading_options(func: Callable) -> Callable:
    """Options shaping how data is loaded: --data-dir, --digit, --view, --center, --no-verify."""
    options = [
        click.option(
            "--data-dir",
            type=click.Path(file_okay=False),
            help="Folder holding the data set's files (or a root with one folder per data set).",
        ),
        click.option(
            "--digit",
            "digits",
            type=click.IntRange(0, 9),
            multiple=True,
            help="Keep only this digit/class (repeatable).",
        ),
        click.option(
            "--view",
            type=click.Choice(["flat", "quadrant"]),
            default=None,
            help="flat images, or the quadrant task (x = bottom-left, y = the rest).",
        ),
        click.option(
            "--center", is_flag=True, help="Subtract the training mean (the paper does not)."
        ),
        click.option(
            "--no-verify",
            is_flag=True,
            help="Skip md5 checks (for files you made yourself); structure is still checked.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def make_spec(
    source: str,
    data_dir: str | None,
    digits: tuple[int, ...],
    view: str | None,
    center: bool,
    no_verify: bool,
) -> DataSpec:
    return DataSpec(
        source=source,
        view=view,
        digits=digits or None,
        center=center,
        data_dir=data_dir,
        verify=not no_verify,
    )
