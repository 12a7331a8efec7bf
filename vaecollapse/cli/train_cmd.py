"""``vaecollapse train``: train a model from flags or a validated TOML/YAML configuration file.

Every option is a declared setting of the data specification, the model configurations, the
training configuration or this command (``vaecollapse.core.options``): flags, configuration-file
keys and the stored ``config.json`` use the same names, and every value is checked before
anything is created.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click
import torch

from vaecollapse.cli.common import gathered_settings
from vaecollapse.core.data import DataSpec
from vaecollapse.core.models.factory import (
    MODEL_CLASSES,
    Family,
    build_model,
    config_to_json,
    model_config,
)
from vaecollapse.core.options import (
    check_fields,
    command_options,
    setting,
    split_settings,
)
from vaecollapse.core.rundir import usable_directory
from vaecollapse.training.config import TrainConfig
from vaecollapse.training.settings import training_settings
from vaecollapse.training.trainer import train


@dataclass(frozen=True)
class Placement:
    """Where a training run lives and computes."""

    out: str | None = setting(None, str, "Run directory (re-running the same command resumes it)")
    device: str = setting("auto", str, "auto (CUDA when present), cpu or cuda[:N]")

    def __post_init__(self) -> None:
        check_fields(self)


SECTIONS = (Family, Placement, DataSpec, *MODEL_CLASSES, TrainConfig)


@click.command("train")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="TOML or YAML file.")
@command_options(*SECTIONS)
def train_command(config_file: str | None, **flags: Any) -> None:
    """Train a model; writes config.json, metrics.jsonl, checkpoint.pt and model.pt to --out.

    Every option may also be a key of the --config file (flags override it)."""
    settings = gathered_settings(config_file, flags, SECTIONS)
    place = Placement(**split_settings(settings, Placement))
    if place.out is None:
        raise click.UsageError("--out is required (flag or config).")
    if "dataset" not in settings:
        raise click.UsageError(
            "--dataset is required (flag or config): a name or a .npy/.npz file."
        )
    family, model_settings, train_config, spec = training_settings(settings)
    usable_directory(place.out)  # refuse a file or someone else's directory before loading data
    dataset = spec.load()
    config = model_config(family, dataset, **model_settings)
    torch.manual_seed(train_config.seed)  # the initial weights depend on the seed alone
    history = train(
        build_model(config),
        dataset,
        train_config,
        place.out,
        run_config={"model": config_to_json(config)},
        device=place.device,
    )
    last = history[-1]
    summary = f"trained {last['epoch']} epochs: train loss {last['train_loss']:.4f}"
    if "test_loss" in last:
        summary += f", test loss {last['test_loss']:.4f}"
    click.echo(f"{summary}; run directory {place.out}")
