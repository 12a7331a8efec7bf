"""Training: Adam over device-resident tensors, one JSON line of metrics per epoch, atomic
checkpoints, exact resume, and a guard that stops on a non-finite loss.

A run directory holds ``config.json`` (everything that defines the run), ``metrics.jsonl`` (one
object per epoch), ``checkpoint.pt`` (the latest epoch: model, optimiser, RNG states) and
``model.pt`` (the final weights). Running again on the same directory resumes from the checkpoint;
a larger ``epochs`` continues training. Everything else in the configuration must match.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import MISSING, asdict, dataclass, fields, is_dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from .data import Dataset, minibatch_indices
from .errors import InputError, Interrupted
from .fileio import WriteError, replace_atomically, write_text_atomic
from .objectives import kl_warmup
from .optim import Adam
from .options import check_fields, setting
from .rundir import (
    EMBEDDED_DATA,
    RUN_FORMAT,
    claimed_directory,
    data_record,
    embed_data,
    load_checkpoint,
    load_state_into,
    read_run_config,
)


class TrainingDivergedError(InputError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained; each setting declared with its domain (``vaecollapse.options``)."""

    epochs: int = setting(100, int, "Epochs to train (a larger count continues a run)", low=1)
    batch_size: int = setting(128, int, "Minibatch size", low=1)
    lr: float = setting(1e-3, float, "Adam's learning rate", low=0, low_open=True)
    seed: int = setting(0, int, "Seed of the initial weights, batches and samples", low=0)
    samples: int = setting(1, int, "Reparameterisation samples per input", low=1)
    analytic: bool = setting(
        False, bool, "Exact expected reconstruction (linear backbone; Lucas et al.)"
    )
    kl_warmup_epochs: int = setting(
        0, int, "Epochs over which the KL weight ramps from 0 to 1", low=0
    )

    def __post_init__(self) -> None:
        check_fields(self)


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise InputError(f"unknown device '{device}'; use auto, cpu or cuda[:N].") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda was asked for but no CUDA device is available.")
    return resolved


def _save_atomic(obj: object, path: Path) -> None:
    replace_atomically(path, lambda tmp: torch.save(obj, tmp))


def _evaluate(model: nn.Module, dataset_split, config: TrainConfig) -> dict[str, float]:
    """Mean loss, reconstruction and KL per level over a split, in batches, without gradients."""
    model.eval()
    totals: dict[str, torch.Tensor] = {}
    n = len(dataset_split)
    with torch.no_grad():
        for index in minibatch_indices(
            n, max(config.batch_size, 1024), shuffle=False, device=dataset_split.x.device
        ):
            _accumulate(totals, _terms(model, dataset_split, index, config), weight=1.0)
    model.train()
    return {k: float(v) / n for k, v in totals.items()}


def _terms(model: nn.Module, split, index: torch.Tensor, config: TrainConfig):
    inputs = (split.x[index],) if split.y is None else (split.x[index], split.y[index])
    return model(*inputs, n_samples=config.samples, analytic=config.analytic)


def _accumulate(totals: dict[str, torch.Tensor], terms, weight: float) -> torch.Tensor:
    """Add the batch's summed loss, reconstruction and KL per level (``kl_<level>``) to ``totals``
    as device tensors (no host sync per step); return the batch loss to minimise."""
    kl_levels = {k: v.sum(1) for k, v in terms.kl.items()}
    loss = terms.recon + weight * sum(terms.betas[k] * v for k, v in kl_levels.items())
    batch = {"loss": loss.sum(), "recon": terms.recon.sum()}
    batch |= {f"kl_{k}": v.sum() for k, v in kl_levels.items()}
    for key, value in batch.items():
        totals[key] = totals.get(key, 0.0) + value.detach()
    return loss.mean()


