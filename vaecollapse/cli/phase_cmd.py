"""``vaecollapse phase``: a collapse phase diagram over (β, η_dec)
(``vaecollapse.studies.phase``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from vaecollapse.cli.common import gathered_settings
from vaecollapse.core.data import DataSpec
from vaecollapse.core.options import check_fields, command_options, setting, split_settings
from vaecollapse.core.rundir import usable_directory
from vaecollapse.studies.phase import PhaseSettings, run_phase


@dataclass(frozen=True)
class PhaseOutput:
    out: str | None = setting(None, str, "Output directory (re-running it resumes)")
    device: str = setting("auto", str, "auto (CUDA when present), cpu or cuda[:N]")

    def __post_init__(self) -> None:
        check_fields(self)


SECTIONS = (PhaseOutput, PhaseSettings)


@click.command("phase")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="TOML or YAML file.")
@command_options(*SECTIONS, DataSpec)  # --dataset is PhaseSettings' (its default is the model's)
def phase_command(config_file: str | None, **flags: Any) -> None:
    """Draw a collapse phase diagram: a grid of (β, η_dec) points of a VAE, CVAE or MHVAE (β2,
    z2's count) trained as one batch, the active dimensions of each as a heat map with the linear
    theory's threshold curves over it, and the points where they disagree marked. Writes
    phase.png, phase.csv, summary.md, summary.json and a run directory per point to --out.

    By default: the linear VAE (d = 8) on the embedded digits, 16 × 16 points spanning the
    theory's thresholds, each trained full-batch to the theory's optimum; under a minute on 2
    cores (README, "Phase diagrams"), offline."""
    settings = gathered_settings(config_file, flags, (*SECTIONS, DataSpec))
    output = PhaseOutput(**split_settings(settings, PhaseOutput))
    if output.out is None:
        raise click.UsageError("--out is required (flag or config).")
    phase = PhaseSettings(**split_settings(settings, PhaseSettings))
    usable_directory(output.out, "phase")  # refuse someone else's directory before loading data
    spec = DataSpec(**(split_settings(settings, DataSpec) | {"dataset": phase.data_name}))
    result = run_phase(phase, spec.load(), output.out, output.device)
    click.echo(Path(output.out, "summary.md").read_text().rstrip())
    click.echo(
        f"\nwrote {output.out}/phase.png, phase.csv, summary.md, summary.json and a run directory "
        f"per point ({result.seconds['total']:.0f} s)"
    )
