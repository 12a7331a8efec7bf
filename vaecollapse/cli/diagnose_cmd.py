"""``vaecollapse diagnose RUN_DIR``: which latent dimensions collapsed, how badly, and why."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from vaecollapse.cli.common import print_json
from vaecollapse.core.data import DataSpec
from vaecollapse.core.diagnostics.report import CollapseCriteria
from vaecollapse.core.errors import InputError
from vaecollapse.core.fileio import check_name_lengths
from vaecollapse.core.options import command_options, from_command_line, split_settings
from vaecollapse.core.rundir import check_owner, directory_lock, read_run_config, stored_data_spec
from vaecollapse.training.runs import diagnose_run, format_report, write_diagnosis


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@command_options(CollapseCriteria)
@click.option(
    "--iwae-k",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Importance samples for the log-likelihood (0: skip).",
)
@click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True)
@command_options(DataSpec, only=("data_dir",))
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of a table.")
def diagnose(run_dir: str, iwae_k: int, split: str, as_json: bool, **flags: Any) -> None:
    """Diagnose a run made by `vaecollapse train`: per-dimension KL, (ε,δ)-collapse, active units,
    IWAE, theory vs learned (linear models) and a verdict. Writes diagnosis.json,
    collapse_curve.png, kl_per_dim.png and encoder_std.png into RUN_DIR."""
    given = from_command_line(flags, CollapseCriteria, DataSpec)
    criteria = CollapseCriteria(**split_settings(given, CollapseCriteria))
    data_dir = given.get("data_dir")  # where the run's data set is now, if it has moved
    check_name_lengths(run_dir, "RUN_DIR")
    run = Path(run_dir)
    if not run.is_dir():
        raise InputError(f"{run} is not a directory; give a run directory of vaecollapse train.")
    stored = read_run_config(run)  # before the lock: a folder that is not a run gets no file
    check_owner(run, "run", "RUN_DIR")
    with directory_lock(run, shared=True):  # not while a trainer writes into it
        dataset = None
        if data_dir is not None:
            dataset = replace(stored_data_spec(run, stored), data_dir=data_dir).load()
        report, _ = diagnose_run(
            run,
            epsilon=criteria.epsilon,
            delta=criteria.delta,
            iwae_k=iwae_k,
            split=split,
            dataset=dataset,
        )
        # shown before the files are written, so a read-only run directory still gets it
        if as_json:
            print_json(report.to_dict())
        else:
            click.echo(format_report(report))
        written = write_diagnosis(report, run, label=run.name)
    if not as_json:
        click.echo("wrote " + ", ".join(str(p) for p in written))
