"""Training: any torch.optim optimiser (Adam by default) and learning-rate scheduler over
device-resident tensors, optional gradient-norm clipping, one JSON line of metrics per epoch,
atomic checkpoints, exact resume, and a guard that stops on a non-finite loss.

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
from dataclasses import MISSING, asdict, dataclass, fields, is_dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from vaecollapse.core.data import Dataset, minibatch_indices
from vaecollapse.core.diagnostics.metrics import mutual_information
from vaecollapse.core.errors import InputError, Interrupted
from vaecollapse.core.fileio import WriteError, replace_atomically, write_text_atomic
from vaecollapse.core.logs import LOGGER
from vaecollapse.core.options import MAX_SEED, POSITIVE, SCALAR_OR_LIST, check_fields, setting
from vaecollapse.core.remedies import (
    FREE_BITS_GROUPS,
    FREE_BITS_KINDS,
    SCHEDULES,
    aggressive_steps,
    check_remedies,
    free_bits,
    kl_weights,
)
from vaecollapse.core.rundir import (
    EMBEDDED_DATA,
    RUN_FORMAT,
    claimed_directory,
    data_record,
    embed_data,
    load_checkpoint,
    load_state_into,
    read_run_config,
)
from vaecollapse.training.optimisers import (
    OPTIMIZERS,
    SCHEDULERS,
    build_optimizer,
    build_scheduler,
    describe_optimizer,
    describe_scheduler,
    legacy_adam_state,
    step_scheduler,
)

# Training settings that do not change the trained model: they may change on resume.
UNDEFINING_SETTINGS = ("epochs", "checkpoint_every", "record_every")
# Metrics of an epoch that a sparse record sums over the epochs since the record before.
ADDITIVE_METRICS = frozenset({"seconds", "encoder_steps"})


def latent_level_names(model_config: Any) -> tuple[str, ...]:
    """The names of the latent levels a model configuration describes, level 1 first (one
    level, ``z``, unless it names several; None for a model without a configuration)."""
    names = getattr(model_config, "level_names", None)
    return tuple(names()) if callable(names) else ("z",)


class TrainingDivergedError(InputError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained; each setting declared with its domain
    (``vaecollapse.core.options``)."""

    epochs: int = setting(100, int, "Epochs to train (a larger count continues a run)", low=1)
    batch_size: int = setting(128, int, "Minibatch size", low=1)
    lr: float = setting(1e-3, float, "Learning rate", low=0, low_open=True)
    seed: int = setting(
        0, int, "Seed of the initial weights, batches and samples", low=0, high=MAX_SEED
    )
    samples: int = setting(1, int, "Reparameterisation samples per input", low=1)
    analytic: bool = setting(
        False, bool, "Exact expected reconstruction (linear backbone; Lucas et al.)"
    )
    kl_schedule: str | tuple[str, ...] = setting(
        "linear", str, "KL weight schedule: constant, linear (--kl-warmup-epochs) or cyclical "
        "(--kl-cycle-epochs); one, or one per latent level", choices=SCHEDULES,
        shape=SCALAR_OR_LIST,
    )  # fmt: skip
    kl_warmup_epochs: float = setting(
        0.0, float, "Epochs over which a linear schedule ramps the KL weight from 0 to 1", low=0
    )
    kl_cycle_epochs: float | None = setting(
        None, float, "Length of one cycle of the cyclical schedule, in epochs", **POSITIVE
    )
    kl_cycle_ratio: float = setting(
        0.5, float, "Share of each cycle over which the cyclical schedule ramps", low=0,
        low_open=True, high=1,
    )  # fmt: skip
    free_bits: float | None = setting(
        None, float, "Free bits: nats of KL per group that cost the same as none", **POSITIVE
    )
    free_bits_group: str = setting(
        "dimension", str, "Free-bits group: each latent dimension, or each level's sum",
        choices=FREE_BITS_GROUPS,
    )  # fmt: skip
    free_bits_kind: str = setting(
        "batch", str, "Free-bits hinge on the batch mean (Kingma et al.) or on each sample",
        choices=FREE_BITS_KINDS,
    )  # fmt: skip
    aggressive_encoder: bool = setting(
        False, bool, "He et al.'s aggressive training: encoder-only steps before each decoder "
        "step, until mutual information stops rising",
    )  # fmt: skip
    aggressive_max_steps: int = setting(
        100, int, "Most encoder-only steps before one decoder step", low=1
    )
    optimizer: str = setting("Adam", str, "torch.optim optimiser", choices=OPTIMIZERS)
    optimizer_args: dict | None = setting(
        None, dict, "Its other keyword arguments, e.g. momentum=0.9,nesterov=true"
    )
    lr_scheduler: str | None = setting(
        None, str, "torch.optim.lr_scheduler stepped once per epoch", choices=SCHEDULERS
    )
    lr_scheduler_args: dict | None = setting(
        None, dict, "Its arguments, e.g. step_size=30,gamma=0.5"
    )
    monitor: bool = setting(
        False, bool, "Watch collapse as it happens: monitor.jsonl and logged events"
    )
    monitor_every: int = setting(1, int, "Epochs between two monitor updates", low=1)
    checkpoint_every: int = setting(
        1, int, "Epochs between two checkpoints (and metrics.jsonl writes); the last epoch is "
        "always saved. Raise it for runs of many tiny epochs, where saving dominates",
        low=1,
    )  # fmt: skip
    record_every: int = setting(
        1, int, "Epochs between two records of metrics.jsonl (each checkpoint's epoch and the "
        "last are always recorded; a record's seconds and encoder steps cover the epochs since the "
        "record before)",
        low=1,
    )  # fmt: skip
    clip_grad_norm: float | None = setting(
        None, float, "Clip the gradients' total norm to this (Dang et al.'s scripts: 0.1)",
        low=0, low_open=True,
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_fields(self)


TRAINING_DEVICES = ("cpu", "cuda", "mps")


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` (CUDA where present, else the CPU) or a device torch trains on that is here."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise InputError(f"unknown device '{device}'; use auto, cpu or cuda[:N].") from None
    if resolved.type not in TRAINING_DEVICES:
        raise InputError(f"device '{device}' cannot train models; use auto, cpu, cuda[:N] or mps.")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda was asked for but no CUDA device is available.")
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise InputError(
            f"device {device} was asked for but this machine has {torch.cuda.device_count()} "
            "CUDA devices (cuda:0 onwards)."
        )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise InputError("device mps was asked for but no Apple GPU is available.")
    return resolved


def _save_atomic(obj: object, path: Path) -> None:
    replace_atomically(path, lambda tmp: torch.save(obj, tmp))


def evaluate_split(model: nn.Module, dataset_split, config: TrainConfig) -> dict[str, float]:
    """Mean loss, reconstruction and KL per level over a split, in batches, without gradients."""
    model.eval()
    totals: dict[str, torch.Tensor] = {}
    n = len(dataset_split)
    with torch.no_grad():
        for index in minibatch_indices(
            n, max(config.batch_size, 1024), shuffle=False, device=dataset_split.x.device
        ):
            _accumulate(totals, _terms(model, dataset_split, index, config))
    model.train()
    return {k: float(v) / n for k, v in totals.items()}


def _terms(model: nn.Module, split, index: torch.Tensor, config: TrainConfig):
    inputs = (split.x[index],) if split.y is None else (split.x[index], split.y[index])
    return model(*inputs, n_samples=config.samples, analytic=config.analytic)


def objective(
    terms, weights: dict[str, float] | None = None, config: TrainConfig | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss to minimise per sample ``(B,)`` and each level's KL summed over its dimensions
    ``(B,)``. ``weights``: each level's schedule multiplier (1 where absent); ``config``: its free
    bits (none when None)."""
    kl_levels = {k: v.sum(1) for k, v in terms.kl.items()}
    charged = kl_levels
    if config is not None and config.free_bits is not None:
        charged = {
            k: free_bits(v, config.free_bits, config.free_bits_group, config.free_bits_kind)
            for k, v in terms.kl.items()
        }
    weights = weights or {}
    loss = terms.recon + sum(weights.get(k, 1.0) * terms.betas[k] * v for k, v in charged.items())
    return loss, kl_levels


def batch_sums(terms, loss: torch.Tensor, kl_levels: dict[str, torch.Tensor]) -> dict:
    """The batch's summed loss, reconstruction and KL per level (``kl_<level>``)."""
    sums = {"loss": loss.sum(), "recon": terms.recon.sum()}
    return sums | {f"kl_{k}": v.sum() for k, v in kl_levels.items()}


def _accumulate(
    totals: dict[str, torch.Tensor] | None,
    terms,
    weights: dict[str, float] | None = None,
    config: TrainConfig | None = None,
) -> torch.Tensor:
    """Add the batch's sums (``batch_sums``) to ``totals`` (unless None) as device tensors (no
    host sync per step); return the batch loss to minimise (``objective``'s mean)."""
    loss, kl_levels = objective(terms, weights, config)
    if totals is not None:
        for key, value in batch_sums(terms, loss, kl_levels).items():
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
    optimizer: torch.optim.Optimizer | None = None,
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> list[dict]:
    """Train ``model`` on ``dataset``, writing into ``run_dir``; returns every epoch's metrics.

    ``run_config``: what else defines the run (the model's settings), stored and compared on
    resume with the data set's specification (``dataset.spec``; generated data without one is
    stored in the run directory as ``data.npz``, so every run can be diagnosed again).
    ``progress``: a tqdm bar within each epoch (default: when stderr is a terminal); a
    summary line every ``log_every`` epochs (and after the last) goes to the ``vaecollapse``
    logger, after ``log_prefix`` (which tells runs that train side by side apart).
    ``optimizer``/``lr_scheduler``: instances to use instead of those ``config`` names (made
    for ``model``'s parameters on the training device); the run stores their class and
    settings.

    The directory is locked for the whole call; a directory holding files that are not a run, a
    run of another configuration, a damaged run, or a run already past ``config.epochs`` is
    refused before anything in it changes.
    """
    model_config = getattr(model, "config", None)
    levels = latent_level_names(model_config)
    check_remedies(model_config, config, levels)
    if config.aggressive_encoder and not hasattr(model, "encoder_parameters"):
        raise InputError(
            "aggressive_encoder needs a model that names its encoder's parameters "
            "(encoder_parameters()); vaecollapse's VAE, CVAE and MHVAE do."
        )
    target = resolve_device(device)
    model.to(target)
    if optimizer is None:
        optimizer = build_optimizer(
            config.optimizer, model.parameters(), config.lr, config.optimizer_args
        )
        lr_scheduler = lr_scheduler or build_scheduler(
            config.lr_scheduler, optimizer, config.lr_scheduler_args
        )
    else:  # the run records what it was given
        name, lr, settings = describe_optimizer(optimizer)
        config = replace(
            config, optimizer=name, lr=lr, optimizer_args=settings or None,
            lr_scheduler=describe_scheduler(lr_scheduler), lr_scheduler_args=None,
        )  # fmt: skip
    resolved = run_record(config, device, run_config, dataset)
    with claimed_directory(run_dir, "run") as directory:
        data = dataset.to(target)
        loop = _Loop(
            model, data, config, directory, optimizer, lr_scheduler,
            torch.Generator(device="cpu").manual_seed(config.seed), levels,
            _monitor(config, model, data, directory),
        )  # fmt: skip
        torch.manual_seed(config.seed)
        stored = _stored_config(directory / "config.json", resolved, model)
        start_epoch, history = 0, []
        if loop.checkpoint.exists():
            start_epoch, history = loop.resume()
        record_run_config(directory, resolved, dataset, stored, start_epoch, config.epochs)
        show_bar = sys.stderr.isatty() if progress is None else progress
        return loop.run(start_epoch, history, show_bar, log_every, log_prefix)


@dataclass
class _Loop:
    """One training run in its claimed directory: epochs, checkpoints, resume."""

    model: nn.Module
    data: Dataset
    config: TrainConfig
    directory: Path
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    generator: torch.Generator
    levels: tuple[str, ...]
    monitor: Any = None  # a CollapseMonitor
    aggressive: bool = False  # whether encoder-only steps precede each decoder step
    information: float = 0.0  # the last mutual information measured while aggressive

    @property
    def checkpoint(self) -> Path:
        return self.directory / "checkpoint.pt"

    def run(
        self, start_epoch: int, history: list[dict], show_bar: bool, log_every: int, prefix: str
    ) -> list[dict]:
        epochs, epoch = self.config.epochs, start_epoch
        self.aggressive = self.config.aggressive_encoder
        if history:
            self.aggressive = history[-1].get("aggressive_next", self.aggressive)
            self.information = history[-1].get("mutual_information", 0.0)
        unrecorded: dict[str, float] = {}  # the additive metrics of epochs not yet recorded
        try:
            for epoch in range(start_epoch, epochs):
                record = self.one_epoch(epoch, show_bar)
                saving = due(epoch + 1, self.config.checkpoint_every, epochs)
                for key in ADDITIVE_METRICS & record.keys():
                    record[key] += unrecorded.pop(key, 0)
                if saving or due(epoch + 1, self.config.record_every, epochs):
                    history.append(record)
                else:
                    unrecorded = {k: record[k] for k in ADDITIVE_METRICS & record.keys()}
                if self.monitor is not None:
                    self.monitor.update(epoch + 1)
                step_scheduler(self.scheduler, record.get("test_loss", record["train_loss"]))
                if saving:
                    self.save(epoch + 1, history)
                if due(epoch + 1, log_every, epochs):
                    message = (
                        f"{prefix}epoch {epoch + 1}/{epochs}  train {record['train_loss']:.4f}"
                    )
                    if "test_loss" in record:
                        message += f"  test {record['test_loss']:.4f}"
                    LOGGER.info(message)
            _save_atomic(self.model.state_dict(), self.directory / "model.pt")
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted at epoch {epoch + 1} of {epochs}; {_kept(self.checkpoint)}. Run "
                "the same command again to resume."
            ) from None
        except WriteError as exc:
            raise WriteError(exc.path, f"{exc.reason}; {_kept(self.checkpoint)}") from None
        return history

    def one_epoch(self, epoch: int, show_bar: bool) -> dict:
        config, train_split = self.config, self.data.train
        started = time.perf_counter()
        steps = math.ceil(len(train_split) / config.batch_size)
        aggressive, encoder_steps = self.aggressive, 0
        totals: dict[str, torch.Tensor] = {}
        order = minibatch_indices(
            len(train_split), config.batch_size, generator=self.generator,
            device=train_split.x.device,
        )  # fmt: skip
        bar = tqdm(
            order,
            total=steps,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not show_bar,
            leave=False,
        )
        for step, index in enumerate(bar):
            weights = kl_weights(config, self.levels, epoch + step / steps)
            if aggressive:
                encoder_steps += self.encoder_steps(weights, epoch, step)
            loss = _accumulate(
                totals, _terms(self.model, train_split, index, config), weights, config
            )
            self.check_finite(loss, epoch, step)
            # aggressive training's decoder step leaves the encoder as its own steps left it
            self.step(loss, keep="decoder" if aggressive else None)
            if show_bar:  # reading the running KL syncs the device: only when a bar is shown
                seen = min((step + 1) * config.batch_size, len(train_split))
                kl = sum(float(v) for k, v in totals.items() if k.startswith("kl_")) / seen
                bar.set_postfix(loss=f"{loss.detach().item():.4g}", kl=f"{kl:.4g}")
        means = {k: float(v) / len(train_split) for k, v in totals.items()}
        record = {
            "epoch": epoch + 1,
            "train_loss": means["loss"],
            "recon": means["recon"],
            "kl": {k.removeprefix("kl_"): v for k, v in means.items() if k.startswith("kl_")},
            "kl_weight": weights,
            "lr": self.optimizer.param_groups[0]["lr"],
        }
        if aggressive:
            information = self.mutual_information(epoch)
            self.aggressive = information > self.information  # He et al.: on while MI rises
            self.information = information
            record |= {
                "encoder_steps": encoder_steps,
                "mutual_information": information,
                "aggressive_next": self.aggressive,
            }
        if self.data.test is not None:
            record["test_loss"] = evaluate_split(self.model, self.data.test, config)["loss"]
        record["seconds"] = time.perf_counter() - started
        return record

    @cached_property
    def encoder_ids(self) -> frozenset[int]:
        """The ids of the encoder's parameters (found once: aggressive training takes tens of
        encoder steps per decoder step)."""
        return frozenset(id(p) for p in self.model.encoder_parameters())

    def check_finite(self, loss: torch.Tensor, epoch: int, step: int) -> None:
        if not torch.isfinite(loss):
            raise TrainingDivergedError(
                f"The loss became {loss.detach().item()} at epoch {epoch + 1}, step {step + 1}; "
                f"{_kept(self.checkpoint)}. Lower the learning rate or check the data and "
                "hyper-parameters."
            )

    def step(self, loss: torch.Tensor, keep: str | None = None) -> None:
        """One optimiser step on ``loss``; ``keep``: ``encoder`` or ``decoder`` updates only that
        part (the other's gradients are dropped, so the optimiser leaves it and its state)."""
        self.optimizer.zero_grad()
        loss.backward()
        if keep is not None:
            for parameter in self.model.parameters():
                if (id(parameter) in self.encoder_ids) != (keep == "encoder"):
                    parameter.grad = None
        if self.config.clip_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_grad_norm)
        self.optimizer.step()

    def encoder_steps(self, weights: dict[str, float], epoch: int, step: int) -> int:
        """He et al. (2019)'s inner loop: encoder-only steps on fresh minibatches until the mean
        loss over a window of steps stops falling, at most ``aggressive_max_steps``; returns the
        steps taken."""
        config, split = self.config, self.data.train

        def encoder_step() -> torch.Tensor:
            index = torch.randint(
                len(split), (min(config.batch_size, len(split)),), generator=self.generator
            ).to(split.x.device)
            loss = _accumulate(None, _terms(self.model, split, index, config), weights, config)
            self.check_finite(loss, epoch, step)
            self.step(loss, keep="encoder")
            return loss.detach()

        return aggressive_steps(encoder_step, config.aggressive_max_steps)

    def mutual_information(self, epoch: int) -> float:
        """I(x; z) of the first latent level over the test split (else the training split), the
        quantity whose rise keeps aggressive training on."""
        split = self.data.evaluation_split
        self.model.eval()
        with torch.no_grad():
            first = self.model.latent_levels(split.x, split.y)[0]
        self.model.train()
        generator = torch.Generator().manual_seed(self.config.seed + epoch)
        return mutual_information(first.mean, first.logvar, generator=generator)[0]

    def save(self, epoch: int, history: list[dict]) -> None:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        state = {
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimiser": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": cuda,
            "generator": self.generator.get_state(),
            "history": history,
        }
        _save_atomic(state, self.checkpoint)
        _write_lines_atomic(self.directory / "metrics.jsonl", history)

    def resume(self) -> tuple[int, list[dict]]:
        state = load_checkpoint(self.checkpoint)
        load_state_into(self.model, state["model"], self.checkpoint)
        try:
            self.optimizer.load_state_dict(legacy_adam_state(state["optimiser"], self.optimizer))
            if self.scheduler is not None and state.get("scheduler") is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"])
            self.generator.set_state(state["generator"])
        except (ValueError, TypeError, KeyError, RuntimeError) as exc:
            raise InputError(
                f"{self.checkpoint} has an optimiser or random-number state that does not fit "
                f"this run ({exc}); remove it to restart the run, or use another directory."
            ) from None
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        return state["epoch"], state["history"]


def run_record(config: TrainConfig, device: str, run_config: dict | None, dataset) -> dict:
    """What ``config.json`` holds: everything that defines the run."""
    return {
        "format": RUN_FORMAT,
        "train": asdict(config) | {"device": device},
        **(run_config or {}),
        "data": data_record(dataset),
    }


def record_run_config(
    directory: Path, resolved: dict, dataset, stored: dict | None, start_epoch: int, epochs: int
) -> None:
    """Refuse a run already past ``epochs``; otherwise write ``config.json`` (and the embedded
    data) where the stored configuration (``_stored_config``) differs from ``resolved``."""
    if start_epoch > epochs:
        raise InputError(
            f"{directory} holds a run trained {start_epoch} epochs, more than the {epochs} "
            f"asked for; nothing was changed. Ask for at least {start_epoch} epochs, or use "
            "another directory."
        )
    if stored != json.loads(json.dumps(resolved, default=str)):
        if resolved["data"]["dataset"] == EMBEDDED_DATA:
            embed_data(dataset, directory / EMBEDDED_DATA)
        _write_json_atomic(directory / "config.json", resolved)


def due(epochs_done: int, every: int, epochs: int) -> bool:
    """Whether something done every ``every`` epochs (and after the last) is due now."""
    return epochs_done % every == 0 or epochs_done == epochs


def _monitor(config: TrainConfig, model: nn.Module, data: Dataset, directory: Path):
    """The run's CollapseMonitor (on the test split, else the training split), or None."""
    if not config.monitor:
        return None
    from vaecollapse.core.monitor import CollapseMonitor

    split = data.evaluation_split
    return CollapseMonitor(
        model, split.x, split.y, every=config.monitor_every, out=directory / "monitor.jsonl"
    )


def _kept(checkpoint_path: Path) -> str:
    """Which checkpoint survives a failure (atomic writes keep the last complete one)."""
    if not checkpoint_path.exists():
        return "no checkpoint had been written yet"
    try:
        epoch = load_checkpoint(checkpoint_path)["epoch"]
    except InputError:
        return f"{checkpoint_path} is kept"
    return f"the checkpoint of epoch {epoch} is kept in {checkpoint_path}"


def _with_added_defaults(stored: dict, model: nn.Module) -> dict:
    """``stored`` with model and training settings added since it was written filled in at their
    defaults: a run trained before a setting existed was trained as its default, and resumes."""
    filled = dict(stored)
    for table, config in (("model", getattr(model, "config", None)), ("train", TrainConfig)):
        if not isinstance(stored.get(table), dict) or not is_dataclass(config):
            continue
        defaults = {
            f.name: f.default
            for f in fields(config)
            if f.default is not MISSING and f.name not in stored[table]
        }
        filled[table] = {**json.loads(json.dumps(defaults)), **stored[table]}
    return filled


def _stored_config(config_path: Path, resolved: dict, model: nn.Module) -> dict | None:
    """The stored configuration (None for a new run), refused when it is not ``resolved`` up to
    the epoch count."""
    if not config_path.exists():
        return None
    stored = read_run_config(config_path.parent)
    comparable = _with_added_defaults(stored, model)

    def defining(c: dict) -> dict:
        """What must not change on resume: all but the ``UNDEFINING_SETTINGS``, the format
        marker and where the data files are found (``data_dir``, ``verify``), none of which
        changes the result."""
        c = {k: v for k, v in c.items() if k != "format"}
        data = {k: v for k, v in c.get("data", {}).items() if k not in ("data_dir", "verify")}
        train = {k: v for k, v in c["train"].items() if k not in UNDEFINING_SETTINGS}
        return {**c, "train": train, "data": data}

    if "dataset" not in comparable.get("data", {}):  # written before runs stored their data
        comparable = {**comparable, "data": resolved["data"]}
    if defining(json.loads(json.dumps(resolved, default=str))) != defining(comparable):
        raise InputError(
            f"{config_path.parent} holds a run with a different configuration; only --epochs "
            "may change on resume. Use another --out directory."
        )
    return stored


def _write_json_atomic(path: Path, obj: dict) -> None:
    _write_text_atomic(path, json.dumps(obj, indent=2, default=str) + "\n")


def _write_lines_atomic(path: Path, records: list[dict]) -> None:
    _write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in records))


def _write_text_atomic(path: Path, text: str) -> None:
    write_text_atomic(path, text)
