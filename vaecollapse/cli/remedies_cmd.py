"""``vaecollapse remedies``: the remedy bench (``vaecollapse.studies.remedy_bench``) from the
command line.

The model, data and training options are train's; a remedy's own setting (``--free-bits``,
``--mean-batchnorm``, ``--delta-rate``, the schedules' lengths) sets that remedy's strength and is
not applied to the other runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from vaecollapse.cli.common import gathered_settings
from vaecollapse.core.data import DataSpec
from vaecollapse.core.models.factory import MODEL_CLASSES, Family
from vaecollapse.core.options import (
    LIST,
    MAX_SEED,
    check_fields,
    command_options,
    setting,
    split_settings,
)
from vaecollapse.core.rundir import usable_directory
from vaecollapse.studies.remedy_bench import REMEDY_NAMES, STRENGTH_KEYS, run_bench
from vaecollapse.training.config import TrainConfig
from vaecollapse.training.settings import training_settings

# A model that collapses in part on the embedded digits, trained in about 3 s a run on 2 cores
BENCH_DEFAULTS = {
    "dataset": "digits", "backbone": "mlp", "hidden": 128, "latent_dim": 16, "eta_dec": 0.5,
    "epochs": 100, "lr": 1e-3, "batch_size": 128,
}  # fmt: skip
NOT_BENCH_OPTIONS = ("seed", "monitor", "monitor_every", "aggressive_encoder", "kl_schedule")


@dataclass(frozen=True)
class BenchSettings:
    """What the bench runs and where it writes."""

    out: str | None = setting(None, str, "Output directory (re-running it resumes)")
    device: str = setting("auto", str, "auto (CUDA when present), cpu or cuda[:N]")
    remedies: tuple[str, ...] = setting(
        REMEDY_NAMES, str, "Remedies to compare (none is the baseline)", choices=REMEDY_NAMES,
        shape=LIST,
    )  # fmt: skip
    seeds: tuple[int, ...] = setting(
        (0, 1, 2), int, "Seeds of every remedy", low=0, high=MAX_SEED, shape=LIST
    )
    iwae_k: int = setting(500, int, "Importance samples of the log-likelihood", low=1)

    def __post_init__(self) -> None:
        check_fields(self)


SECTIONS = (Family, BenchSettings, DataSpec, *MODEL_CLASSES, TrainConfig)


@click.command("remedies")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="TOML or YAML file.")
@command_options(*SECTIONS, exclude=NOT_BENCH_OPTIONS)
def remedies_command(config_file: str | None, **flags: Any) -> None:
    """Compare the remedies for collapse on one model: no remedy, KL warm-up, cyclical annealing,
    free bits, aggressive encoder training, BN-VAE and δ-VAE, each at every seed, with the same
    metrics (KL, active units, I(x; z), collapsed dimensions, IWAE log-likelihood,
    reconstruction, time). Writes remedies.md, remedies.csv, remedies.png and one run directory
    per remedy and seed to --out.

    By default: an MLP VAE (16 latent dimensions, η_dec = 0.5) on the embedded digits, 100 epochs,
    seeds 0, 1, 2, offline."""
    started = time.perf_counter()
    settings = gathered_settings(config_file, flags, SECTIONS, BENCH_DEFAULTS)
    bench = BenchSettings(**split_settings(settings, BenchSettings))
    if bench.out is None:
        raise click.UsageError("--out is required (flag or config).")
    strengths = {k: settings.pop(k) for k in STRENGTH_KEYS if k in settings}
    family, model_settings, training, spec = training_settings(settings)
    usable_directory(bench.out, "bench")  # refuse someone else's directory before loading data
    dataset = spec.load()
    run_bench(
        bench.out, family, dataset, model_settings, training, remedies=bench.remedies,
        seeds=bench.seeds, strengths=strengths, iwae_k=bench.iwae_k, device=bench.device,
    )  # fmt: skip
    click.echo(Path(bench.out, "remedies.md").read_text().rstrip())
    click.echo(
        f"\nwrote {bench.out}/remedies.md, remedies.csv, remedies.png, summary.json and a run "
        f"directory per remedy and seed ({time.perf_counter() - started:.0f} s)"
    )
