"""Training one run: any torch.optim optimizer (Adam by default) and learning-rate scheduler over
device-resident tensors, optional gradient-norm clipping, He et al.'s aggressive encoder steps
and the collapse monitor, in the one loop (``vaecollapse.training.loop``).

A run directory holds ``config.json`` (everything that defines the run), ``metrics.jsonl`` (one
object per epoch), ``checkpoint.pt`` (the latest epoch: model, optimizer, RNG states) and
``model.pt`` (the final weights). Running again on the same directory resumes from the checkpoint;
a larger ``epochs`` continues training. Everything else in the configuration must match.
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vaecollapse.core.data import Dataset, minibatch_indices
from vaecollapse.core.diagnostics.metrics import mutual_information
from vaecollapse.core.errors import InputError
from vaecollapse.core.remedies import aggressive_steps, check_remedies, kl_charge
from vaecollapse.core.rundir import begin_run, claimed_directory, load_state_into, run_record
from vaecollapse.training.config import TrainConfig
from vaecollapse.training.loop import Loop, check_finite, split_inputs, split_sums
from vaecollapse.training.optimizers import (
    build_optimizer,
    build_scheduler,
    describe_optimizer,
    describe_scheduler,
)


def latent_level_names(model_config: Any) -> tuple[str, ...]:
    """The names of the latent levels a model configuration describes, level 1 first (``z``
    for a model without a configuration)."""
    names = getattr(model_config, "level_names", None)
    return tuple(names()) if callable(names) else ("z",)


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


def batch_sums(terms: Any, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    """A batch's summed loss ``loss`` ``(B,)``, reconstruction and KL per level
    (``kl_<level>``), from the forward pass's ``terms``."""
    sums = {"loss": loss.sum(), "recon": terms.recon.sum()}
    return sums | {f"kl_{k}": v.sum(1).sum() for k, v in terms.kl.items()}


def evaluate_split(model: nn.Module, split: Any, config: TrainConfig) -> dict[str, float]:
    """Mean loss, reconstruction and KL per level (``kl_<level>``) over a split, in batches,
    without gradients, every KL weight 1 and no free bits."""
    alone = Alone(model, config, ("z",), None, None, torch.Generator())
    model.eval()
    means = split_sums(alone.losses, split, config.batch_size)
    model.train()
    return {key: float(value) for key, value in means.items()}


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
        generator = torch.Generator(device="cpu").manual_seed(config.seed)
        alone = Alone(model, config, levels, optimizer, lr_scheduler, generator, data, directory)
        monitor = _monitor(config, model, data, directory)
        torch.manual_seed(config.seed)

        def restore(state: dict) -> None:
            load_state_into(model, state["model"], directory / "checkpoint.pt")
            alone.resume([state])

        state = begin_run(directory, resolved, dataset, config.epochs, restore)
        start, history = (0, []) if state is None else (state["epoch"], state["history"])
        show_bar = sys.stderr.isatty() if progress is None else progress
        loop = Loop(alone, data, [directory], monitor)
        return loop.run(start, [history], show_bar, log_every, log_prefix)[0]


