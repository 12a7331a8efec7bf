"""``vaecollapse reproduce``: re-run the papers' figures and tables, one command each."""

from __future__ import annotations

from pathlib import Path

import click

from vaecollapse.core.data import DataSpec
from vaecollapse.core.errors import InputError
from vaecollapse.core.fileio import write_text_atomic
from vaecollapse.core.options import MAX_SEED, command_options, from_command_line
from vaecollapse.core.pages import write_report
from vaecollapse.core.rundir import claimed_directory
from vaecollapse.reproductions import REGISTRY, run_entry
from vaecollapse.reproductions.registry import (
    by_paper,
    collect_report,
    entry_names,
    entry_on,
    found_results,
    record_results,
)


@click.command()
@click.argument("name", required=False)
@click.option("--list", "list_entries", is_flag=True, help="List the registered experiments.")
@click.option("--quick", is_flag=True, help="The small variant (minutes), asserting the claim.")
@click.option("--out", default="reproductions", show_default=True, help="Output directory.")
@command_options(DataSpec, only=("data_dir", "verify"))
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Runs of a sweep trained at once, each in its own process with a share of the threads "
    "(for sweeps whose runs cannot share a batch; see --batch).",
)
@click.option(
    "--batch/--no-batch",
    default=True,
    show_default=True,
    help="Train a sweep's runs that differ only in β, η_dec, σ or seed as one batched model "
    "(linear and MLP backbones), equal to training them one by one to float precision.",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    help="Train every run this many epochs instead of the entry's own count (the paper's), e.g. "
    "on a slow machine; a later call with more epochs resumes the same runs.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0, max=MAX_SEED),
    help="Start every run from this seed instead of the entry's own (use another --out for each "
    "seed), to see how much a result owes to the seed; entries that train several seeds a point "
    "(table2 to table5: 3) take this one and the next ones.",
)
@click.option(
    "--dataset",
    help="Run the entry on this data set in place of its own, where it offers one (`--list` "
    "shows which), into --out/NAME-DATASET; e.g. dai-fig1 --dataset cifar10.",
)
@click.option(
    "--collect", is_flag=True, help="Print every comparison found in --out as one markdown report."
)
@click.option(
    "--record",
    help="With --collect: also copy each full entry's comparison.md, result.json and "
    "results.csv into this folder (one subfolder an entry), to keep beside documents that quote "
    "them.",
)
def reproduce(
    name: str | None,
    list_entries: bool,
    quick: bool,
    out: str,
    jobs: int,
    batch: bool,
    epochs: int | None,
    seed: int | None,
    dataset: str | None,
    collect: bool,
    record: str | None,
    **flags,
) -> None:
    """Run experiment NAME (or `all`): its runs (resuming what is complete in --out), a results
    CSV, its figures and a markdown table of our numbers beside the paper's."""
    if list_entries:
        for paper, entries in by_paper().items():
            click.echo(paper)
            for entry in entries:
                offers = ", ".join(entry.alternatives)
                also = f" [also --dataset {offers}]" if offers else ""
                click.echo(f"  {entry.name:<16} {entry.title}{also}")
        return
    if record is not None and not collect:
        raise InputError("--record goes with --collect: `vaecollapse reproduce --collect --out "
                         "DIR --record RECORDS`.")  # fmt: skip
    if collect:
        if not Path(out).is_dir():
            raise InputError(f"--out {out} is not a directory of reproductions.")
        # claimed first: a run still writing into --out is never copied half-way
        with claimed_directory(out, "reproduction") as directory:
            if record is not None:
                with claimed_directory(record, "records", "--record") as records:
                    folders = record_results(directory, records)
                listed = ", ".join(folders) or "none"
                click.echo(f"recorded {len(folders)} full entries in {record}: {listed}")
            text = collect_report(directory)
            figures = [
                figure
                for _, folder in found_results(directory)
                for figure in sorted((directory / folder).glob("*.png"))
            ]
            write_report(directory / "report.html", "Reproducing the papers", text, figures)
        click.echo(text, nl=False)
        click.echo(f"(also written as {Path(out) / 'report.html'}, with every entry's figures)")
        return
    if name is None:
        raise click.UsageError("give an experiment name, `all`, or --list.")
    data = from_command_line(flags, DataSpec)
    names = entry_names() if name == "all" else [name]
    if name != "all" and name not in REGISTRY:
        raise InputError(f"unknown experiment '{name}'; `vaecollapse reproduce --list` lists them.")
    if name == "all" and dataset is not None:
        raise InputError(
            "--dataset applies to one entry, not `all`: run e.g. `vaecollapse reproduce dai-fig1 "
            "--dataset cifar10` on its own."
        )
    if dataset is not None:
        entry_on(name, dataset)  # refused before --out is claimed
    with claimed_directory(out, "reproduction"):
        _run_entries(
            name, names, out, quick, data.get("data_dir"), data.get("verify", True), jobs, epochs,
            seed, batch, dataset,
        )  # fmt: skip


def _run_entries(
    name: str,
    names: list[str],
    out: str,
    quick: bool,
    data_dir: str | None,
    verify: bool,
    jobs: int,
    epochs: int | None,
    seed: int | None,
    batch: bool,
    dataset: str | None,
) -> None:
    lines = ["| entry | claim holds | wall s | training s |", "|---|---|---|---|"]
    failed, not_run = [], []
    for entry_name in names:
        try:
            result = run_entry(
                entry_name, out, quick=quick, data_dir=data_dir, verify=verify, jobs=jobs,
                epochs=epochs, seed=seed, batch=batch, dataset=dataset,
            )  # fmt: skip
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
            f"({result.seconds:.1f} s); "
            f"{out}/{REGISTRY[entry_name].directory_name(dataset)}/comparison.md"
        )
    if name == "all":
        write_text_atomic(Path(out) / "summary.md", "\n".join(lines) + "\n")
    if failed:
        click.echo(f"claims not reproduced: {', '.join(failed)}", err=True)
    if not_run:
        raise InputError(
            f"{len(not_run)} entries could not run ({', '.join(not_run)}); their reasons are "
            f"above and in {out}/summary.md. The other entries' results are written."
        )
