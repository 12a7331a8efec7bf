"""Batched multi-configuration training: models of one architecture whose configurations differ
only in scalars — β (per level), a fixed decoder std η_dec, a fixed encoder std σ, the initial
weights and the seed — train as one stacked model in one process (``torch.func.functional_call``
vmapped over stacked parameters, so every layer becomes one batched matmul or convolution).

Each run still gets its own run directory, written exactly as ``train`` writes it (config.json,
metrics.jsonl, checkpoint.pt, model.pt): it can be diagnosed, and resumed alone or batched.
Each configuration's result equals the same configuration trained alone by ``train`` to float
tolerance: its minibatch order comes from its own seed, its reparameterisation noise from a
generator seeded as ``train`` seeds torch's, and an element-wise optimiser (Adam, SGD, …) on
the stacked tensors gives each slice the update it would get alone.

``batch_refusal`` says why a set of runs cannot share a batch (different architectures or
training settings, per-run state an element-wise optimiser cannot keep apart, …);
``train_many`` trains any set of runs, batching those that can be batched.
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, fields, is_dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from tqdm import tqdm

from vaecollapse.core.data import Dataset, minibatch_indices
from vaecollapse.core.errors import InputError, Interrupted
from vaecollapse.core.fileio import WriteError
from vaecollapse.core.logs import LOGGER
from vaecollapse.core.models.latent import noise_source
from vaecollapse.core.remedies import check_remedies, kl_weights
from vaecollapse.core.rundir import claimed_directory, load_checkpoint, load_state_into
from vaecollapse.training.optimisers import (
    build_optimizer,
    build_scheduler,
    legacy_adam_state,
    step_scheduler,
)
from vaecollapse.training.trainer import (
    TrainConfig,
    TrainingDivergedError,
    _save_atomic,
    _stored_config,
    _write_lines_atomic,
    batch_sums,
    due,
    latent_level_names,
    objective,
    record_run_config,
    resolve_device,
    run_record,
    train,
)

# Model settings that may differ within a batch: each lives in a parameter or buffer, or (β)
# enters only the loss, which is computed per configuration.
BATCHED_SETTINGS = frozenset({"beta", "betas", "eta_dec", "sigma", "sigmas"})
# Optimisers whose update of each tensor element reads only that element's gradient and state
# (plus a shared step count), so stacking runs' parameters changes nothing.
ELEMENTWISE_OPTIMIZERS = frozenset(
    {"Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Rprop", "SGD"}
)
STEP_COUNTERS = frozenset({"step"})  # optimiser state shared by every element
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


def batch_refusal(runs: Sequence[Run]) -> str | None:
    """Why ``runs`` cannot train as one batch, or None when they can."""
    first = runs[0]
    model_config = getattr(first.model, "config", None)
    if not is_dataclass(model_config):
        return "the models carry no configuration to compare"
    training = replace(first.config, seed=0)
    if first.config.optimizer not in ELEMENTWISE_OPTIMIZERS:
        return f"{first.config.optimizer} is not an element-wise optimiser"
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


def train_many(
    runs: Sequence[Run],
    dataset: Dataset,
    *,
    device: str = "auto",
    progress: bool | None = None,
    log_every: int = 1,
    log_prefix: str = "",
) -> list[list[dict]]:
    """Train every run (or resume it, or skip it when complete); returns each run's metrics.
    Runs that can share a batch (``batch_groups``) train as one, the others one by one."""
    histories: list[list[dict]] = [[] for _ in runs]
    for group in batch_groups(runs):
        members = [runs[i] for i in group]
        if len(members) > 1:
            LOGGER.info(f"{log_prefix}training {len(members)} runs as one batch")
            trained = train_batched(
                members, dataset, device=device, progress=progress, log_every=log_every,
                log_prefix=log_prefix,
            )  # fmt: skip
        else:
            run = members[0]
            history = train(
                run.model, dataset, run.config, run.run_dir, run_config=run.run_config,
                device=device, progress=progress, log_every=log_every, log_prefix=log_prefix,
            )  # fmt: skip
            trained = [history]
        for i, history in zip(group, trained, strict=True):
            histories[i] = history
    return histories


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
            stored = _stored_config(directory / "config.json", resolved, run.model)
            state = None
            if (directory / "checkpoint.pt").exists():
                state = load_checkpoint(directory / "checkpoint.pt")
                load_state_into(run.model, state["model"], directory / "checkpoint.pt")
                histories[i] = state["history"]
            start = 0 if state is None else state["epoch"]
            record_run_config(directory, resolved, dataset, stored, start, run.config.epochs)
            states.append(state)
            if start < run.config.epochs or not (directory / "model.pt").exists():
                starts.setdefault(start, []).append(i)  # complete runs are left as they are
        show_bar = sys.stderr.isatty() if progress is None else progress
        for start, members in sorted(starts.items()):
            batch = _Batch(
                [runs[i] for i in members], [directories[i] for i in members], data, levels,
                target,
            )  # fmt: skip
            batch.resume([states[i] for i in members])
            trained = batch.run(
                start, [histories[i] for i in members], show_bar, log_every, log_prefix
            )
            for i, history in zip(members, trained, strict=True):
                histories[i] = history
    return histories


@dataclass
class _Epoch:
    """One epoch of a batch: each run's mean loss, reconstruction and KL per level
    (``kl_<level>``), and test loss; ``seconds``: each run's share of the wall time."""

    epoch: int
    means: dict[str, list[float]]
    test: list[float] | None
    weights: dict[str, float]
    lr: float
    seconds: float

    def records(self) -> list[dict]:
        """Each run's record of metrics.jsonl, in ``train``'s format."""
        records = []
        for r in range(len(self.means["loss"])):
            kl = {k.removeprefix("kl_"): v[r] for k, v in self.means.items() if k.startswith("kl_")}
            record = {
                "epoch": self.epoch,
                "train_loss": self.means["loss"][r],
                "recon": self.means["recon"][r],
                "kl": kl,
                "kl_weight": self.weights,
                "lr": self.lr,
            }
            if self.test is not None:
                record["test_loss"] = self.test[r]
            record["seconds"] = self.seconds
            record["batched_runs"] = len(self.means["loss"])
            records.append(record)
        return records


