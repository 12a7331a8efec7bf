"""Batched multi-configuration training: models of one architecture whose configurations differ
only in scalars — β (per level), a fixed decoder std η_dec, a fixed encoder std σ, the initial
weights and the seed — train as one stacked model in one process (``torch.func.functional_call``
vmapped over stacked parameters, so every layer becomes one batched matmul or convolution).

Each run still gets its own run directory, written exactly as ``train`` writes it (config.json,
metrics.jsonl, checkpoint.pt, model.pt): it can be diagnosed, and resumed alone or batched.
Each configuration's result equals the same configuration trained alone by ``train`` to float
tolerance: its minibatch order comes from its own seed, its reparameterisation noise from a
generator seeded as ``train`` seeds torch's, and an element-wise optimizer (Adam, SGD, …) on
the stacked tensors gives each slice the update it would get alone.

``batch_refusal`` says why a set of runs cannot share a batch (different architectures or
training settings, per-run state an element-wise optimizer cannot keep apart, …);
``vaecollapse.training.many.train_many`` trains any set of runs, batching those that can be
batched.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from vaecollapse.core.data import Dataset, minibatch_indices
from vaecollapse.core.errors import InputError
from vaecollapse.core.models.latent import noise_source
from vaecollapse.core.remedies import check_remedies, kl_charge
from vaecollapse.core.rundir import begin_run, claimed_directory, load_state_into, run_record
from vaecollapse.training.config import TrainConfig
from vaecollapse.training.loop import Loop
from vaecollapse.training.optimizers import build_optimizer, build_scheduler
from vaecollapse.training.trainer import batch_sums, latent_level_names, resolve_device

# Model settings that may differ within a batch: each lives in a parameter or buffer, or (β)
# enters only the loss, which is computed per configuration.
BATCHED_SETTINGS = frozenset({"beta", "betas", "eta_dec", "sigma", "sigmas"})
# Optimizers whose update of each tensor element reads only that element's gradient and state
# (plus a shared step count), so stacking runs' parameters changes nothing.
ELEMENTWISE_OPTIMIZERS = frozenset(
    {"Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Rprop", "SGD"}
)
STEP_COUNTERS = frozenset({"step"})  # optimizer state shared by every element
# Backbones whose batches are measured to train faster than their runs one by one
# (benchmarks/batched_training.py); a convolution's batch becomes a grouped convolution.
BATCHED_BACKBONES = ("linear", "mlp")


@dataclass
class Run:
    """One configuration of a batch: its model (initialised), how it trains and where."""

    model: nn.Module
    config: TrainConfig
    run_dir: Path
    run_config: dict | None = None
    label: str = ""  # how progress lines name the run among others (default: its folder's name)


def batch_refusal(runs: Sequence[Run]) -> str | None:
    """Why ``runs`` cannot train as one batch, or None when they can."""
    first = runs[0]
    model_config = getattr(first.model, "config", None)
    if not is_dataclass(model_config):
        return "the models carry no configuration to compare"
    training = replace(first.config, seed=0)
    if first.config.optimizer not in ELEMENTWISE_OPTIMIZERS:
        return f"{first.config.optimizer} is not an element-wise optimizer"
    if first.config.lr_scheduler == "ReduceLROnPlateau":
        return "ReduceLROnPlateau steps on each run's own loss"
    if first.config.aggressive_encoder or first.config.monitor:
        return "aggressive training and the collapse monitor follow each run on its own"
    if getattr(model_config, "mean_batchnorm", None) is not None:
        return "BN-VAE's running statistics are updated in place"
    shapes = _shapes(first.model)
    for run in runs[1:]:
        if type(run.model) is not type(first.model):
            return "the models are of different classes"
        if replace(run.config, seed=0) != training:
            return "the runs' training settings differ in more than the seed"
        if _unbatched_settings(run.model.config) != _unbatched_settings(model_config):
            return f"the model settings differ in more than {sorted(BATCHED_SETTINGS)}"
        if _shapes(run.model) != shapes:
            return "the models' parameters differ in shape"
    return None


def _unbatched_settings(config) -> dict:
    return {f.name: getattr(config, f.name) for f in fields(config)} | dict.fromkeys(
        BATCHED_SETTINGS & {f.name for f in fields(config)}
    )


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    named = [*model.named_parameters(), *model.named_buffers()]
    return {name: tuple(t.shape) for name, t in named}


def batch_groups(runs: Sequence[Run]) -> list[list[int]]:
    """The runs' indices split into groups that can each share a batch, in order of first
    appearance: runs join the first group whose first run they can train beside. A run whose
    backbone is not one of ``BATCHED_BACKBONES`` is a group of its own."""
    groups: list[list[int]] = []
    for i, run in enumerate(runs):
        if not _batched_backbone(run):
            groups.append([i])
            continue
        for group in groups:
            if _batched_backbone(runs[group[0]]) and batch_refusal([runs[group[0]], run]) is None:
                group.append(i)
                break
        else:
            groups.append([i])
    return groups


def _batched_backbone(run: Run) -> bool:
    return getattr(getattr(run.model, "config", None), "backbone", None) in BATCHED_BACKBONES


def train_batched(
    runs: Sequence[Run],
    dataset: Dataset,
    *,
    device: str = "auto",
    progress: bool | None = None,
    log_every: int = 1,
    log_prefix: str = "",
) -> list[list[dict]]:
    """Train ``runs`` as one batch (they must pass ``batch_refusal``); returns each run's
    metrics. Every run directory is locked for the whole call and checked as ``train`` checks
    it; runs already complete are skipped, and runs resumed from different epochs train as
    separate batches. The models are left trained, like ``train`` leaves its model."""
    reason = batch_refusal(runs)
    if reason is not None:
        raise InputError(f"these runs cannot train as one batch: {reason}.")
    target = resolve_device(device)
    levels = latent_level_names(runs[0].model.config)
    for run in runs:
        check_remedies(run.model.config, run.config, levels)
        run.model.to(target)
    data = dataset.to(target)
    histories: list[list[dict]] = [[] for _ in runs]
    with ExitStack() as stack:
        directories = [stack.enter_context(claimed_directory(r.run_dir, "run")) for r in runs]
        starts: dict[int, list[int]] = {}
        states: list[dict | None] = []
        for i, (run, directory) in enumerate(zip(runs, directories, strict=True)):
            resolved = run_record(run.config, device, run.run_config, dataset)
            checkpoint = directory / "checkpoint.pt"

            def restore(state: dict, model: nn.Module = run.model, path: Path = checkpoint):
                load_state_into(model, state["model"], path)

            state = begin_run(directory, resolved, dataset, run.config.epochs, restore)
            start = 0 if state is None else state["epoch"]
            histories[i] = [] if state is None else state["history"]
            states.append(state)
            if start < run.config.epochs or not (directory / "model.pt").exists():
                starts.setdefault(start, []).append(i)  # complete runs are left as they are
        show_bar = sys.stderr.isatty() if progress is None else progress
        for start, members in sorted(starts.items()):
            stacked = Stacked([runs[i] for i in members], [directories[i] for i in members], levels)
            if start > 0:
                stacked.resume([states[i] for i in members])
            loop = Loop(stacked, data, [directories[i] for i in members])
            trained = loop.run(
                start, [histories[i] for i in members], show_bar, log_every, log_prefix
            )
            for i, history in zip(members, trained, strict=True):
                histories[i] = history
    return histories


class Stacked:
    """The loop's strategy for runs that train as one stacked model from the same epoch."""

    def __init__(self, runs: list[Run], directories: list[Path], levels: tuple[str, ...]) -> None:
        self.runs, self.directories, self.levels = runs, directories, levels
        self.config = config = runs[0].config
        self.charge = kl_charge(config)
        device = next(runs[0].model.parameters()).device
        stacked, self.buffers = stack_module_state([r.model for r in runs])
        # vmap's batched Linear hands back a weight's gradient transposed, and autograd copies it
        # into the parameter's layout at every step (a fifth of the ReLU MHVAE's batched step on
        # a CPU, by torch's profiler): such weights are stacked transposed, (R, in, out), and
        # enter the model as views in its own layout
        linear = {
            f"{name}.weight"
            for name, m in runs[0].model.named_modules()
            if isinstance(m, nn.Linear)
        }
        self.transposed = frozenset(i for i, name in enumerate(stacked) if name in linear)
        self.params = {
            name: p.detach().mT.contiguous().requires_grad_(p.requires_grad)
            if i in self.transposed
            else p
            for i, (name, p) in enumerate(stacked.items())
        }
        self.base = copy.deepcopy(runs[0].model).to("meta")
        seeds = sorted({r.config.seed for r in runs})
        self.seed_of_run = torch.tensor([seeds.index(r.config.seed) for r in runs], device=device)
        self.order_generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.noise_generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]
        level_betas = [dict(zip(levels, r.model.config.level_betas(), strict=True)) for r in runs]
        self.betas = {
            level: torch.tensor([betas[level] for betas in level_betas], device=device)
            for level in levels
        }
        self.optimizer = build_optimizer(
            config.optimizer, list(self.params.values()), config.lr, config.optimizer_args
        )
        self.scheduler = build_scheduler(
            config.lr_scheduler, self.optimizer, config.lr_scheduler_args
        )

    def __len__(self) -> int:
        return len(self.runs)

    # --- one step of every configuration -------------------------------------------------------

    def draw(self, shape: tuple[int, ...], like: torch.Tensor, seed_index: torch.Tensor):
        """ε for one reparameterisation: each distinct seed's generator draws what ``train``
        would draw for it; a run takes its seed's draw (one shared draw needs no selection)."""
        draws = [
            torch.randn(shape, dtype=like.dtype, device=like.device, generator=g)
            for g in self.noise_generators
        ]
        if len(draws) == 1:
            return draws[0]
        return torch.stack(draws)[seed_index]

    def losses(
        self, inputs: tuple, weights: dict[str, float], shared: bool, training: bool = True
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Every run's loss to minimise ``(R,)`` and its batch sums (each ``(R,)``) on ``inputs``
        (shared by every run, or one slice per run)."""
        config, base = self.config, self.base
        charge = self.charge if training else None

        def one_run(params, buffers, betas, seed_index, *args):
            with noise_source(lambda shape, like: self.draw(shape, like, seed_index)):
                terms = functional_call(
                    base, (params, buffers), args,
                    {"n_samples": config.samples, "analytic": config.analytic},
                )  # fmt: skip
            terms.betas = betas
            loss = terms.per_sample_loss(weights, charge)
            return loss.mean(), batch_sums(terms, loss)

        input_dims = (None if shared else 0,) * len(inputs)
        batched = vmap(one_run, in_dims=(0, 0, 0, 0, *input_dims), randomness="same")
        return batched(self.model_params(), self.buffers, self.betas, self.seed_of_run, *inputs)

    def model_params(self) -> dict[str, torch.Tensor]:
        """The stacked parameters in the models' own layout ``(R, *shape)`` (views of the
        trained tensors, some of which are stored transposed)."""
        return {
            name: p.mT if i in self.transposed else p
            for i, (name, p) in enumerate(self.params.items())
        }

    def minibatches(self, split: Any) -> tuple[Any, int, bool]:
        """This epoch's inputs per step, and whether every run sees the same ones (one seed)."""
        orders = [
            list(
                minibatch_indices(
                    len(split), self.config.batch_size, generator=g, device=split.x.device
                )
            )
            for g in self.order_generators
        ]
        tensors = (split.x,) if split.y is None else (split.x, split.y)
        if len(orders) == 1:
            return (tuple(t[index] for t in tensors) for index in orders[0]), len(orders[0]), True
        steps = (
            tuple(t[torch.stack(indices)[self.seed_of_run]] for t in tensors)  # (R, B, ...)
            for indices in zip(*orders, strict=True)
        )
        return steps, len(orders[0]), False

    def before_step(self, weights: dict[str, float], epoch: int, step: int) -> None:
        """Nothing: aggressive training follows each run on its own (``batch_refusal``)."""

    def step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad()
        loss.sum().backward()  # the runs share no parameter: each gets its own gradient
        if self.config.clip_grad_norm is not None:
            self.clip(self.config.clip_grad_norm)
        self.optimizer.step()

    def clip(self, max_norm: float) -> None:
        """``clip_grad_norm_`` applied to each run's own gradients."""
        grads = [p.grad for p in self.params.values() if p.grad is not None]
        norms = torch.stack([g.reshape(len(self), -1).norm(dim=1) for g in grads]).norm(dim=0)
        scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.view(-1, *([1] * (g.ndim - 1))))

    def train_mode(self, training: bool) -> None:
        self.base.train(training)

    def epoch_extras(self, epoch: int) -> dict[str, Any]:
        return {"batched_runs": len(self)}

    # --- checkpoints: each run's own, in ``train``'s format ------------------------------------

    def unstack(self) -> None:
        """Copy every run's slice of the stacked tensors into its own model."""
        with torch.no_grad():
            for r, run in enumerate(self.runs):
                own = dict(run.model.named_parameters()) | dict(run.model.named_buffers())
                for name, stacked in (*self.model_params().items(), *self.buffers.items()):
                    own[name].copy_(stacked[r])

    def final_weights(self) -> list[dict[str, torch.Tensor]]:
        self.unstack()
        return [run.model.state_dict() for run in self.runs]

    def checkpoint_states(self) -> list[dict[str, Any]]:
        self.unstack()
        stacked = self.optimizer.state_dict()
        scheduler = None if self.scheduler is None else self.scheduler.state_dict()
        states = []
        for r, run in enumerate(self.runs):
            seed = int(self.seed_of_run[r])
            states.append(
                {
                    "model": run.model.state_dict(),
                    "optimizer": _slice_state(stacked, r, self.transposed),
                    "scheduler": scheduler,
                    **_rng_record(self.noise_generators[seed]),
                    "generator": self.order_generators[seed].get_state(),
                }
            )
        return states

    def resume(self, states: list[dict[str, Any]]) -> None:
        """Load the runs' checkpoints (all of one epoch): optimizer, scheduler and the
        generators, which runs of one seed share."""
        seeds = self.seed_of_run.tolist()
        try:
            params = list(self.params.values())
            own = [s["optimizer"] for s in states]
            self.optimizer.load_state_dict(_stack_states(own, params, self.transposed))
            if self.scheduler is not None and states[0].get("scheduler") is not None:
                self.scheduler.load_state_dict(states[0]["scheduler"])
            for state, seed in zip(states, seeds, strict=True):
                self.order_generators[seed].set_state(state["generator"])
                self.noise_generators[seed].set_state(
                    _noise_state(state, self.noise_generators[seed])
                )
        except (ValueError, TypeError, KeyError, RuntimeError) as exc:
            raise InputError(
                f"a checkpoint among {self.directories[0]}, … has an optimizer or random-number "
                f"state that does not fit this run ({exc}); remove it to restart that run."
            ) from None


