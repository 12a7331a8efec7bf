"""Remedies for posterior collapse applied during training, as pieces any training loop can use
— a KL-weight schedule (:class:`KLSchedule`), free bits over per-dimension KL (:func:`free_bits`),
He et al.'s aggressive encoder steps (:func:`aggressive_steps`) — and the checks that refuse
combinations that make no sense in ``vaecollapse train``. The remedies that change the model
(BN-VAE means, δ-VAE's committed rate) live on the Gaussian head (``models.latent``).
docs/remedies.md gives each one's paper and formula.

Schedules are functions of the training progress in epochs, fractional within an epoch, so the
weight changes at every step and a run resumed with a larger ``epochs`` keeps its schedule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from vaecollapse.core.errors import InputError

SCHEDULES = ("constant", "linear", "cyclical")
FREE_BITS_GROUPS = ("dimension", "level")
# batch: Kingma et al. (2016), the hinge on the batch mean; sample: the hinge on each sample
FREE_BITS_KINDS = ("batch", "sample")
AGGRESSIVE_WINDOW = 15  # encoder steps per loss comparison in He et al.'s inner loop


def linear_weight(progress: float, warmup_epochs: float) -> float:
    """KL weight rising linearly from 0 to 1 over ``warmup_epochs`` (1 throughout when 0)."""
    if warmup_epochs < 0:
        raise InputError(f"warmup_epochs must be >= 0, got {warmup_epochs}")
    return 1.0 if warmup_epochs == 0 else min(1.0, progress / warmup_epochs)


def cyclical_weight(progress: float, cycle_epochs: float, ratio: float) -> float:
    """Fu et al. (2019)'s cyclical schedule: within each cycle of ``cycle_epochs``, the weight
    rises linearly from 0 to 1 over the first ``ratio`` of the cycle and stays at 1 for the rest."""
    if not (cycle_epochs > 0 and 0 < ratio <= 1):
        raise InputError(f"a cycle needs a positive length and a ratio in (0, 1]; got "
                         f"{cycle_epochs}, {ratio}.")  # fmt: skip
    position = (progress % cycle_epochs) / cycle_epochs
    return min(1.0, position / ratio)


@dataclass(frozen=True)
class KLSchedule:
    """The multiplier of the KL weight β as a function of training progress in epochs
    (fractional within an epoch): ``constant`` (1), ``linear`` (0 → 1 over ``warmup_epochs``)
    or ``cyclical`` (Fu et al.: every ``cycle_epochs``, 0 → 1 over the first ``ratio`` of the
    cycle, then 1). In a loop: ``loss = recon + beta * schedule(epoch + step / steps) * kl``."""

    kind: str = "linear"
    warmup_epochs: float = 0.0
    cycle_epochs: float | None = None
    ratio: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise InputError(f"a KL schedule is one of {SCHEDULES}; got {self.kind!r}.")
        if self.kind == "cyclical" and self.cycle_epochs is None:
            raise InputError("a cyclical KL schedule needs cycle_epochs, one cycle's length.")

    def __call__(self, progress: float) -> float:
        if self.kind == "linear":
            return linear_weight(progress, self.warmup_epochs)
        if self.kind == "cyclical":
            return cyclical_weight(progress, self.cycle_epochs, self.ratio)
        return 1.0


def level_schedules(schedule: str | tuple[str, ...], levels: tuple[str, ...]) -> dict[str, str]:
    """One schedule per latent level: a single name applies to every level; a list gives them in
    the model's level order (level 1 first)."""
    names = (schedule,) * len(levels) if isinstance(schedule, str) else tuple(schedule)
    if len(names) != len(levels):
        raise InputError(
            f"kl_schedule needs one schedule or one per latent level ({', '.join(levels)}); got "
            f"{len(names)}."
        )
    return dict(zip(levels, names, strict=True))


def kl_weights(config: Any, levels: tuple[str, ...], progress: float) -> dict[str, float]:
    """The multiplier of each level's KL weight β at ``progress`` epochs, from a TrainConfig's
    ``kl_schedule``, ``kl_warmup_epochs``, ``kl_cycle_epochs`` and ``kl_cycle_ratio``."""
    return {
        level: KLSchedule(
            name, config.kl_warmup_epochs, config.kl_cycle_epochs, config.kl_cycle_ratio
        )(progress)
        for level, name in level_schedules(config.kl_schedule, levels).items()
    }


def free_bits(
    kl: torch.Tensor, target: float, group: str = "dimension", kind: str = "batch"
) -> torch.Tensor:
    """A level's KL term under free bits with ``target`` nats per group, as ``(B,)`` per-sample
    values whose batch mean is the objective and whose gradients are the objective's.

    ``kl``: ``(B, d)`` per sample and dimension. ``group``: ``dimension`` (each dimension its own
    target) or ``level`` (the level's summed KL against one target). ``kind``: ``batch`` —
    Kingma et al. (2016)'s max(λ, mean over the batch of the group's KL): a group whose batch mean
    is above λ is charged in full and every sample keeps its gradient, one below λ costs λ and
    gives no gradient; ``sample`` — max(λ, KL) for each sample separately, so a sample under λ
    loses its gradient even where the batch mean is above. In a loop:
    ``loss = (recon + beta * free_bits(kl_per_dim, 0.25)).mean()``."""
    if group not in FREE_BITS_GROUPS or kind not in FREE_BITS_KINDS:
        raise InputError(
            f"free bits group must be one of {FREE_BITS_GROUPS} and kind one of "
            f"{FREE_BITS_KINDS}; got {group!r} and {kind!r}."
        )
    if kl.ndim != 2:
        raise InputError(f"free bits take a KL of shape (B, d); got {tuple(kl.shape)}.")
    grouped = kl if group == "dimension" else kl.sum(1, keepdim=True)  # (B, g)
    if kind == "sample":
        return grouped.clamp_min(target).sum(1)
    charged = (grouped.detach().mean(0) > target).to(kl.dtype)  # (g,)
    return (grouped * charged + target * (1 - charged)).sum(1)


