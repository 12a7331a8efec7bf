"""``vaecollapse sweep FILE``: a grid of runs declared in a file (``vaecollapse.sweep``)."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import InputError
from ..rundir import claimed_directory, usable_directory
from ..sweep import (
    collect,
    point_label,
    prepare_points,
    read_sweep,
    record_definition,
    train_points,
    write_summary,
)


@click.command("sweep")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", help="Output directory (re-running it resumes).")
@click.option(
    "--list-runs", is_flag=True, help="Print every point's index and settings; train nothing."
)
@click.option(
    "--run",
    "run_index",
    type=int,
    help="Train point I only (a cluster job array's job I); no summary.",
)
@click.option(
    "--collect", "collect_only", is_flag=True, help="Summarise the finished points; train nothing."
)
@click.option(
    "--device", default="auto", show_default=True, help="auto (CUDA when present), cpu or cuda[:N]."
)
def sweep_command(
    file: str,
    out: str | None,
    list_runs: bool,
    run_index: int | None,
    collect_only: bool,
    device: str,
) -> None:
    """Train, diagnose and summarise a grid of runs declared in FILE (TOML or YAML): train's
    settings under their flags' names, and a [grid] table giving each varied setting's values
    (seed among them). Points that can share a batch train as one batched model. Writes
    sweep.csv, summary.md, sweep.png and one run directory per point (runs/pNNN) to --out."""
    sweep = read_sweep(file)
    if list_runs:
        for index, point in enumerate(sweep.points):
            click.echo(f"{index:4d}  {point_label(point)}")
        return
    if out is None:
        raise click.UsageError("--out is required (except with --list-runs).")
    if run_index is not None and collect_only:
        raise click.UsageError("--run and --collect are two different calls; give one.")
    if run_index is not None:
        # a job of an array: only its own run directory is locked, so the jobs run side by side
        directory = usable_directory(out, "output")
        dataset, runs = prepare_points(sweep, directory, [run_index])
        directory.mkdir(parents=True, exist_ok=True)
        record_definition(directory, sweep)
        train_points(runs, dataset, device)
        label = point_label(sweep.points[run_index])
        click.echo(f"point {run_index} ({label}) trained into {directory}/runs")
        return
    directory = usable_directory(out, "output")
    if not collect_only:  # every point built and checked before the directory is touched
        dataset, runs = prepare_points(sweep, directory, range(len(sweep.points)))
    with claimed_directory(out, "output") as directory:
        record_definition(directory, sweep)
        if not collect_only:
            train_points(runs, dataset, device)
        results, missing = collect(sweep, directory)
        if not results:
            raise InputError(
                f"no point of the sweep in {directory} has finished; train them first (without "
                "--collect, or with --run I for each)."
            )
        write_summary(sweep, directory, results, missing)
    click.echo(Path(out, "summary.md").read_text().rstrip())
    click.echo(f"\nwrote {out}/sweep.csv, summary.md, sweep.png")