class Alone:
    """The loop's strategy for one run: its model, optimizer and minibatch generator; the
    reparameterisation noise comes from torch's global generator, seeded with the run's seed."""

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        levels: tuple[str, ...],
        optimizer: torch.optim.Optimizer | None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None,
        generator: torch.Generator,
        data: Dataset | None = None,
        directory: Path | None = None,
    ) -> None:
        self.model, self.config, self.levels = model, config, levels
        self.data, self.directory = data, directory
        self.optimizer, self.scheduler, self.generator = optimizer, scheduler, generator
        self.charge = kl_charge(config)
        self.aggressive = config.aggressive_encoder  # encoder-only steps precede each step
        self.information = 0.0  # the last mutual information measured while aggressive
        self.taken = 0  # encoder-only steps taken this epoch

    def minibatches(self, split: Any) -> tuple[Any, int, bool]:
        order = minibatch_indices(
            len(split), self.config.batch_size, generator=self.generator, device=split.x.device
        )
        steps = math.ceil(len(split) / self.config.batch_size)
        return (split_inputs(split, index) for index in order), steps, True

    def losses(
        self, inputs: tuple, weights: dict[str, float], shared: bool = True, training: bool = True
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        config = self.config
        terms = self.model(*inputs, n_samples=config.samples, analytic=config.analytic)
        loss = terms.per_sample_loss(weights, self.charge if training else None)
        return loss.mean(), batch_sums(terms, loss)

    def before_step(self, weights: dict[str, float], epoch: int, step: int) -> None:
        """He et al. (2019)'s inner loop while aggressive: encoder-only steps on fresh
        minibatches until the mean loss over a window of steps stops falling, at most
        ``aggressive_max_steps``."""
        if not self.aggressive:
            return
        config, split = self.config, self.data.train

        def encoder_step() -> torch.Tensor:
            index = torch.randint(
                len(split), (min(config.batch_size, len(split)),), generator=self.generator
            ).to(split.x.device)
            loss, _ = self.losses(split_inputs(split, index), weights)
            check_finite(loss, epoch, step, [self.directory])  # steps the loop does not see
            self.update(loss, keep="encoder")
            return loss.detach()

        self.taken += aggressive_steps(encoder_step, config.aggressive_max_steps)

    def step(self, loss: torch.Tensor) -> None:
        # aggressive training's decoder step leaves the encoder as its own steps left it
        self.update(loss, keep="decoder" if self.aggressive else None)

    def update(self, loss: torch.Tensor, keep: str | None = None) -> None:
        """One optimizer step on ``loss``; ``keep``: ``encoder`` or ``decoder`` updates only that
        part (the other's gradients are dropped, so the optimizer leaves it and its state)."""
        self.optimizer.zero_grad()
        loss.backward()
        if keep is not None:
            for parameter in self.model.parameters():
                if (id(parameter) in self.encoder_ids) != (keep == "encoder"):
                    parameter.grad = None
        if self.config.clip_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_grad_norm)
        self.optimizer.step()

    @cached_property
    def encoder_ids(self) -> frozenset[int]:
        """The ids of the encoder's parameters (found once: aggressive training takes tens of
        encoder steps per decoder step)."""
        return frozenset(id(p) for p in self.model.encoder_parameters())

    def train_mode(self, training: bool) -> None:
        self.model.train(training)

    def epoch_extras(self, epoch: int) -> dict[str, Any]:
        if not self.aggressive:
            return {}
        information = self.mutual_information(epoch)
        extras = {
            "encoder_steps": self.taken,
            "mutual_information": information,
            "aggressive_next": information > self.information,  # He et al.: on while MI rises
        }
        self.aggressive, self.information, self.taken = extras["aggressive_next"], information, 0
        return extras

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

    def checkpoint_states(self) -> list[dict[str, Any]]:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        return [
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": cuda,
                "generator": self.generator.get_state(),
            }
        ]

    def resume(self, states: list[dict[str, Any]]) -> None:
        (state,) = states
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None and state.get("scheduler") is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"])
            self.generator.set_state(state["generator"])
        except (ValueError, TypeError, KeyError, RuntimeError) as exc:
            raise InputError(
                f"{self.directory / 'checkpoint.pt'} has an optimizer or random-number state "
                f"that does not fit this run ({exc}); remove it to restart the run, or use "
                "another directory."
            ) from None
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        last = state["history"][-1]
        self.aggressive = last.get("aggressive_next", self.aggressive)
        self.information = last.get("mutual_information", 0.0)

    def final_weights(self) -> list[dict[str, torch.Tensor]]:
        return [self.model.state_dict()]


def _monitor(config: TrainConfig, model: nn.Module, data: Dataset, directory: Path):
    """The run's CollapseMonitor (on the test split, else the training split), or None."""
    if not config.monitor:
        return None
    from vaecollapse.core.monitor import CollapseMonitor

    split = data.evaluation_split
    return CollapseMonitor(
        model, split.x, split.y, every=config.monitor_every, out=directory / "monitor.jsonl"
    )