def train(
    model: nn.Module,
    dataset: Dataset,
    config: TrainConfig,
    run_dir: str | Path,
    *,
    run_config: dict | None = None,
    device: str = "auto",
    progress: bool | None = None,
    log_every: int = 1,
    log_prefix: str = "",
) -> list[dict]:
    """Train ``model`` on ``dataset``, writing into ``run_dir``; returns every epoch's metrics.

    ``run_config``: what else defines the run (the model's settings), stored and compared on
    resume with the data set's specification (``dataset.spec``; generated data without one is
    stored in the run directory as ``data.npz``, so every run can be diagnosed again).
    ``progress``: a tqdm bar within each epoch (default: when stderr is a terminal); a
    summary line every ``log_every`` epochs (and after the last) is written to stderr, after
    ``log_prefix`` (which tells runs that train side by side apart).

    The directory is locked for the whole call; a directory holding files that are not a run, a
    run of another configuration, a damaged run, or a run already past ``config.epochs`` is
    refused before anything in it changes.
    """
    resolved = {
        "format": RUN_FORMAT,
        "train": asdict(config) | {"device": device},
        **(run_config or {}),
        "data": data_record(dataset),
    }
    target = resolve_device(device)
    with claimed_directory(run_dir, "run") as directory:
        config_path = directory / "config.json"
        checkpoint_path = directory / "checkpoint.pt"
        model.to(target)
        optimiser = Adam(model.parameters(), lr=config.lr)
        generator = torch.Generator(device="cpu").manual_seed(config.seed)
        torch.manual_seed(config.seed)
        stored = _stored_config(config_path, resolved, model)
        start_epoch, history = 0, []
        if checkpoint_path.exists():
            start_epoch, history = _resume(checkpoint_path, model, optimiser, generator)
        if start_epoch > config.epochs:
            raise InputError(
                f"{directory} holds a run trained {start_epoch} epochs, more than the "
                f"{config.epochs} asked for; nothing was changed. Ask for at least {start_epoch} "
                "epochs, or use another directory."
            )
        if stored != json.loads(json.dumps(resolved, default=str)):
            if resolved["data"]["dataset"] == EMBEDDED_DATA:
                embed_data(dataset, directory / EMBEDDED_DATA)
            _write_json_atomic(config_path, resolved)
        return _train_epochs(
            model, dataset.to(target), config, directory, optimiser, generator,
            start_epoch, history, progress, log_every, log_prefix,
        )  # fmt: skip


def _train_epochs(
    model, data, config, directory, optimiser, generator, start_epoch, history, progress,
    log_every, log_prefix,
) -> list[dict]:  # fmt: skip
    checkpoint_path = directory / "checkpoint.pt"
    show_bar = sys.stderr.isatty() if progress is None else progress
    steps_per_epoch = math.ceil(len(data.train) / config.batch_size)
    epoch = start_epoch
    try:
        for epoch in range(start_epoch, config.epochs):
            record = _one_epoch(
                model, data, config, optimiser, generator, epoch, steps_per_epoch, show_bar,
                checkpoint_path,
            )  # fmt: skip
            history.append(record)
            _save_atomic(
                {
                    "epoch": epoch + 1,
                    "model": model.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all()
                    if torch.cuda.is_available()
                    else None,
                    "generator": generator.get_state(),
                    "history": history,
                },
                checkpoint_path,
            )
            _write_lines_atomic(directory / "metrics.jsonl", history)
            message = (
                f"{log_prefix}epoch {epoch + 1}/{config.epochs}  train {record['train_loss']:.4f}"
            )
            if "test_loss" in record:
                message += f"  test {record['test_loss']:.4f}"
            if (epoch + 1) % log_every == 0 or epoch + 1 == config.epochs:
                print(message, file=sys.stderr)
        _save_atomic(model.state_dict(), directory / "model.pt")
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted at epoch {epoch + 1} of {config.epochs}; {_kept(checkpoint_path)}. Run "
            "the same command again to resume."
        ) from None
    except WriteError as exc:
        raise WriteError(exc.path, f"{exc.reason}; {_kept(checkpoint_path)}") from None
    return history


def _kept(checkpoint_path: Path) -> str:
    """Which checkpoint survives a failure (atomic writes keep the last complete one)."""
    if not checkpoint_path.exists():
        return "no checkpoint had been written yet"
    try:
        epoch = load_checkpoint(checkpoint_path)["epoch"]
    except InputError:
        return f"{checkpoint_path} is kept"
    return f"the checkpoint of epoch {epoch} is kept in {checkpoint_path}"


