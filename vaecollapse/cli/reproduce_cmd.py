"""``vaecollapse reproduce``: re-run the papers' figures and tables, one command each."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import InputError
from ..experiments import REGISTRY, run_entry
from ..experiments.registry import collect_report, write_text


@click.command()
@click.argument("name", required=False)
@click.option("--list", "list_entries", is_flag=True, help="List the registered experiments.")
@click.option("--quick", is_flag=True, help="The small variant (minutes), asserting the claim.")
@click.option("--out", default="reproductions", show_default=True, help="Output directory.")
@click.option("--data-dir", help="Root holding the data sets (default: the usual search order).")
@click.option(
    "--jobs",
    default=1,
    show_default=True,
    help="Runs of a sweep trained at once, each in its own process with a share of the threads.",
)
@click.option(
    "--epochs",
    type=int,
    help="Train every run this many epochs instead of the entry's own count (the paper's), e.g. "
    "on a slow machine; a later call with more epochs resumes the same runs.",
)
@click.option(
    "--collect", is_flag=True, help="Print every comparison found in --out as one markdown report."
)
def reproduce(
    name: str | None,
    list_entries: bool,
    quick: bool,
    out: str,
    data_dir: str | None,
    jobs: int,
    epochs: int | None,
    collect: bool,
) -> None:
    """Run experiment NAME (or `all`): its runs (resuming what is complete in --out), a results
    CSV, its figures and a markdown table of our numbers beside the paper's."""
    if list_entries:
        for entry in REGISTRY.values():
            click.echo(f"{entry.name:<16} {entry.title}")
        return
    if collect:
        if not Path(out).is_dir():
            raise InputError(f"--out {out} is not a directory of reproductions.")
        click.echo(collect_report(out), nl=False)
        return
    if name is None:
        raise click.UsageError("give an experiment name, `all`, or --list.")
    if jobs < 1:
        raise InputError(f"--jobs must be at least 1; got {jobs}.")
    if epochs is not None and epochs < 1:
        raise InputError(f"--epochs must be at least 1; got {epochs}.")
    names = list(REGISTRY) if name == "all" else [name]
    if name != "all" and name not in REGISTRY:
        raise InputError(f"unknown experiment '{name}'; `vaecollapse reproduce --list` lists them.")
    lines = ["| entry | claim holds | wall s | training s |", "|---|---|---|---|"]
    failed, not_run = [], []
    for entry_name in names:
        try:
            result = run_entry(
                entry_name, out, quick=quick, data_dir=data_dir, jobs=jobs, epochs=epochs
            )
        except InputError as reason:
            if name != "all":
                raise
            # `all` goes on: the CIFAR-10 entries run only where CIFAR-10 is present
            optional = "cifar10" in REGISTRY[entry_name].data
            lines.append(f"| {entry_name} | not run: {reason} | — | — |")
            click.echo(f"{entry_name}: not run ({reason})", err=True)
            if not optional:
                not_run.append(entry_name)
            continue
        status = "yes" if result.claim_holds else "NO"
        if not result.claim_holds:
            failed.append(entry_name)
        lines.append(
            f"| {entry_name} | {status} | {result.seconds:.1f} | {result.train_seconds:.1f} |"
        )
        click.echo(
            f"{entry_name}: claim {'holds' if result.claim_holds else 'does NOT hold'} "
            f"({result.seconds:.1f} s); {out}/{entry_name}/comparison.md"
        )
    if name == "all":
        write_text(Path(out) / "summary.md", "\n".join(lines) + "\n")
    if failed:
        click.echo(f"claims not reproduced: {', '.join(failed)}", err=True)
    if not_run:
        raise InputError(
            f"{len(not_run)} entries could not run ({', '.join(not_run)}); their reasons are "
            f"above and in {out}/summary.md. The other entries' results are written."
        )
