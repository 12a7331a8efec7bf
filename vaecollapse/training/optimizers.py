"""torch.optim optimizers and learning-rate schedulers chosen by name (the command line and config
files) or passed as instances (Python), and the one place that builds them for the trainer.

The first use of any ``torch.optim`` optimizer imports ``torch._dynamo`` (measured by
``benchmarks/train_speed.py``); the trainer pays that once per process.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

import torch
from torch.optim import lr_scheduler

from vaecollapse.core.errors import InputError
from vaecollapse.core.options import Setting

# The schedulers that take only scalars besides the optimizer (LambdaLR and its kin take
# functions, SequentialLR and ChainedScheduler take other schedulers: Python only), and the
# optimizers a minibatch loop can step (LBFGS needs a closure, SparseAdam sparse gradients).
_NEEDS_OBJECTS = ("LambdaLR", "MultiplicativeLR", "SequentialLR", "ChainedScheduler")
_NOT_MINIBATCH = ("LBFGS", "SparseAdam")

OPTIMIZERS = tuple(
    sorted(
        name
        for name, value in vars(torch.optim).items()
        if inspect.isclass(value)
        and issubclass(value, torch.optim.Optimizer)
        and value is not torch.optim.Optimizer
        and name not in _NOT_MINIBATCH
    )
)
SCHEDULERS = tuple(
    sorted(
        name
        for name, value in vars(lr_scheduler).items()
        if inspect.isclass(value)
        and issubclass(value, lr_scheduler.LRScheduler)
        and not name.startswith("_")
        and name not in ("LRScheduler", *_NEEDS_OBJECTS)
    )
)


FUSED_DEVICES = ("cpu", "cuda")

# The domains of torch's scheduler arguments, which torch itself mostly leaves unchecked (a
# StepLR with step_size -1 trains on, its rate never decaying): each name means the same in
# every scheduler that takes it.
_COUNT, _SPAN = {"kind": int, "low": 1}, {"kind": int, "low": 0}
_SCALE, _FLOOR = {"kind": float, "low": 0, "low_open": True}, {"kind": float, "low": 0}
_SHARE = {"kind": float, "low": 0, "high": 1}
SCHEDULER_ARGUMENTS = {
    name: Setting(help="", **domain)
    for names, domain in (
        (("step_size", "T_max", "T_0", "T_mult", "total_iters", "step_size_up",
          "step_size_down", "total_steps", "epochs", "steps_per_epoch"), _COUNT),
        (("patience", "cooldown"), _SPAN),
        (("gamma", "max_lr", "base_lr", "div_factor", "final_div_factor", "power"), _SCALE),
        (("eta_min", "min_lr", "threshold", "eps"), _FLOOR),
        (("pct_start", "end_factor", "start_factor", "factor"), _SHARE),
    )
    for name in names
}  # fmt: skip


def build_optimizer(
    name: str, parameters: Iterable[torch.nn.Parameter], lr: float, args: dict[str, Any] | None
) -> torch.optim.Optimizer:
    """``torch.optim.<name>(parameters, lr=lr, **args)``; a wrong argument is an InputError."""
    if name not in OPTIMIZERS:
        raise InputError(
            f"optimizer '{name}' is not one of torch.optim's: {', '.join(OPTIMIZERS)}."
        )
    kind = getattr(torch.optim, name)
    given, parameters = args or {}, list(parameters)
    accepted = inspect.signature(kind).parameters
    # torch's default on the CPU is a Python loop over the tensors; its fused kernels (one pass
    # over each tensor) and multi-tensor ones give the same update for a fraction of the time
    chosen = {"fused", "foreach"} & given.keys()
    fusable = all(p.is_floating_point() and p.device.type in FUSED_DEVICES for p in parameters)
    if "fused" in accepted and not chosen and fusable:
        try:
            return kind(parameters, lr=lr, fused=True, **given)
        except (RuntimeError, TypeError, ValueError):
            pass  # a combination the fused kernel lacks: the multi-tensor one below
    if "foreach" in accepted and not chosen:
        given = {"foreach": True, **given}
    try:
        return kind(parameters, lr=lr, **given)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"torch.optim.{name} does not accept the optimizer_args {args} ({exc})."
        ) from None


def build_scheduler(
    name: str | None, optimizer: torch.optim.Optimizer, args: dict[str, Any] | None
) -> lr_scheduler.LRScheduler | None:
    """``torch.optim.lr_scheduler.<name>(optimizer, **args)``, or None without a name."""
    if name is None:
        if args:
            raise InputError("lr_scheduler_args were given without an lr_scheduler.")
        return None
    if name not in SCHEDULERS:
        raise InputError(f"lr_scheduler '{name}' is not one of: {', '.join(SCHEDULERS)}.")
    for key, value in (args or {}).items():
        if key in SCHEDULER_ARGUMENTS:
            SCHEDULER_ARGUMENTS[key].check(f"lr_scheduler_args {key}", value)
    try:
        return getattr(lr_scheduler, name)(optimizer, **(args or {}))
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"torch.optim.lr_scheduler.{name} does not accept the lr_scheduler_args {args} ({exc})."
        ) from None


def step_scheduler(scheduler: lr_scheduler.LRScheduler | None, monitored: float) -> None:
    """One scheduler step at the end of an epoch; ReduceLROnPlateau watches ``monitored``."""
    if scheduler is None:
        return
    if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
        scheduler.step(monitored)
    else:
        scheduler.step()


def describe_optimizer(optimizer: torch.optim.Optimizer) -> tuple[str, float, dict[str, Any]]:
    """(class name, learning rate, its other scalar settings) of an optimizer made elsewhere, as
    the run's configuration stores them."""
    group = optimizer.param_groups[0]
    settings = {
        key: value
        for key, value in optimizer.defaults.items()
        if key != "lr" and isinstance(value, (bool, int, float, str)) and value is not None
    }
    return type(optimizer).__name__, float(group["lr"]), settings


def describe_scheduler(scheduler: lr_scheduler.LRScheduler | None) -> str | None:
    return None if scheduler is None else type(scheduler).__name__