class _Batch:
    """Runs that train as one stacked model from the same epoch."""

    def __init__(
        self,
        runs: list[Run],
        directories: list[Path],
        data: Dataset,
        levels: tuple[str, ...],
        device: torch.device,
    ) -> None:
        self.runs, self.directories, self.data, self.levels = runs, directories, data, levels
        self.config = runs[0].config
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
        self.betas = {
            level: torch.tensor([_level_betas(r.model, data)[level] for r in runs], device=device)
            for level in levels
        }
        self.optimizer = build_optimizer(
            self.config.optimizer, list(self.params.values()), self.config.lr,
            self.config.optimizer_args,
        )  # fmt: skip
        self.scheduler = build_scheduler(
            self.config.lr_scheduler, self.optimizer, self.config.lr_scheduler_args
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
        self, inputs: tuple, weights: dict[str, float], shared_inputs: bool, training: bool = True
    ):
        """Every run's loss to minimise ``(R,)`` and its batch sums (each ``(R,)``) on ``inputs``
        (shared by every run, or one slice per run). Outside ``training`` no remedy changes the
        loss (free bits), as in ``evaluate_split``."""
        config, base = self.config, self.base
        remedies = config if training else None

        def one_run(params, buffers, betas, seed_index, *args):
            with noise_source(lambda shape, like: self.draw(shape, like, seed_index)):
                terms = functional_call(
                    base, (params, buffers), args,
                    {"n_samples": config.samples, "analytic": config.analytic},
                )  # fmt: skip
            terms.betas = betas
            loss, kl_levels = objective(terms, weights, remedies)
            return loss.mean(), batch_sums(terms, loss, kl_levels)

        input_dims = (None if shared_inputs else 0,) * len(inputs)
        batched = vmap(one_run, in_dims=(0, 0, 0, 0, *input_dims), randomness="same")
        return batched(self.model_params(), self.buffers, self.betas, self.seed_of_run, *inputs)

    def model_params(self) -> dict[str, torch.Tensor]:
        """The stacked parameters in the models' own layout ``(R, *shape)`` (views of the
        trained tensors, some of which are stored transposed)."""
        return {
            name: p.mT if i in self.transposed else p
            for i, (name, p) in enumerate(self.params.items())
        }

    def minibatches(self, split) -> tuple[list[tuple], bool]:
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
            return [tuple(t[index] for t in tensors) for index in orders[0]], True
        steps = []
        for indices in zip(*orders, strict=True):
            stacked = torch.stack(indices)[self.seed_of_run]  # (R, B)
            steps.append(tuple(t[stacked] for t in tensors))
        return steps, False

    def step(self, losses: torch.Tensor) -> None:
        self.optimizer.zero_grad()
        losses.sum().backward()  # the runs share no parameter: each gets its own gradient
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

    # --- epochs ----------------------------------------------------------------------------------

    def run(
        self, start: int, histories: list[list[dict]], show_bar: bool, log_every: int, prefix: str
    ) -> list[list[dict]]:
        epochs, config = self.config.epochs, self.config
        epoch, unrecorded = start, 0.0
        try:
            for epoch in range(start, epochs):
                outcome = self.one_epoch(epoch, show_bar)
                saving = due(epoch + 1, config.checkpoint_every, epochs)
                if saving or due(epoch + 1, config.record_every, epochs):
                    outcome.seconds += unrecorded
                    for history, record in zip(histories, outcome.records(), strict=True):
                        history.append(record)
                    unrecorded = 0.0
                else:
                    unrecorded += outcome.seconds
                step_scheduler(self.scheduler, None)
                if saving:
                    self.save(epoch + 1, histories)
                if due(epoch + 1, log_every, epochs):
                    train_losses = outcome.means["loss"]
                    LOGGER.info(
                        f"{prefix}{len(self)} runs batched: epoch {epoch + 1}/{epochs}  train "
                        f"{min(train_losses):.4f} … {max(train_losses):.4f}"
                    )
            self.unstack()
            for run, directory in zip(self.runs, self.directories, strict=True):
                _save_atomic(run.model.state_dict(), directory / "model.pt")
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted at epoch {epoch + 1} of {epochs}; each run keeps its last "
                "checkpoint. Run the same command again to resume."
            ) from None
        except WriteError as exc:
            raise WriteError(
                exc.path, f"{exc.reason}; each run keeps its last checkpoint"
            ) from None
        return histories

    def one_epoch(self, epoch: int, show_bar: bool) -> _Epoch:
        config, split = self.config, self.data.train
        started = time.perf_counter()
        steps, shared = self.minibatches(split)
        totals: dict[str, torch.Tensor] = {}
        bar = tqdm(
            steps, desc=f"epoch {epoch + 1}/{config.epochs} ({len(self)} runs)",
            disable=not show_bar, leave=False,
        )  # fmt: skip
        for step, inputs in enumerate(bar):
            weights = kl_weights(config, self.levels, epoch + step / len(steps))
            losses, sums = self.losses(inputs, weights, shared)
            self.check_finite(losses, epoch, step)
            self.step(losses)
            for key, value in sums.items():
                totals[key] = totals.get(key, 0.0) + value.detach()
        means = {k: (v.double() / len(split)).tolist() for k, v in totals.items()}
        test = self.evaluate(self.data.test) if self.data.test is not None else None
        return _Epoch(
            epoch + 1, means, test, weights, self.optimizer.param_groups[0]["lr"],
            (time.perf_counter() - started) / len(self),
        )  # fmt: skip

    def evaluate(self, split) -> list[float]:
        """Each run's mean loss over ``split`` (as ``evaluate_split``: batches of at least 1024,
        no gradients, every KL weight 1)."""
        self.base.eval()
        total = None
        with torch.no_grad():
            for index in minibatch_indices(
                len(split), max(self.config.batch_size, 1024), shuffle=False, device=split.x.device
            ):
                inputs = (split.x[index],) if split.y is None else (split.x[index], split.y[index])
                _, sums = self.losses(inputs, {}, shared_inputs=True, training=False)
                total = sums["loss"] if total is None else total + sums["loss"]
        self.base.train()
        return (total / len(split)).tolist()

    def check_finite(self, losses: torch.Tensor, epoch: int, step: int) -> None:
        finite = torch.isfinite(losses)
        if not bool(finite.all()):
            bad = [str(self.directories[i]) for i in (~finite).nonzero().flatten().tolist()]
            raise TrainingDivergedError(
                f"the loss became non-finite at epoch {epoch + 1}, step {step + 1} in "
                f"{', '.join(bad)}; every run of the batch keeps its last checkpoint. Lower the "
                "learning rate, or train those runs apart."
            )

    # --- checkpoints: each run's own, in ``train``'s format ------------------------------------

    def unstack(self) -> None:
        """Copy every run's slice of the stacked tensors into its own model."""
        with torch.no_grad():
            for r, run in enumerate(self.runs):
                own = dict(run.model.named_parameters()) | dict(run.model.named_buffers())
                for name, stacked in (*self.model_params().items(), *self.buffers.items()):
                    own[name].copy_(stacked[r])

    def save(self, epoch: int, histories: list[list[dict]]) -> None:
        self.unstack()
        stacked = self.optimizer.state_dict()
        scheduler = None if self.scheduler is None else self.scheduler.state_dict()
        for r, (run, directory) in enumerate(zip(self.runs, self.directories, strict=True)):
            seed = int(self.seed_of_run[r])
            state = {
                "epoch": epoch,
                "model": run.model.state_dict(),
                "optimiser": _slice_state(stacked, r, self.transposed),
                "scheduler": scheduler,
                **_rng_record(self.noise_generators[seed]),
                "generator": self.order_generators[seed].get_state(),
                "history": histories[r],
            }
            _save_atomic(state, directory / "checkpoint.pt")
            _write_lines_atomic(directory / "metrics.jsonl", histories[r])

    def resume(self, states: list[dict | None]) -> None:
        """Load the runs' checkpoints (all of one epoch, or none): optimiser, scheduler and the
        generators, which runs of one seed share."""
        if states[0] is None:
            return
        seeds = self.seed_of_run.tolist()
        try:
            own = [legacy_adam_state(s["optimiser"], self.optimizer) for s in states]
            params = list(self.params.values())
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
                f"a checkpoint among {self.directories[0]}, … has an optimiser or random-number "
                f"state that does not fit this run ({exc}); remove it to restart that run."
            ) from None


def _level_betas(model: nn.Module, data: Dataset) -> dict[str, float]:
    """The KL weight of each latent level, as the model's own forward pass reports it."""
    split = data.train
    inputs = (split.x[:2],) if split.y is None else (split.x[:2], split.y[:2])
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        was_training = model.training
        model.eval()
        betas = dict(model(*inputs).betas)
        model.train(was_training)
    return betas


def _slice_state(stacked: dict, r: int, transposed: frozenset[int]) -> dict:
    """Run ``r``'s optimiser state from the stacked optimiser's (its own slice of every
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
    """The stacked optimiser's state from each run's (all of one step), in the layout of the
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
