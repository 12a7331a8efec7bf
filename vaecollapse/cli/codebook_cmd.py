"""``vaecollapse codebook-remedies``: the codebook remedy bench
(``vaecollapse.studies.codebook_bench``) from the command line."""

from __future__ import annotations

import time
from pathlib import Path

import click

from vaecollapse.core.rundir import usable_directory
from vaecollapse.studies.codebook_bench import REMEDIES, BenchSetup, run_codebook_bench


def _listed(kind):
    def parse(context, parameter, value: str | None):
        if value is None:
            return None
        try:
            return tuple(kind(part) for part in value.split(",") if part.strip())
        except ValueError:
            raise click.BadParameter(f"a comma-separated list is needed; got {value!r}") from None

    return parse


@click.command("codebook-remedies")
@click.option("--out", required=True, help="Output directory (re-running it resumes).")
@click.option("--dataset", default="mnist", show_default=True, help="Data set name.")
@click.option("--data-dir", default=None, help="Folder holding the data set's files.")
@click.option("--remedies", callback=_listed(str), default=",".join(REMEDIES), show_default=True,
              help="Remedies to compare (none is the baseline).")  # fmt: skip
@click.option("--seeds", callback=_listed(int), default="0,1,2", show_default=True,
              help="Seeds of every remedy.")  # fmt: skip
@click.option("--epochs", type=click.IntRange(min=1), default=BenchSetup.epochs,
              show_default=True)  # fmt: skip
@click.option("--codebook-size", type=click.IntRange(min=2), default=BenchSetup.codebook_size,
              show_default=True)  # fmt: skip
@click.option(
    "--fsq-levels",
    callback=_listed(int),
    default="8,8,4",
    show_default=True,
    help="The finite scalar quantiser's levels (they multiply to the codebook size).",
)
@click.option("--train-rows", type=click.IntRange(min=1), default=BenchSetup.train_rows,
              show_default=True, help="Training images (the first ones).")  # fmt: skip
def codebook_remedies_command(
    out: str, dataset: str, data_dir: str | None, remedies: tuple[str, ...],
    seeds: tuple[int, ...], epochs: int, codebook_size: int, fsq_levels: tuple[int, ...],
    train_rows: int,
) -> None:  # fmt: skip
    """Compare the remedies for codebook collapse on one small VQ autoencoder: no remedy,
    dead-code replacement, k-means initialisation, a lower code dimension with cosine
    similarity, a faster EMA, an entropy penalty, and a finite scalar quantiser, each at every
    seed, with the same whole-test-split measures (codes used, dead, perplexity, the verdict) and
    the reconstruction error. Writes codebook-remedies.md, .csv, .png, report.html, summary.json
    and one result per remedy and seed to --out. By default: MNIST, 3 epochs, seeds 0, 1, 2,
    offline (the data in --data-dir or VAECOLLAPSE_DATA)."""
    started = time.perf_counter()
    setup = BenchSetup(
        dataset=dataset, epochs=epochs, codebook_size=codebook_size, fsq_levels=fsq_levels,
        train_rows=train_rows,
    )  # fmt: skip
    usable_directory(out, "codebook-bench")  # refuse someone else's directory before training
    run_codebook_bench(out, setup, remedies=remedies, seeds=seeds, data_dir=data_dir)
    click.echo(Path(out, "codebook-remedies.md").read_text().rstrip())
    click.echo(
        f"\nwrote {out}/codebook-remedies.md, .csv, .png, report.html, summary.json and a result "
        f"per remedy and seed in {out}/runs ({time.perf_counter() - started:.0f} s)"
    )
