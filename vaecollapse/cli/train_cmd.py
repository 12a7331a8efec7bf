"""``vaecollapse train``: train a model from flags or a validated TOML/YAML configuration file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import torch

from ..data import DataSpec
from ..errors import InputError
from ..models import VAE, VAEConfig
from ..train import TrainConfig, train

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# Every setting, its type and default. A configuration file may hold exactly these keys.
SCHEMA: dict[str, tuple[type | tuple[type, ...], Any]] = {
    "model": (str, "vae"),
    "backbone": (str, "linear"),
    "dataset": (str, None),
    "data": (str, None),
    "data_dir": (str, None),
    "digits": (list, None),
    "view": (str, None),
    "center": (bool, False),
    "latent_dim": (int, None),
    "hidden": (int, 256),
    "depth": (int, 1),
    "activation": (str, "relu"),
    "encoder_variance": (str, "amortized"),
    "sigma": ((float, list), None),
    "beta": (float, 1.0),
    "eta_enc": (float, 1.0),
    "eta_dec": (float, 1.0),
    "learn_eta_dec": (bool, False),
    "epochs": (int, 100),
    "batch_size": (int, 128),
    "lr": (float, 1e-3),
    "seed": (int, 0),
    "device": (str, "auto"),
    "samples": (int, 1),
    "analytic": (bool, False),
    "kl_warmup_epochs": (int, 0),
    "out": (str, None),
}


def read_config_file(path: str) -> dict[str, Any]:
    """Settings from a ``.toml`` or ``.yaml``/``.yml`` file; keys and types are checked."""
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise InputError(f"cannot read the configuration file {file}: {exc.strerror}.") from None
    try:
        if file.suffix == ".toml":
            raw = tomllib.loads(text)
        elif file.suffix in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(text) or {}
        else:
            raise InputError(f"{file}: configuration files must be .toml, .yaml or .yml.")
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise InputError(f"{file} is not valid {file.suffix[1:].upper()}: {exc}") from None
    except Exception as exc:  # yaml's parser errors
        raise InputError(f"{file} could not be parsed: {exc}") from None
    if not isinstance(raw, dict):
        raise InputError(f"{file} must hold a table of settings at its top level.")
    return {_normalise_key(key, file): _check_type(key, value, file) for key, value in raw.items()}


def _normalise_key(key: str, file: Path) -> str:
    name = str(key).replace("-", "_")
    if name not in SCHEMA:
        raise InputError(
            f"{file}: unknown setting '{key}'. Known settings: {', '.join(sorted(SCHEMA))}."
        )
    return name


def _check_type(key: str, value: Any, file: Path) -> Any:
    expected, _ = SCHEMA[str(key).replace("-", "_")]
    types = expected if isinstance(expected, tuple) else (expected,)
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    # bool is an int subclass: accept it only where a bool is meant.
    ok = isinstance(value, types) and (bool in types or not isinstance(value, bool))
    if not ok:
        names = " or ".join(t.__name__ for t in types)
        raise InputError(f"{file}: setting '{key}' must be {names}; got {value!r}.")
    return value


@click.command("train")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="TOML or YAML file.")
@click.option("--model", type=click.Choice(["vae"]), help="Model family.")
@click.option("--backbone", type=click.Choice(["linear", "mlp"]))
@click.option("--dataset", help="Data set name (digits, mnist, fashion-mnist, cifar10 ...).")
@click.option("--data", help=".npy or .npz file.")
@click.option("--data-dir")
@click.option("--latent-dim", type=click.IntRange(min=1))
@click.option("--hidden", type=click.IntRange(min=1))
@click.option("--depth", type=click.IntRange(min=1))
@click.option("--activation", type=click.Choice(["relu", "tanh"]))
@click.option("--encoder-variance", type=click.Choice(["amortized", "shared", "fixed"]))
@click.option("--sigma", type=float, help="Std of a fixed encoder variance.")
@click.option("--beta", type=float)
@click.option("--eta-enc", type=float)
@click.option("--eta-dec", type=float)
@click.option("--learn-eta-dec", is_flag=True, default=None)
@click.option("--epochs", type=click.IntRange(min=1))
@click.option("--batch-size", type=click.IntRange(min=1))
@click.option("--lr", type=float)
@click.option("--seed", type=int)
@click.option("--device", help="auto (default), cpu or cuda.")
@click.option("--samples", type=click.IntRange(min=1), help="Reparameterisation samples.")
@click.option("--analytic", is_flag=True, default=None, help="Exact expected reconstruction.")
@click.option("--kl-warmup-epochs", type=click.IntRange(min=0))
@click.option("--out", help="Run directory (re-running the same command resumes it).")
def train_command(config_file: str | None, **flags: Any) -> None:
    """Train a model; writes config.json, metrics.jsonl, checkpoint.pt and model.pt to --out."""
    settings = {key: default for key, (_, default) in SCHEMA.items()}
    if config_file:
        settings |= read_config_file(config_file)
    settings |= {key: value for key, value in flags.items() if value is not None}
    for required in ("latent_dim", "out"):
        if settings[required] is None:
            raise click.UsageError(f"--{required.replace('_', '-')} is required (flag or config).")
    if (settings["dataset"] is None) == (settings["data"] is None):
        raise click.UsageError("give exactly one of --dataset NAME or --data FILE.")
    spec = DataSpec(
        source=settings["dataset"] or settings["data"],
        view=settings["view"],
        digits=tuple(settings["digits"]) if settings["digits"] else None,
        center=settings["center"],
        data_dir=settings["data_dir"],
    )
    dataset = spec.load()
    if dataset.train.y is not None:
        raise InputError(f"'{spec.source}' is paired (x, y); a VAE models one variable.")
    model_config = VAEConfig(
        data_dim=dataset.x_dim,
        latent_dim=settings["latent_dim"],
        backbone=settings["backbone"],
        hidden=settings["hidden"],
        depth=settings["depth"],
        activation=settings["activation"],
        encoder_variance=settings["encoder_variance"],
        sigma=settings["sigma"]
        if not isinstance(settings["sigma"], list)
        else tuple(settings["sigma"]),
        beta=settings["beta"],
        eta_enc=settings["eta_enc"],
        eta_dec=settings["eta_dec"],
        learn_eta_dec=settings["learn_eta_dec"],
    )
    train_config = TrainConfig(
        epochs=settings["epochs"],
        batch_size=settings["batch_size"],
        lr=settings["lr"],
        seed=settings["seed"],
        n_samples=settings["samples"],
        analytic=settings["analytic"],
        kl_warmup_epochs=settings["kl_warmup_epochs"],
    )
    torch.manual_seed(train_config.seed)  # the initial weights depend on the seed alone
    history = train(
        VAE(model_config),
        dataset,
        train_config,
        settings["out"],
        run_config={"model": model_config.__dict__, "data": spec.__dict__},
        device=settings["device"],
    )
    last = history[-1]
    summary = f"trained {last['epoch']} epochs: train loss {last['train_loss']:.4f}"
    if "test_loss" in last:
        summary += f", test loss {last['test_loss']:.4f}"
    click.echo(f"{summary}; run directory {settings['out']}")
