"""One place that turns a family name, a data set and settings into a model, and a stored run
configuration back into the same model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import Dataset
from ..errors import InputError
from ..rundir import load_checkpoint, load_state_into, load_tensors, read_run_config
from .cvae import CVAE, CVAEConfig
from .mhvae import MHVAE, MHVAEConfig
from .vae import VAE, VAEConfig

FAMILIES: dict[str, tuple[type[nn.Module], type]] = {
    "vae": (VAE, VAEConfig),
    "cvae": (CVAE, CVAEConfig),
    "mhvae": (MHVAE, MHVAEConfig),
}


def model_config(family: str, dataset: Dataset, **settings: Any):
    """The config of ``family`` sized for ``dataset`` (dimensions and image shape come from the
    data); ``settings``: any other field of the family's config."""
    if family not in FAMILIES:
        raise InputError(f"model '{family}' is not one of {tuple(FAMILIES)}.")
    paired = dataset.train.y is not None
    if family == "cvae" and not paired:
        raise InputError(
            f"a CVAE needs paired data (x, y), but '{dataset.name}' has only x: use a quadrant "
            "view (e.g. --dataset mnist-quadrant) or an .npz file with an 'y' array."
        )
    if family != "cvae" and paired:
        raise InputError(
            f"'{dataset.name}' is paired (x, y); a {family.upper()} models one variable "
            "(use --model cvae, or the flat view)."
        )
    sizes = (
        {"x_dim": dataset.x_dim, "y_dim": dataset.y_dim}
        if family == "cvae"
        else {"data_dim": dataset.x_dim}
    )
    return FAMILIES[family][1](**sizes, image_shape=dataset.image_shape, **settings)


def build_model(config) -> nn.Module:
    """The model for a VAE/CVAE/MHVAE config."""
    for model_class, config_class in FAMILIES.values():
        if type(config) is config_class:
            return model_class(config)
    raise InputError(f"no model family takes a {type(config).__name__}.")


def family_of(config) -> str:
    return next(name for name, (_, cls) in FAMILIES.items() if type(config) is cls)


def config_to_json(config) -> dict[str, Any]:
    """``{"family": ..., **fields}``, JSON-ready."""
    return {"family": family_of(config), **json.loads(json.dumps(dataclasses.asdict(config)))}


def config_from_json(stored: dict[str, Any]):
    """The inverse of ``config_to_json`` (JSON lists become the tuples the configs hold)."""
    fields = dict(stored)
    family = fields.pop("family", "vae")
    if family not in FAMILIES:
        raise InputError(f"the stored model family '{family}' is unknown.")
    return FAMILIES[family][1](**{k: _tuples(v) for k, v in fields.items()})


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def load_run_model(
    run_dir: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict]:
    """The trained model of a run directory written by ``vaecollapse train`` (final weights, else
    the latest checkpoint) and the run's stored configuration. Files are loaded as tensors only."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(
            f"{run_dir} is not a directory; give a run directory of vaecollapse train."
        )
    stored = read_run_config(run_dir)
    try:
        model = build_model(config_from_json(stored["model"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{run_dir / 'config.json'} is not a valid run configuration ({exc})."
        ) from None
    weights, checkpoint = run_dir / "model.pt", run_dir / "checkpoint.pt"
    if weights.exists():
        load_state_into(model, load_tensors(weights, "weights file"), weights)
    elif checkpoint.exists():
        load_state_into(model, load_checkpoint(checkpoint)["model"], checkpoint)
    else:
        raise InputError(f"{run_dir} holds no trained weights (model.pt or checkpoint.pt).")
    return model.to(device).eval(), stored
