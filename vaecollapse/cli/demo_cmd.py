"""``vaecollapse demo``: the main job on the embedded digits data (no network)."""

from __future__ import annotations

import click

from ..data import load_dataset
from .data_cmd import format_summary


@click.command()
def demo() -> None:
    """Run the main job on scikit-learn's bundled 8x8 digits (no network needed).

    For now it loads the embedded data set and its quadrant view and prints their summaries.
    """
    for source in ("digits", "digits-quadrant"):
        dataset = load_dataset(source)
        click.echo(format_summary(dataset, dataset.summary()))
        click.echo("")
