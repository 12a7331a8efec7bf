"""``vaecollapse sweep FILE``: a grid of runs declared in a file (``vaecollapse.studies.sweep``)."""

from __future__ import annotations

from pathlib import Path

import click

from vaecollapse.core.errors import InputError
from vaecollapse.core.fileio import make_directory
from vaecollapse.core.rundir import claimed_directory, mark_directory, usable_directory
from vaecollapse.studies.distributed import start_ray, train_on_ray
from vaecollapse.studies.sweep import (
    collect,
    point_label,
    prepare_points,
    read_sweep,
    record_definition,
    train_points,
    write_summary,
)
from vaecollapse.training.batched import batch_groups


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
@click.option(
    "--backend",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Train here, or as Ray tasks (one per group of points that share a batch).",
)
@click.option("--address", help="Ray cluster to join (host:port, ray://host:port or auto).")
@click.option(
    "--cpus-per-task", type=click.IntRange(min=1), default=1, show_default=True,
    help="CPUs each Ray task asks for (its torch threads).",
)  # fmt: skip
def sweep_command(
    file: str,
    out: str | None,
    list_runs: bool,
    run_index: int | None,
    collect_only: bool,
    device: str,
    backend: str,
    address: str | None,
    cpus_per_task: int,
) -> None:
    """Train, diagnose and summarise a grid of runs declared in FILE (TOML or YAML): train's
    settings under their flags' names, and a [grid] table giving each varied setting's values
    (seed among them). Points that can share a batch train as one batched model. Writes
    sweep.csv, summary.md, sweep.png and one run directory per point (runs/pNNN) to --out."""
    sweep = read_sweep(file)
    if address is not None and backend != "ray":
        raise click.UsageError("--address names a Ray cluster; give it with --backend ray.")
    if backend == "ray" and (run_index is not None or collect_only):
        raise click.UsageError("--backend ray trains every point; --run and --collect run here.")
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
        directory = usable_directory(out, "sweep")
        dataset, runs = prepare_points(sweep, directory, [run_index])
        make_directory(directory)
        mark_directory(directory, "sweep")
        record_definition(directory, sweep)
        train_points(runs, dataset, device)
        label = point_label(sweep.points[run_index])
        click.echo(f"point {run_index} ({label}) trained into {directory}/runs")
        return
    directory = usable_directory(out, "sweep")
    if backend == "ray":  # Ray present and its cluster reachable, before anything is written
        start_ray(address)
    if not collect_only:  # every point built and checked before the directory is touched
        dataset, runs = prepare_points(sweep, directory, range(len(sweep.points)))
    with claimed_directory(out, "sweep") as directory:
        record_definition(directory, sweep)
        if backend == "ray":
            groups = batch_groups(runs)
            train_on_ray(
                sweep, directory, groups, address=address, cpus_per_task=cpus_per_task,
                device=device,
            )  # fmt: skip
        elif not collect_only:
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
