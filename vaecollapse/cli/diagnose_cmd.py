"""``vaecollapse diagnose RUN_DIR``: which latent dimensions collapsed, how badly, and why."""

from __future__ import annotations

import click

from ..diagnostics.runs import diagnose_run, format_report, write_diagnosis
from .common import print_json


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--epsilon", type=float, default=0.01, show_default=True, help="KL threshold ε.")
@click.option("--delta", type=float, default=0.05, show_default=True, help="Tolerated share δ.")
@click.option(
    "--iwae-k",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Importance samples for the log-likelihood (0: skip).",
)
@click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of a table.")
def diagnose(
    run_dir: str, epsilon: float, delta: float, iwae_k: int, split: str, as_json: bool
) -> None:
    """Diagnose a run made by `vaecollapse train`: per-dimension KL, (ε,δ)-collapse, active units,
    IWAE, theory vs learned (linear models) and a verdict. Writes diagnosis.json,
    collapse_curve.png, kl_per_dim.png and encoder_std.png into RUN_DIR."""
    report, _ = diagnose_run(run_dir, epsilon=epsilon, delta=delta, iwae_k=iwae_k, split=split)
    written = write_diagnosis(report, run_dir)
    if as_json:
        print_json(report.to_json())
        return
    click.echo(format_report(report))
    click.echo("wrote " + ", ".join(str(p) for p in written))
