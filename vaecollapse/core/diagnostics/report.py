"""Diagnosis reports: per-level KL, (ε,δ)-collapse, active units, encoder stds and (optionally)
the importance-weighted log-likelihood, for any model of the latent-model protocol."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from vaecollapse.core.diagnostics.iwae import (
    LikelihoodEstimate,
    importance_log_likelihood,
    model_log_weights,
)
from vaecollapse.core.diagnostics.metrics import (
    AU_THRESHOLD,
    RunningMoments,
    active_units,
    collapse_curve,
    collapsed_dimensions,
    default_epsilons,
    kl_active_fraction,
    mutual_information,
)
from vaecollapse.core.models.latent import GaussianModelSettings
from vaecollapse.core.objectives import kl_diag_gaussians
from vaecollapse.core.options import check_fields, declared, setting
from vaecollapse.core.protocol import LatentLevel, LatentModel, channel_layout


@dataclass
class LevelReport:
    """One latent level. ``kl``: the ``(N, d)`` KL matrix; ``kl_per_dim``: its column means;
    ``mean_variance``: Var_x E_q[z_i | x] per dimension; ``encoder_std``: q's stds ``(N, d)``;
    ``encoder_mean``: q's means ``(N, d)`` (for the mutual information); ``latent_shape``: one
    row's latent before flattening (``(d,)`` for a vector, ``(C, H, W)`` for a grid) with its
    ``channel_axis``; ``prior``: the prior's (mean, std) where it is one fixed N(m, s²) for every
    value, else None."""

    kl: torch.Tensor = field(repr=False)
    mean_variance: torch.Tensor = field(repr=False)
    encoder_std: torch.Tensor = field(repr=False)
    epsilon: float
    delta: float
    epsilons: np.ndarray = field(default_factory=default_epsilons, repr=False)
    encoder_mean: torch.Tensor | None = field(default=None, repr=False)
    _mutual_information: tuple[float, float] | None = field(default=None, repr=False)
    latent_shape: tuple[int, ...] = ()
    channel_axis: int = 0
    prior: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        self.latent_shape = tuple(self.latent_shape) or (self.latent_dim,)

    def __repr__(self) -> str:
        return (
            f"LevelReport(d={self.latent_dim}, kl_total={self.kl_total:.4g}, "
            f"collapsed_dims={self.collapsed_dims}, active_units={self.active_units}, "
            f"epsilon={self.epsilon:g}, delta={self.delta:g})"
        )

    @property
    def mutual_information(self) -> tuple[float, float] | None:
        """I(x; z) over the evaluated rows, nats, and its standard error (metrics.
        mutual_information; one draw per row, seeded, so a report is reproducible)."""
        if self._mutual_information is None and self.encoder_mean is not None:
            self._mutual_information = mutual_information(
                self.encoder_mean,
                2 * torch.log(self.encoder_std),
                generator=torch.Generator().manual_seed(0),
            )
        return self._mutual_information

    @property
    def latent_dim(self) -> int:
        return int(self.kl.shape[1])

    @property
    def kl_per_dim(self) -> np.ndarray:
        return self.kl.double().mean(0).numpy()

    @property
    def kl_total(self) -> float:
        return float(self.kl_per_dim.sum())

    @property
    def collapsed_dims(self) -> list[int]:
        return collapsed_dimensions(self.kl, self.epsilon, self.delta).tolist()

    @property
    def active_units(self) -> int:
        return active_units(self.mean_variance)

    @property
    def kl_active_fraction(self) -> float:
        return kl_active_fraction(self.kl)

    @property
    def collapse_curve(self) -> np.ndarray:
        return collapse_curve(self.kl, self.epsilons, self.delta)

    @property
    def is_grid(self) -> bool:
        """Whether one row's latent has positions as well as channels."""
        return len(self.latent_shape) > 1

    @property
    def position_shape(self) -> tuple[int, ...]:
        """One channel's shape: (H, W) of a (C, H, W) grid, (T,) of a (T, d) sequence."""
        shape = list(self.latent_shape)
        del shape[self.channel_axis]
        return tuple(shape)

    def by_channel(self, values: torch.Tensor) -> torch.Tensor:
        """Per-value figures ``(N, d)`` as ``(N, C, P)``: channels, then their positions."""
        return values[:, channel_layout(self.latent_shape, self.channel_axis)]

    @property
    def kl_per_channel(self) -> np.ndarray:
        """Mean KL per row of each channel, summed over its positions ``(C,)`` (a vector's
        channels are its dimensions)."""
        return self.by_channel(self.kl.double()).mean(0).sum(1).numpy()

    @property
    def kl_per_position(self) -> np.ndarray:
        """Mean KL per row at each position, summed over channels: ``position_shape``."""
        return self.by_channel(self.kl.double()).mean(0).sum(0).reshape(self.position_shape).numpy()

    @property
    def collapsed_per_channel(self) -> np.ndarray:
        """How many of each channel's positions are (ε,δ)-collapsed ``(C,)``."""
        mask = torch.zeros(1, self.latent_dim)
        mask[0, self.collapsed_dims] = 1
        return self.by_channel(mask)[0].sum(1).long().numpy()

    @property
    def collapsed_channels(self) -> list[int]:
        """Channels every position of which is (ε,δ)-collapsed."""
        per_position = int(np.prod(self.position_shape))
        return [int(c) for c in np.flatnonzero(self.collapsed_per_channel == per_position)]

    def aggregate_posterior(self) -> dict | None:
        """The aggregate posterior q(z) = E_x q(z | x) of each channel's values (pooled over
        rows and positions) against the prior: its ``mean`` and ``std`` ``(C,)``, the KL of
        the moment-matched Gaussian to the prior per value (a lower bound on the marginal's
        KL; large where prior draws land in "holes" the decoder never saw; None without a
        fixed prior), and ``scaling_factor`` = 1 / std of every latent value and ``shift`` =
        their mean: what a diffusion model on these latents multiplies (and shifts) them by.
        None when the report holds no encoder means."""
        if self.encoder_mean is None:
            return None
        means = self.by_channel(self.encoder_mean.double())
        variances = self.by_channel(self.encoder_std.double()).square()
        mean = means.mean((0, 2))
        variance = variances.mean((0, 2)) + (means - mean[None, :, None]).square().mean((0, 2))
        shift = float(mean.mean())
        pooled = float((variance + (mean - shift).square()).mean())
        kl = None
        if self.prior is not None:
            prior_mean, prior_std = self.prior
            kl = (
                math.log(prior_std) - 0.5 * torch.log(variance)
                + (variance + (mean - prior_mean).square()) / (2 * prior_std**2) - 0.5
            ).tolist()  # fmt: skip
        return {
            "mean": mean.tolist(),
            "std": variance.sqrt().tolist(),
            "kl_to_prior": kl,
            "scaling_factor": 1 / math.sqrt(pooled) if pooled > 0 else None,
            "shift": shift,
        }

    def to_dict(self) -> dict:
        d = self.latent_dim
        return {
            "latent_dim": d,
            "latent_shape": list(self.latent_shape),
            "channel_axis": self.channel_axis,
            "kl_per_channel": self.kl_per_channel.tolist(),
            "collapsed_per_channel": self.collapsed_per_channel.tolist(),
            "collapsed_channels": self.collapsed_channels,
            "kl_per_position": self.kl_per_position.tolist() if self.is_grid else None,
            "aggregate_posterior": self.aggregate_posterior(),
            "kl_per_dim": self.kl_per_dim.tolist(),
            "kl_total": self.kl_total,
            "collapsed_dims": self.collapsed_dims,
            "active_units": self.active_units,
            "active_units_pct": 100.0 * self.active_units / d,
            "kl_active_pct": 100.0 * self.kl_active_fraction,
            "mean_variance": self.mean_variance.tolist(),
            "encoder_std_mean": self.encoder_std.double().mean(0).tolist(),
            "mutual_information": None
            if self.mutual_information is None
            else dict(zip(("nats", "standard_error"), self.mutual_information, strict=True)),
            "collapse_curve": {
                "epsilon": self.epsilons.tolist(),
                "collapsed": self.collapse_curve.tolist(),
            },
        }


