"""How a model is trained: ``TrainConfig``, every setting declared with its domain
(``vaecollapse.core.options``), shared by one run and by runs trained side by side."""

from __future__ import annotations

from dataclasses import dataclass

from vaecollapse.core.options import MAX_SEED, POSITIVE, SCALAR_OR_LIST, check_fields, setting
from vaecollapse.core.remedies import FREE_BITS_GROUPS, FREE_BITS_KINDS, SCHEDULES
from vaecollapse.training.optimizers import OPTIMIZERS, SCHEDULERS


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
    optimizer: str = setting("Adam", str, "torch.optim optimizer", choices=OPTIMIZERS)
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
