"""Pieces shared by the subcommands: the model-family setting, data options, JSON output."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import click

from ..data import DataSpec
from ..errors import InputError
from ..models.cvae import CVAEConfig
from ..models.factory import FAMILIES
from ..models.mhvae import MHVAEConfig
from ..models.vae import VAEConfig
from ..options import (
    check_fields,
    command_options,
    declared,
    from_command_line,
    read_settings_file,
    setting,
    split_settings,
)
from ..train import TrainConfig

FAMILY_NAMES = ("vae", "cvae", "mhvae")
MODEL_CLASSES = (VAEConfig, CVAEConfig, MHVAEConfig)


@dataclass(frozen=True)
class Family:
    """Which model family a command is about (train and theory both take it)."""

    model: str = setting("vae", str, "Model family", choices=FAMILY_NAMES)

    def __post_init__(self) -> None:
        check_fields(self)


def print_json(obj: Any) -> None:
    """One JSON object on stdout."""
    click.echo(json.dumps(obj, indent=2, allow_nan=False, default=str))


# The data options of every command that loads a data set; `data info` names it as an argument.
data_options = command_options(DataSpec)
data_options_without_name = command_options(DataSpec, exclude=("dataset",))


def data_spec(flags: dict[str, Any], **given: Any) -> DataSpec:
    """The DataSpec of a command's data options (``given``: values from elsewhere)."""
    return DataSpec(**(split_settings(from_command_line(flags, DataSpec), DataSpec) | given))


def family_settings(family: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings of ``family``'s config; a setting only another family has is refused."""
    mine = FAMILIES[family][1]
    chosen = split_settings(settings, mine)
    others = {
        name
        for cls in MODEL_CLASSES
        if cls is not mine
        for name in declared(cls)
        if name in settings and name not in chosen
    }
    if others:
        names = ", ".join(f"--{n.replace('_', '-')}" for n in sorted(others))
        raise InputError(f"{names} do not apply to --model {family}; leave them out.")
    if family == "mhvae" and "latent_dim" not in chosen and "latent_dims" in chosen:
        chosen["latent_dim"] = chosen["latent_dims"][0]
    if "latent_dim" not in chosen:
        raise click.UsageError("--latent-dim is required (flag or config).")
    return chosen


def gathered_settings(
    config_file: str | None, flags: dict[str, Any], sections: tuple[type, ...],
    defaults: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A command's settings: ``defaults``, then the ``--config`` file's, then the flags', each
    overriding the one before, every value checked against its declaration."""
    settings = dict(defaults or {})
    if config_file is not None:
        if not config_file.strip():
            raise InputError("--config is empty; name a .toml or .yaml file, or leave it out.")
        settings |= read_settings_file(config_file, *sections)
    return settings | from_command_line(flags, *sections)


def training_settings(
    settings: dict[str, Any],
) -> tuple[str, dict[str, Any], TrainConfig, DataSpec]:
    """What a training command trains: the model family, that family's settings, the training
    configuration and the data specification."""
    family = Family(**split_settings(settings, Family)).model
    return (
        family,
        family_settings(family, settings),
        TrainConfig(**split_settings(settings, TrainConfig)),
        DataSpec(**split_settings(settings, DataSpec)),
    )