def _slice_state(stacked: dict, r: int, transposed: frozenset[int]) -> dict:
    """Run ``r``'s optimizer state from the stacked optimizer's (its own slice of every
    per-element tensor, in the model's layout; shared step counts as they are). ``transposed``:
    the indices of the parameters stacked transposed."""

    def own(index: int, value: torch.Tensor) -> torch.Tensor:
        # contiguous, not a clone of the transposed view: a clone keeps the strides, and a lone
        # run's fused Adam would read the state in its parameter's memory order
        return value[r].mT.contiguous() if index in transposed else value[r].clone()

    state = {
        index: {
            key: value if key in STEP_COUNTERS or not torch.is_tensor(value) else own(index, value)
            for key, value in entry.items()
        }
        for index, entry in stacked["state"].items()
    }
    return {"state": state, "param_groups": copy.deepcopy(stacked["param_groups"])}


def _stack_states(
    states: list[dict], params: list[torch.Tensor], transposed: frozenset[int]
) -> dict:
    """The stacked optimizer's state from each run's (all of one step), in the layout of the
    stacked ``params`` (``transposed``: the indices of those stacked transposed)."""

    def stack(index: int, key: str) -> torch.Tensor:
        value = torch.stack([s["state"][index][key] for s in states]).to(params[index].device)
        return value.mT.contiguous() if index in transposed else value

    first = states[0]
    stacked = {}
    for index, entry in first["state"].items():
        stacked[index] = {
            key: value if key in STEP_COUNTERS or not torch.is_tensor(value) else stack(index, key)
            for key, value in entry.items()
        }
    return {"state": stacked, "param_groups": first["param_groups"]}


def _rng_record(noise: torch.Generator) -> dict:
    """The checkpoint's torch RNG fields, holding the run's noise generator where ``train`` keeps
    torch's global one (so a batched run resumes alone with the same draws)."""
    if noise.device.type == "cpu":
        return {"torch_rng": noise.get_state(), "cuda_rng": None}
    states = torch.cuda.get_rng_state_all()
    states[noise.device.index or torch.cuda.current_device()] = noise.get_state()
    return {"torch_rng": torch.get_rng_state(), "cuda_rng": states}


def _noise_state(state: dict, noise: torch.Generator) -> torch.Tensor:
    if noise.device.type == "cpu":
        return state["torch_rng"]
    if state.get("cuda_rng") is None:
        raise KeyError("cuda_rng")
    return state["cuda_rng"][noise.device.index or torch.cuda.current_device()]
