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
from .errors import InputError
from .fileio import replace_atomically
from .objectives import kl_warmup
from .optim import Adam


class TrainingDivergedError(InputError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    n_samples: int = 1
    analytic: bool = False  # exact expected reconstruction (linear decoders)
    kl_warmup_epochs: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "n_samples"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1; got {getattr(self, name)}.")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise InputError(f"lr must be a positive number; got {self.lr}.")
        if self.kl_warmup_epochs < 0:
            raise InputError(f"kl_warmup_epochs must be >= 0; got {self.kl_warmup_epochs}.")


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
    return model(*inputs, n_samples=config.n_samples, analytic=config.analytic)


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

    ``run_config``: what else defines the run (model and data settings), stored and compared on
    resume. ``progress``: a tqdm bar within each epoch (default: when stderr is a terminal); a
    summary line every ``log_every`` epochs (and after the last) is written to stderr, after
    ``log_prefix`` (which tells runs that train side by side apart).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = {"train": asdict(config) | {"device": device}, **(run_config or {})}
    config_path, metrics_path = run_dir / "config.json", run_dir / "metrics.jsonl"
    checkpoint_path = run_dir / "checkpoint.pt"
    target = resolve_device(device)
    model.to(target)
    data = dataset.to(target)
    optimiser = Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    torch.manual_seed(config.seed)
    start_epoch, history = 0, []
    if checkpoint_path.exists():
        start_epoch, history = _resume(
            checkpoint_path, config_path, resolved, model, optimiser, generator
        )
    _write_json_atomic(config_path, resolved)
    show_bar = sys.stderr.isatty() if progress is None else progress
    steps_per_epoch = math.ceil(len(data.train) / config.batch_size)
    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        weight = kl_warmup(epoch, config.kl_warmup_epochs)
        totals: dict[str, torch.Tensor] = {}
        order = minibatch_indices(
            len(data.train), config.batch_size, generator=generator, device=target
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
                    f"The loss became {value} at epoch {epoch + 1}, step {step + 1}. The "
                    f"last good checkpoint (epoch {epoch}) is kept in {checkpoint_path}. Lower the "
                    "learning rate or check the data and hyper-parameters."
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
        history.append(record)
        _save_atomic(
            {
                "epoch": epoch + 1,
                "model": model.state_dict(),
                "optimiser": optimiser.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "generator": generator.get_state(),
                "history": history,
            },
            checkpoint_path,
        )
        _write_lines_atomic(metrics_path, history)
        message = f"{log_prefix}epoch {epoch + 1}/{config.epochs}  train {record['train_loss']:.4f}"
        if "test_loss" in record:
            message += f"  test {record['test_loss']:.4f}"
        if (epoch + 1) % log_every == 0 or epoch + 1 == config.epochs:
            print(message, file=sys.stderr)
    _save_atomic(model.state_dict(), run_dir / "model.pt")
    return history


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


def _resume(checkpoint_path, config_path, resolved, model, optimiser, generator):
    stored = json.loads(config_path.read_text()) if config_path.exists() else None
    if stored is not None:
        stored = _with_added_defaults(stored, model)
        old = {**stored, "train": {k: v for k, v in stored["train"].items() if k != "epochs"}}
        new = {**resolved, "train": {k: v for k, v in resolved["train"].items() if k != "epochs"}}
        if json.loads(json.dumps(new)) != old:
            raise InputError(
                f"{config_path.parent} holds a run with a different configuration; only --epochs "
                "may change on resume. Use another --out directory."
            )
    try:
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a damaged checkpoint must not be silently ignored
        raise InputError(
            f"{checkpoint_path} could not be read ({exc}); remove it to restart."
        ) from None
    model.load_state_dict(state["model"])
    optimiser.load_state_dict(state["optimiser"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    generator.set_state(state["generator"])
    return state["epoch"], state["history"]


def _write_json_atomic(path: Path, obj: dict) -> None:
    _write_text_atomic(path, json.dumps(obj, indent=2, default=str) + "\n")


def _write_lines_atomic(path: Path, records: list[dict]) -> None:
    _write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in records))


def _write_text_atomic(path: Path, text: str) -> None:
    replace_atomically(path, lambda tmp: Path(tmp).write_text(text))
