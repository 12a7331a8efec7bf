"""Probes that ask a trained model why its latent is unused, needing only the model and the data:
does the decoder read z, would a better posterior per row revive what collapsed (a lagging
encoder), and what KL weight does the user's own loss function apply. Each is a pure function of
a latent-model protocol implementation and tensors; ``docs/diagnosis.md`` gives the formulas.

B = probe rows, d = the first level's dimensions, S = draws per row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from vaecollapse.core.diagnostics.metrics import collapsed_dimensions
from vaecollapse.core.objectives import kl_diag_gaussians
from vaecollapse.core.protocol import LatentLevel, LatentModel, channel_layout

PROBE_ROWS = 512  # rows the probes use: their figures are means, which 512 rows pin down well
GAP_STEPS = 50
GAP_LEARNING_RATE = 0.1
GAP_DRAWS = 2  # fixed draws per row while optimising (ε and −ε): a smooth, deterministic objective
EVALUATION_DRAWS = 8  # fresh draws per row to score the posteriors before and after
ABLATION_ROWS = 8192  # codes decoded at once by the ablations (dimensions × rows)


def _prior_draws(level: LatentLevel, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    """Draws of the level's prior, ``shape`` = (S, B, d)."""
    prior = level.prior
    noise = torch.randn(shape, dtype=level.mean.dtype, generator=generator)
    return prior.loc + prior.scale * noise.to(level.mean.device)


def _other_rows(rows: int, generator: torch.Generator) -> torch.Tensor:
    """A permutation of ``rows`` with no fixed point (each row paired with another row)."""
    order = torch.randperm(rows, generator=generator)
    partner = torch.empty_like(order)
    partner[order] = torch.roll(order, 1)
    return partner


def _mean_and_error(values: torch.Tensor) -> tuple[float, float]:
    values = values.double()
    error = float(values.std() / math.sqrt(values.numel())) if values.numel() > 1 else math.nan
    return float(values.mean()), error


def channel_of(level: LatentLevel) -> np.ndarray:
    """The channel of each of a level's d flattened values ``(d,)`` (a vector's dimensions are
    their own channels)."""
    layout = channel_layout(level.shape or (level.mean.shape[-1],), level.channel_axis)
    owner = torch.empty(layout.numel(), dtype=torch.int64)
    owner[layout] = torch.arange(layout.shape[0])[:, None]
    return owner.numpy()


@dataclass
class DecoderUsage:
    """How much the decoder reads the first level's code, in nats per row (means over the probe
    rows of log p(x | z)). ``posterior``: z from q(z | x); ``shuffled``: z from q(z | x′) of
    another row; ``prior``: z from the prior; ``ablation[c]``: how much log p(x | z) falls when
    channel c alone is redrawn from the prior ``(C,)`` (a vector's channels are its dimensions;
    a grid's, all positions of one channel); ``channel``: each value's channel ``(d,)``;
    ``used_error``: the standard error of posterior − shuffled; ``residual_std``: for a
    Gaussian decoder with a known η_dec, the rms residual per value that a learned η_dec would
    reach (None otherwise)."""

    level: str
    posterior: float
    shuffled: float
    prior: float
    used_error: float
    ablation: np.ndarray = field(repr=False)
    rows: int
    residual_std: float | None = None
    channel: np.ndarray | None = field(default=None, repr=False)

    @property
    def information_used(self) -> float:
        """log p(x | z from its own row) − log p(x | z from another row): what the code of a row
        tells the decoder about that row."""
        return self.posterior - self.shuffled

    @property
    def per_value(self) -> bool:
        """Whether the ablations are of single values (a vector latent) or whole channels."""
        return self.channel is None or self.channel.size == self.ablation.size

    def ablation_of_values(self) -> np.ndarray:
        """Each value's ablation ``(d,)``: its own, or its channel's."""
        return self.ablation if self.channel is None else self.ablation[self.channel]

    def used_dims(self, threshold: float) -> list[int]:
        """Dimensions (a grid's: channels) whose ablation costs more than ``threshold`` nats
        per row."""
        return [int(i) for i in np.flatnonzero(self.ablation > threshold)]

    def to_dict(self) -> dict:
        return {
            "level": self.level,
            "rows": self.rows,
            "log_likelihood": {
                "posterior": self.posterior, "shuffled": self.shuffled, "prior": self.prior,
            },
            "information_used": self.information_used,
            "information_used_error": self.used_error,
            "ablation_of": "dimension" if self.per_value else "channel",
            "ablation": self.ablation.tolist(),
            "residual_std": self.residual_std,
        }  # fmt: skip