@dataclass(repr=False)
class DiagnosisReport:
    """What ``diagnose`` returns. Fields (attribute or key access): ``levels`` (name ->
    LevelReport), ``epsilon``, ``delta``, ``iwae`` (LikelihoodEstimate or None), ``verdict`` (or
    None: per level a summary, and ``findings`` each with a ``code``), ``theory`` (theory vs
    learned, linear models, or None), ``probes`` (decoder usage, amortisation gap, the loss
    function's KL weight: what was measured), ``warnings`` (misreadings, each with a ``code``)
    and ``settings`` (what the diagnosis was told); for the first level ``kl_per_dim``,
    ``kl_total``, ``active_units``, ``collapsed_dims``, ``kl_active_fraction``. In a notebook it
    shows as the verdict, tables and plots; ``to_dict()``, ``to_json()`` and ``to_dataframe()``
    (pandas) give the numbers."""

    levels: dict[str, LevelReport]
    epsilon: float
    delta: float
    iwae: LikelihoodEstimate | None = None
    verdict: dict | None = None
    theory: dict | None = None
    probes: dict = field(default_factory=dict)
    warnings: list[dict] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        from vaecollapse.core.diagnostics.display import report_text

        return report_text(self)

    def _repr_html_(self) -> str:
        from vaecollapse.core.diagnostics.display import report_html

        return report_html(self)

    def to_dict(self) -> dict:
        """Everything, JSON-ready (what ``diagnosis.json`` holds)."""
        return {
            "epsilon": self.epsilon,
            "delta": self.delta,
            "au_threshold": AU_THRESHOLD,
            "settings": self.settings,
            "levels": {name: level.to_dict() for name, level in self.levels.items()},
            "iwae": None if self.iwae is None else self.iwae.to_json(),
            "theory": self.theory,
            "verdict": self.verdict,
            "probes": {name: probe.to_dict() for name, probe in self.probes.items()},
            "warnings": self.warnings,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """``to_dict()`` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_dataframe(self):
        """One row per (level, dimension): KL, Var E[z|x], mean σ, collapsed, active (pandas)."""
        from vaecollapse.core.diagnostics.display import report_dataframe

        return report_dataframe(self)

    def _first(self) -> LevelReport:
        return next(iter(self.levels.values()))

    @property
    def kl_per_dim(self) -> np.ndarray:
        return self._first().kl_per_dim

    @property
    def kl_total(self) -> float:
        return sum(level.kl_total for level in self.levels.values())

    @property
    def active_units(self) -> int:
        return self._first().active_units

    @property
    def collapsed_dims(self) -> list[int]:
        return self._first().collapsed_dims

    @property
    def kl_active_fraction(self) -> float:
        return self._first().kl_active_fraction

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None


@dataclass(frozen=True)
class CollapseCriteria:
    """Lucas et al.'s (ε, δ): a dimension is collapsed when its KL is below ε for at least a share
    1 − δ of the data."""

    epsilon: float = setting(0.01, float, "KL threshold ε in nats", low=0, low_open=True)
    delta: float = setting(
        0.05, float, "Share δ of the data allowed above ε", low=0, high=1, high_open=True
    )

    def __post_init__(self) -> None:
        check_fields(self)


def _check_settings(epsilon: float, delta: float, eta_enc: float) -> None:
    CollapseCriteria(epsilon, delta)
    declared(GaussianModelSettings)["eta_enc"][0].check("eta_enc", eta_enc)


def level_statistics(
    model: LatentModel,
    x: torch.Tensor,
    y: torch.Tensor | None,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per level of any latent model: (KL ``(B, d)``, E_q[z | x] ``(B, d)``, q's std ``(B, d)``).
    A level whose prior depends on the draws above (KL(q(z_l | z_{l-1}) ‖ p(z_l | z_{l+1})) of a
    hierarchy) or whose posterior depends on the draws below is averaged over ``n_samples``."""
    return _statistics(model.latent_levels(x, y, n_samples=n_samples, generator=generator))


def _statistics(
    levels: list[LatentLevel],
) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    out = {}
    for level in levels:
        kl = kl_diag_gaussians(level.mean, level.logvar, level.prior_mean, level.prior_logvar)
        mean, logvar = level.mean, level.logvar
        if kl.ndim == 3:
            kl = kl.mean(0)
        if mean.ndim == 3:
            mean, logvar = mean.mean(0), logvar.mean(0)
        out[level.name] = (kl, mean, torch.exp(0.5 * logvar))
    return out


def _layout(level: LatentLevel) -> dict:
    """A level's shape, channel axis and fixed prior (mean, std) for its LevelReport."""
    prior = None
    if all(torch.as_tensor(v).numel() == 1 for v in (level.prior_mean, level.prior_logvar)):
        mean, logvar = (float(torch.as_tensor(v)) for v in (level.prior_mean, level.prior_logvar))
        prior = (mean, math.exp(0.5 * logvar))
    shape = level.shape or (level.mean.shape[-1],)
    return {"latent_shape": shape, "channel_axis": level.channel_axis, "prior": prior}


def diagnose_model(
    model: LatentModel,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    epsilon: float = 0.01,
    delta: float = 0.05,
    iwae_k: int = 0,
    batch_size: int = 1024,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
) -> DiagnosisReport:
    """Diagnose a model of the latent-model protocol on ``x`` (and a conditional model's ``y``):
    every level, and the IWAE log-likelihood when ``iwae_k`` > 0. ``generator``: for the draws
    of the levels (leaving the global random state alone)."""
    _check_settings(epsilon, delta, 1.0)
    if isinstance(model, nn.Module):
        model.eval()
    collected: dict[str, list[list[torch.Tensor]]] = {}
    moments: dict[str, RunningMoments] = {}
    layout: dict[str, dict] = {}
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            rows = slice(start, start + batch_size)
            levels = model.latent_levels(
                x[rows], None if y is None else y[rows], n_samples=n_samples, generator=generator
            )
            for level in levels:
                layout.setdefault(level.name, _layout(level))
            for name, (kl, mean, std) in _statistics(levels).items():
                collected.setdefault(name, [[], [], []])
                collected[name][0].append(kl.cpu())
                collected[name][1].append(std.cpu())
                collected[name][2].append(mean.cpu())
                moments.setdefault(name, RunningMoments()).update(mean)
    levels = {
        name: LevelReport(
            torch.cat(kls),
            moments[name].variance.cpu(),
            torch.cat(stds),
            epsilon,
            delta,
            encoder_mean=torch.cat(means),
            **layout[name],
        )
        for name, (kls, stds, means) in collected.items()
    }
    iwae = None
    if iwae_k > 0:
        iwae = importance_log_likelihood(model_log_weights(model), x, y, k=iwae_k)
    return DiagnosisReport(levels, epsilon, delta, iwae)
