"""``vaecollapse train``: train a model from flags or a validated TOML/YAML configuration file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import torch

from ..data import DataSpec
from ..errors import InputError
from ..models.factory import build_model, config_to_json, model_config
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
    "levels": (int, 2),
    "latent_dims": (list, None),
    "hidden": (int, 256),
    "depth": (int, 1),
    "activation": (str, "relu"),
    "channels": (list, [32, 16]),
    "latent_hidden": (int, None),
    "encoder_variance": ((str, list), "amortized"),
    "sigma": ((float, list), None),
    "beta": (float, 1.0),
    "beta1": (float, None),
    "beta2": (float, None),
    "betas": (list, None),
    "eta_enc": (float, 1.0),
    "eta_dec": (float, 1.0),
    "learn_eta_dec": (bool, False),
    "bounded_means": (bool, False),
    "conditional_prior": (bool, False),
    "deterministic": (bool, False),
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
LIST_FLAGS = {"latent_dims": int, "channels": int, "betas": float, "digits": int}


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
@click.option("--model", type=click.Choice(["vae", "cvae", "mhvae"]), help="Model family.")
@click.option("--backbone", type=click.Choice(["linear", "mlp", "cnn", "resnet18"]))
@click.option("--dataset", help="Data set name (digits, mnist, mnist-quadrant, cifar10 ...).")
@click.option("--data", help=".npy or .npz file.")
@click.option("--data-dir")
@click.option("--digits", help="Keep only these labels, e.g. 1 or 1,7.")
@click.option("--latent-dim", type=click.IntRange(min=1), help="Latent size (every level).")
@click.option("--levels", type=click.IntRange(min=2), help="MHVAE latent levels (default 2).")
@click.option("--latent-dims", help="MHVAE latent size per level, e.g. 16,8.")
@click.option("--hidden", type=click.IntRange(min=1))
@click.option("--depth", type=click.IntRange(min=1))
@click.option("--activation", type=click.Choice(["relu", "tanh"]))
@click.option("--channels", help="Conv widths of cnn backbones, e.g. 32,16.")
@click.option("--latent-hidden", type=click.IntRange(min=1), help="Width of MLPs between levels.")
@click.option(
    "--encoder-variance",
    help="amortized, amortized-tanh, shared or fixed; MHVAE: one per level, e.g. fixed,shared.",
)
@click.option(
    "--sigma",
    help="Std of fixed encoder variances (VAE: one or one per dimension; "
    "MHVAE: one or one per level).",
)
@click.option("--beta", type=float, help="KL weight (every level).")
@click.option("--beta1", type=float, help="MHVAE: weight of the level-1 term.")
@click.option("--beta2", type=float, help="MHVAE: weight of the level-2 term.")
@click.option("--betas", help="MHVAE: one weight per level, e.g. 1,0.5,0.5.")
@click.option("--eta-enc", type=float, help="Prior std.")
@click.option("--eta-dec", type=float, help="Decoder std (initial value if learned).")
@click.option("--learn-eta-dec", is_flag=True, default=None)
@click.option(
    "--bounded-means", is_flag=True, default=None, help="tanh on every Gaussian mean (mlp, cnn)."
)
@click.option("--conditional-prior", is_flag=True, default=None, help="CVAE: learn p(z|x).")
@click.option("--deterministic", is_flag=True, default=None, help="VAE: a plain autoencoder.")
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
    settings |= {key: _from_flag(key, value) for key, value in flags.items() if value is not None}
    for required in ("latent_dim", "out"):
        if settings[required] is None and not (
            required == "latent_dim" and settings["latent_dims"]
        ):
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
    config = model_config(settings["model"], dataset, **_model_settings(settings))
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
        build_model(config),
        dataset,
        train_config,
        settings["out"],
        run_config={"model": config_to_json(config), "data": spec.__dict__},
        device=settings["device"],
    )
    last = history[-1]
    summary = f"trained {last['epoch']} epochs: train loss {last['train_loss']:.4f}"
    if "test_loss" in last:
        summary += f", test loss {last['test_loss']:.4f}"
    click.echo(f"{summary}; run directory {settings['out']}")


def _from_flag(key: str, value: Any) -> Any:
    """Comma-separated flags become lists; ``--sigma`` and ``--encoder-variance`` may be either."""
    if key in LIST_FLAGS:
        return _parse_list(key, value, LIST_FLAGS[key])
    if key == "sigma":
        values = _parse_list(key, value, float)
        return values[0] if len(values) == 1 else values
    if key == "encoder_variance" and "," in value:
        return [part.strip() for part in value.split(",")]
    return value


def _parse_list(key: str, text: str, kind: type) -> list:
    try:
        return [kind(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise InputError(
            f"--{key.replace('_', '-')} takes comma-separated {kind.__name__}s; got '{text}'."
        ) from None


def _model_settings(s: dict[str, Any]) -> dict[str, Any]:
    """The model-config fields for the chosen family, from the flat settings."""
    family = s["model"]
    common = {
        "latent_dim": s["latent_dim"] or s["latent_dims"][0],
        "backbone": s["backbone"],
        "hidden": s["hidden"],
        "depth": s["depth"],
        "activation": s["activation"],
        "channels": tuple(s["channels"]),
        "latent_hidden": s["latent_hidden"],
        "beta": s["beta"],
        "eta_enc": s["eta_enc"],
        "eta_dec": s["eta_dec"],
        "learn_eta_dec": s["learn_eta_dec"],
        "bounded_means": s["bounded_means"],
    }
    variance, sigma = s["encoder_variance"], s["sigma"]
    if family == "mhvae":
        levels = len(s["latent_dims"]) if s["latent_dims"] else s["levels"]
        betas = s["betas"]
        if betas is None and (s["beta1"] is not None or s["beta2"] is not None):
            if levels != 2:
                raise InputError("--beta1/--beta2 are for two levels; use --betas for more.")
            betas = [s["beta1"] or s["beta"], s["beta2"] or s["beta"]]
        return common | {
            "levels": levels,
            "latent_dims": _tuple_or_none(s["latent_dims"]),
            "betas": _tuple_or_none(betas),
            "encoder_variances": _per_level(variance, levels, "encoder_variance"),
            "sigmas": _per_level(sigma, levels, "sigma"),
        }
    if isinstance(variance, list) or s["beta1"] is not None or s["beta2"] is not None:
        raise InputError(
            "per-level settings (beta1, beta2, a list of variances) need --model mhvae."
        )
    common |= {"encoder_variance": variance, "sigma": _tuple_or_none(sigma)}
    if family == "cvae":
        return common | {"conditional_prior": s["conditional_prior"]}
    return common | {"deterministic": s["deterministic"]}


def _tuple_or_none(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _per_level(value: Any, levels: int, key: str) -> tuple | None:
    if value is None:
        return None
    if not isinstance(value, list):
        return (value,) * levels
    if len(value) != levels:
        raise InputError(f"{key} has {len(value)} entries but the model has {levels} levels.")
    return tuple(value)
