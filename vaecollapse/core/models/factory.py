"""One place that turns a family name, a data set and settings into a model, and a stored run
configuration back into the same model."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vaecollapse.core.data import Dataset
from vaecollapse.core.errors import InputError, first_line
from vaecollapse.core.families import FAMILY_NAMES, model_family
from vaecollapse.core.limits import check_fits
from vaecollapse.core.models.cvae import CVAE, CVAEConfig
from vaecollapse.core.models.mhvae import MHVAE, MHVAEConfig
from vaecollapse.core.models.vae import VAE, VAEConfig
from vaecollapse.core.options import check_fields, declared, quoted, setting, split_settings
from vaecollapse.core.rundir import load_checkpoint, load_state_into, load_tensors, read_run_config

# The module and configuration class of each family of the registry (core.families).
FAMILIES: dict[str, tuple[type[nn.Module], type]] = {
    "vae": (VAE, VAEConfig),
    "cvae": (CVAE, CVAEConfig),
    "mhvae": (MHVAE, MHVAEConfig),
}
MODEL_CLASSES = tuple(config for _, config in FAMILIES.values())


@dataclasses.dataclass(frozen=True)
class Family:
    """Which model family a command or a sweep is about."""

    model: str = setting("vae", str, "Model family", choices=FAMILY_NAMES)

    def __post_init__(self) -> None:
        check_fields(self)


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
    if model_family(family).hierarchical and "latent_dim" not in chosen and "latent_dims" in chosen:
        chosen["latent_dim"] = chosen["latent_dims"][0]
    if "latent_dim" not in chosen:
        raise InputError("--latent-dim is required (flag or config).")
    return chosen


def model_config(family: str, dataset: Dataset, **settings: Any):
    """The config of ``family`` sized for ``dataset`` (dimensions and image shape come from the
    data); ``settings``: any other field of the family's config."""
    conditional = model_family(family).conditional
    paired = dataset.train.y is not None
    if conditional and not paired:
        raise InputError(
            f"a CVAE needs paired data (x, y), but '{dataset.name}' has only x: use a quadrant "
            "view (e.g. --dataset mnist-quadrant) or an .npz file with an 'y' array."
        )
    if paired and not conditional:
        raise InputError(
            f"'{dataset.name}' is paired (x, y); a {family.upper()} models one variable "
            "(use --model cvae, or the flat view)."
        )
    sizes = (
        {"x_dim": dataset.x_dim, "y_dim": dataset.y_dim}
        if conditional
        else {"data_dim": dataset.x_dim}
    )
    return FAMILIES[family][1](**sizes, image_shape=dataset.image_shape, **settings)


# Training holds four floats a weight: the weight, its gradient and Adam's two moments.
TRAINING_COPIES = 4
SIZE_SETTINGS = ("latent_dim", "latent_dims", "hidden", "data_dim", "x_dim", "y_dim")


def build_model(config) -> nn.Module:
    """The model for a VAE/CVAE/MHVAE config; sizes whose weights could not be trained in the
    memory free now are refused, naming them, before any weight is allocated."""
    for model_class, config_class in FAMILIES.values():
        if type(config) is config_class:
            _check_fits(model_class, config)
            try:
                return model_class(config)
            except (RuntimeError, OverflowError, MemoryError) as exc:
                if isinstance(exc, RuntimeError) and not _TOO_LARGE.search(str(exc)):
                    raise
                raise _too_large(config, exc) from None
    raise InputError(f"no model family takes a {type(config).__name__}.")


# How torch says a tensor is too large to allocate, or its size to compute.
_TOO_LARGE = re.compile(r"overflow|allocate|out of memory", re.IGNORECASE)


def _sizes(config) -> str:
    return ", ".join(
        f"{name} {quoted(getattr(config, name))}"
        for name in SIZE_SETTINGS
        if getattr(config, name, None) is not None
    )


def _too_large(config, exc: BaseException) -> InputError:
    return InputError(
        f"a model of these sizes ({_sizes(config)}) cannot be built ({first_line(exc)}). {SMALLER}"
    )


SMALLER = "Choose smaller sizes (latent_dim, hidden)."


def _check_fits(model_class: type[nn.Module], config) -> None:
    """Build the model on the meta device (shapes only: nothing is allocated) and refuse it
    when training its weights would not fit. A model whose construction runs a forward pass
    (the image backbones measure their trunk's width) cannot be probed so, and is built."""
    try:
        with torch.device("meta"):
            probe = model_class(config)
    except (RuntimeError, NotImplementedError, OverflowError) as exc:
        if "meta" in str(exc):
            return
        raise _too_large(config, exc) from None
    weights = sum(p.numel() * p.element_size() for p in probe.parameters())
    check_fits(weights * TRAINING_COPIES, f"training a model of {_sizes(config)}", SMALLER)


def family_of(config) -> str:
    return type(config).family


def config_to_json(config) -> dict[str, Any]:
    """``{"family": ..., **fields}``, JSON-ready."""
    return {"family": family_of(config), **json.loads(json.dumps(dataclasses.asdict(config)))}


def config_from_json(stored: dict[str, Any]):
    """The inverse of ``config_to_json`` (JSON lists become the tuples the configs hold)."""
    fields = dict(stored)
    family = fields.pop("family", "vae")
    if family not in FAMILIES:
        raise InputError(f"the stored model family {family!r} is unknown.")
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
