"""``vaecollapse demo``: the main job on the embedded digits data (no network)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from vaecollapse.studies.demo import run_demo


@click.command()
@click.option("--out", default="vaecollapse-demo", show_default=True, help="Output directory.")
def demo(out: str) -> None:
    """Predict, train, diagnose and compare on scikit-learn's bundled 8x8 digits (no network).

    A linear VAE and a linear CVAE (quadrant task), each at three β's: the theory's predicted
    active dimensions beside those of short ELBO training runs, with their diagnoses and plots."""
    started = time.perf_counter()
    run_demo(out)
    click.echo(Path(out, "summary.md").read_text().rstrip())
    click.echo(
        f"\nwrote {out}/summary.md, summary.json, predicted_vs_observed.png, collapse_curves_*.png "
        f"and one diagnosed run directory per row ({time.perf_counter() - started:.0f} s)"
    )