def decoder_usage(
    model: LatentModel,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> DecoderUsage:
    """Does the decoder use z? log p(x | z) with z from q(z | x), from q(z | x′) of another row
    and from the prior, and the fall when each dimension of the first level (each channel of a
    grid) is redrawn from its prior on its own (ABLATION_ROWS codes per decoder call). A decoder
    that ignores z gives the same figure for all three and zero ablations, whatever the
    encoder's KL."""
    generator = generator or torch.Generator().manual_seed(0)
    partner = _other_rows(x.shape[0], generator)
    sums = {"posterior": [], "shuffled": [], "prior": [], "used": [], "ablation": []}
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            rows = slice(start, start + batch_size)
            xb, yb = x[rows], None if y is None else y[rows]
            level = model.latent_levels(xb, yb, n_samples=1, generator=generator)[0]
            z = level.sample  # (1, B, d)
            channel = torch.as_tensor(channel_of(level), device=z.device)
            others = model.latent_levels(x[partner[rows]], None if y is None else y[partner[rows]],
                                         n_samples=1, generator=generator)[0].sample  # fmt: skip
            from_prior = _prior_draws(level, z.shape, generator)
            own = model.log_likelihood(xb, yb, z)[0]
            other = model.log_likelihood(xb, yb, others)[0]
            sums["posterior"].append(own)
            sums["shuffled"].append(other)
            sums["used"].append(own - other)
            sums["prior"].append(model.log_likelihood(xb, yb, from_prior)[0])
            drops = []
            channels = torch.arange(int(channel.max()) + 1, device=z.device)
            for chosen in channels.split(max(1, ABLATION_ROWS // z.shape[1])):
                redrawn = (channel[None, :] == chosen[:, None])[:, None, :]  # (c, 1, d)
                ablated = torch.where(redrawn, from_prior, z)  # code j redraws channel chosen[j]
                drops.append(own - model.log_likelihood(xb, yb, ablated))
            sums["ablation"].append(torch.cat(drops))  # (C, B)
    own = torch.cat(sums["posterior"])
    _, error = _mean_and_error(torch.cat(sums["used"]))
    return DecoderUsage(
        level.name,
        posterior=float(own.double().mean()),
        shuffled=float(torch.cat(sums["shuffled"]).double().mean()),
        prior=float(torch.cat(sums["prior"]).double().mean()),
        used_error=error,
        ablation=torch.cat(sums["ablation"], dim=1).double().mean(1).cpu().numpy(),
        rows=int(x.shape[0]),
        residual_std=_residual_std(model, own, x),
        channel=channel.cpu().numpy(),
    )


def _residual_std(
    model: LatentModel, log_likelihood: torch.Tensor, x: torch.Tensor
) -> float | None:
    """For a Gaussian decoder with a stated η_dec (an adapter's ``eta_dec``): the rms residual
    per value, recovered from log N(x; f(z), η² I) = −‖x − f(z)‖²/(2η²) − D(log η + ½ log 2π)."""
    eta = getattr(model, "eta_dec", None)
    if getattr(model, "likelihood", None) != "gaussian" or getattr(model, "decoder", None) is None:
        return None
    width = x[0].numel()
    squared = (
        -2
        * eta**2
        * (log_likelihood.double() + width * (math.log(eta) + 0.5 * math.log(2 * math.pi)))
    )
    return math.sqrt(max(float(squared.mean()), 0.0) / width)


@dataclass
class AmortisationGap:
    """What optimising q(z | x) per row (from the encoder's output, ``steps`` Adam steps on the
    objective with weight ``beta`` on the KL) gains: the objective before and after (nats per
    row, scored on fresh draws) with the standard error of the gain, the KL per dimension before
    and after ``(d,)``, and the (ε,δ)-collapsed dimensions before and after."""

    level: str
    beta: float
    steps: int
    rows: int
    objective_before: float
    objective_after: float
    gain_error: float
    kl_before: np.ndarray = field(repr=False)
    kl_after: np.ndarray = field(repr=False)
    collapsed_before: list[int] = field(default_factory=list)
    collapsed_after: list[int] = field(default_factory=list)
    epsilon: float = 0.01

    @property
    def gain(self) -> float:
        return self.objective_after - self.objective_before

    @property
    def revived(self) -> list[int]:
        """Dimensions collapsed under the encoder that a per-row posterior brings back: no
        longer (ε,δ)-collapsed, with a mean KL of at least ε (a few rows just over ε are not a
        dimension in use)."""
        back = set(self.collapsed_before) - set(self.collapsed_after)
        return sorted(i for i in back if self.kl_after[i] >= self.epsilon)

    def to_dict(self) -> dict:
        return {
            "level": self.level, "beta": self.beta, "steps": self.steps, "rows": self.rows,
            "objective_before": self.objective_before, "objective_after": self.objective_after,
            "gain": self.gain, "gain_error": self.gain_error,
            "kl_per_dim_before": self.kl_before.tolist(),
            "kl_per_dim_after": self.kl_after.tolist(),
            "collapsed_before": self.collapsed_before, "collapsed_after": self.collapsed_after,
            "revived": self.revived,
        }  # fmt: skip


def _balanced_draws(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """``shape`` = (S, B, d) standard normal draws, S even, made antithetic (ε and −ε) and
    scaled to a second moment of exactly 1 per row and dimension: the fixed draws then match the
    first two moments of N(0, 1), so a decoder that is linear in z sees the exact expectation and
    the per-row optimisation cannot fit the draws' noise."""
    half = torch.randn((shape[0] // 2, *shape[1:]), dtype=torch.float64, generator=generator)
    draws = torch.cat([half, -half])
    return (draws / draws.square().mean(0).sqrt()).float()


def _objective(model, x, y, level, mean, logvar, noise, beta) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: E over ``noise`` (S, B, d) of log p(x | z) − β·KL, and the KL ``(B, d)``."""
    z = mean + torch.exp(0.5 * logvar) * noise
    kl = kl_diag_gaussians(mean, logvar, level.prior_mean, level.prior_logvar)
    return model.log_likelihood(x, y, z).mean(0) - beta * kl.sum(1), kl


def amortisation_gap(
    model: LatentModel,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    beta: float = 1.0,
    epsilon: float = 0.01,
    delta: float = 0.05,
    steps: int = GAP_STEPS,
    learning_rate: float = GAP_LEARNING_RATE,
    generator: torch.Generator | None = None,
) -> AmortisationGap:
    """Is the encoder lagging (He et al. 2019)? Each row's q(z | x) of the first level starts at
    the encoder's output and takes ``steps`` Adam steps (learning rate falling to zero on a
    cosine) on E log p(x | z) − β·KL with ``GAP_DRAWS`` fixed, moment-matched draws; both
    posteriors are then
    scored on fresh draws. Dimensions that collapse under the encoder but not under the per-row
    posteriors are ones the decoder would use if the encoder caught up; a decoder that ignores a
    dimension gives it no gradient, so it stays at the prior. Only the model's one level is
    optimised (a model of one latent level)."""
    generator = generator or torch.Generator().manual_seed(0)
    with torch.no_grad():
        level = model.latent_levels(x, y, n_samples=1, generator=generator)[0]
    start_mean, start_logvar = level.mean.detach(), level.logvar.detach()
    mean = start_mean.clone().requires_grad_(True)
    logvar = start_logvar.clone().requires_grad_(True)
    shape = (GAP_DRAWS, *start_mean.shape)
    fixed = _balanced_draws(shape, generator).to(start_mean.device, start_mean.dtype)
    optimizer = torch.optim.Adam([mean, logvar], lr=learning_rate)
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate * 0.5 * (1 + math.cos(math.pi * step / steps))
        value, _ = _objective(model, x, y, level, mean, logvar, fixed, beta)
        gradients = torch.autograd.grad(-value.sum(), [mean, logvar])  # the model's own stay unset
        mean.grad, logvar.grad = gradients
        optimizer.step()
    fresh = (EVALUATION_DRAWS, *start_mean.shape)
    noise = torch.randn(fresh, dtype=start_mean.dtype, generator=generator).to(start_mean.device)
    with torch.no_grad():
        before, kl_before = _objective(model, x, y, level, start_mean, start_logvar, noise, beta)
        after, kl_after = _objective(model, x, y, level, mean, logvar, noise, beta)
    gain, error = _mean_and_error(after - before)
    return AmortisationGap(
        level.name, beta, steps, int(x.shape[0]),
        objective_before=float(before.double().mean()),
        objective_after=float(before.double().mean()) + gain,
        gain_error=error,
        kl_before=kl_before.double().mean(0).cpu().numpy(),
        kl_after=kl_after.double().mean(0).cpu().numpy(),
        collapsed_before=collapsed_dimensions(kl_before.cpu(), epsilon, delta).tolist(),
        collapsed_after=collapsed_dimensions(kl_after.cpu(), epsilon, delta).tolist(),
        epsilon=epsilon,
    )  # fmt: skip