def _one_epoch(
    model, data, config, optimiser, generator, epoch, steps_per_epoch, show_bar, checkpoint_path
) -> dict:
    started = time.perf_counter()
    weight = kl_warmup(epoch, config.kl_warmup_epochs)
    totals: dict[str, torch.Tensor] = {}
    order = minibatch_indices(
        len(data.train), config.batch_size, generator=generator, device=data.train.x.device
    )
    bar = tqdm(
        order,
        total=steps_per_epoch,
        desc=f"epoch {epoch + 1}/{config.epochs}",
        disable=not show_bar,
        leave=False,
    )
    for step, index in enumerate(bar):
        loss = _accumulate(totals, _terms(model, data.train, index, config), weight)
        if not torch.isfinite(loss):
            value = loss.detach().item()
            raise TrainingDivergedError(
                f"The loss became {value} at epoch {epoch + 1}, step {step + 1}; "
                f"{_kept(checkpoint_path)}. Lower the learning rate or check the data and "
                "hyper-parameters."
            )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if show_bar:  # reading the running KL syncs the device: only when a bar is shown
            seen = min((step + 1) * config.batch_size, len(data.train))
            kl = sum(float(v) for k, v in totals.items() if k.startswith("kl_")) / seen
            bar.set_postfix(loss=f"{loss.detach().item():.4g}", kl=f"{kl:.4g}")
    means = {k: float(v) / len(data.train) for k, v in totals.items()}
    record = {
        "epoch": epoch + 1,
        "train_loss": means["loss"],
        "recon": means["recon"],
        "kl": {k.removeprefix("kl_"): v for k, v in means.items() if k.startswith("kl_")},
        "kl_weight": weight,
    }
    if data.test is not None:
        record["test_loss"] = _evaluate(model, data.test, config)["loss"]
    record["seconds"] = time.perf_counter() - started
    return record


def _with_added_defaults(stored: dict, model: nn.Module) -> dict:
    """``stored`` with model settings added since it was written filled in at their defaults: a
    run trained before a setting existed was trained as its default, and still resumes."""
    config = getattr(model, "config", None)
    if "model" not in stored or not is_dataclass(config):
        return stored
    defaults = {
        f.name: f.default
        for f in fields(config)
        if f.default is not MISSING and f.name not in stored["model"]
    }
    return {**stored, "model": {**json.loads(json.dumps(defaults)), **stored["model"]}}


def _stored_config(config_path: Path, resolved: dict, model: nn.Module) -> dict | None:
    """The stored configuration (None for a new run), refused when it is not ``resolved`` up to
    the epoch count."""
    if not config_path.exists():
        return None
    stored = read_run_config(config_path.parent)
    comparable = _with_added_defaults(stored, model)

    def defining(c: dict) -> dict:
        """What must not change on resume: all but the epoch count, the format marker and where
        the data files are found (``data_dir``, ``verify``), which do not change the data."""
        c = {k: v for k, v in c.items() if k != "format"}
        data = {k: v for k, v in c.get("data", {}).items() if k not in ("data_dir", "verify")}
        train = {k: v for k, v in c["train"].items() if k != "epochs"}
        return {**c, "train": train, "data": data}

    if "dataset" not in comparable.get("data", {}):  # written before runs stored their data
        comparable = {**comparable, "data": resolved["data"]}
    if defining(json.loads(json.dumps(resolved, default=str))) != defining(comparable):
        raise InputError(
            f"{config_path.parent} holds a run with a different configuration; only --epochs "
            "may change on resume. Use another --out directory."
        )
    return stored


def _resume(checkpoint_path: Path, model, optimiser, generator) -> tuple[int, list[dict]]:
    state = load_checkpoint(checkpoint_path)
    load_state_into(model, state["model"], checkpoint_path)
    try:
        optimiser.load_state_dict(state["optimiser"])
        torch.set_rng_state(state["torch_rng"])
        generator.set_state(state["generator"])
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise InputError(
            f"{checkpoint_path} has an optimiser or random-number state that does not fit this "
            f"run ({exc}); remove it to restart the run, or use another directory."
        ) from None
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state["epoch"], state["history"]


def _write_json_atomic(path: Path, obj: dict) -> None:
    _write_text_atomic(path, json.dumps(obj, indent=2, default=str) + "\n")


def _write_lines_atomic(path: Path, records: list[dict]) -> None:
    _write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in records))


def _write_text_atomic(path: Path, text: str) -> None:
    write_text_atomic(path, text)