def kl_charge(train_config: Any) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """What a level's ``(B, d)`` KL costs per sample ``(B,)`` under the training's free bits
    (``free_bits``), or None where it trains without them (the KL is charged in full)."""
    t = train_config
    if t.free_bits is None:
        return None
    return lambda kl: free_bits(kl, t.free_bits, t.free_bits_group, t.free_bits_kind)


def aggressive_steps(
    encoder_step: Callable[[], float | torch.Tensor],
    max_steps: int = 100,
    window: int = AGGRESSIVE_WINDOW,
) -> int:
    """He et al. (2019)'s inner loop: call ``encoder_step()`` — one encoder-only update on a
    fresh minibatch, returning its loss — until the mean loss over a window of ``window`` steps
    is no lower than the previous window's, at most ``max_steps`` times; returns the steps taken.
    Run it before each decoder step while the mutual information I(x; z) still rises between
    epochs (``vaecollapse.core.diagnostics.mutual_information``), then train normally."""
    if max_steps < 1 or window < 1:
        raise InputError(f"max_steps and window must be at least 1; got {max_steps}, {window}.")
    previous, total, taken = math.inf, 0.0, 0
    for taken in range(1, max_steps + 1):
        total = total + encoder_step()  # a tensor stays on its device until a window closes
        if taken % window == 0:
            current = float(total) / window
            if not current < previous:
                break
            previous, total = current, 0.0
    return taken


def committed_variance_ratio(rate: float) -> float:
    """The s in (0, 1) with s − 1 − ln s = 2·rate: a Gaussian posterior whose variance is at most
    s·η² (η the prior's std) has KL ≥ ``rate`` nats to N(0, η²) per dimension, whatever its mean
    (δ-VAE's committed rate, Razavi et al. 2019, in its simplest form)."""
    if not (math.isfinite(rate) and rate > 0):
        raise InputError(f"delta_rate must be a finite number > 0; got {rate}.")
    low, high = 0.0, 1.0  # g(s) = s − 1 − ln s falls from +∞ to 0 on (0, 1]
    for _ in range(200):
        middle = 0.5 * (low + high)
        if middle - 1 - math.log(middle) > 2 * rate:
            low = middle
        else:
            high = middle
    return high


def check_remedies(model_config: Any, train_config: Any, levels: tuple[str, ...]) -> None:
    """Refuse combinations of remedies, model and training that make no sense, before anything
    is created (an InputError naming the settings)."""
    t = train_config
    schedules = level_schedules(t.kl_schedule, levels)
    deterministic = getattr(model_config, "deterministic", False)
    if deterministic:
        used = [
            name
            for name, on in (
                ("free_bits", t.free_bits is not None),
                ("aggressive_encoder", t.aggressive_encoder),
                ("kl_warmup_epochs", t.kl_warmup_epochs > 0),
                ("kl_schedule=cyclical", "cyclical" in schedules.values()),
                ("mean_batchnorm", getattr(model_config, "mean_batchnorm", None) is not None),
                ("delta_rate", getattr(model_config, "delta_rate", None) is not None),
            )
            if on
        ]
        if used:
            raise InputError(
                f"{', '.join(used)} act on the KL term, and a deterministic autoencoder has "
                "none; drop them or train a VAE."
            )
    if t.kl_warmup_epochs > 0 and "linear" not in schedules.values():
        raise InputError(
            f"kl_warmup_epochs = {t.kl_warmup_epochs} sets the length of a linear schedule, but "
            f"no level has one (kl_schedule = {_shown(t.kl_schedule)})."
        )
    if "cyclical" in schedules.values():
        if t.kl_cycle_epochs is None:
            raise InputError(
                "kl_schedule = cyclical needs kl_cycle_epochs, the length of one cycle in epochs."
            )
        if t.kl_cycle_epochs > t.epochs:
            raise InputError(
                f"a KL cycle of {t.kl_cycle_epochs:g} epochs is longer than the run's {t.epochs} "
                "epochs, so it never completes; shorten kl_cycle_epochs or train longer."
            )
    elif t.kl_cycle_epochs is not None:
        raise InputError("kl_cycle_epochs is set but no level has kl_schedule = cyclical.")
    if t.free_bits is None and (t.free_bits_group, t.free_bits_kind) != ("dimension", "batch"):
        raise InputError("free_bits_group and free_bits_kind need free_bits (the target in nats).")


def _shown(value: str | tuple[str, ...]) -> str:
    return value if isinstance(value, str) else ",".join(value)
