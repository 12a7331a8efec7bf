"""Dai, Wang & Wipf (ICML 2020), Section 5: the decoder variance γ = η_dec² as a threshold.
Proposition 2: some finite γ makes the collapsed solution (q(z|x) = p(z), a constant decoder) the
cheaper one, and as γ grows the dimensions that can collapse exactly grow in number. Section 5.2:
with γ learnable, its optimum is the VAE's own reconstruction error per dimension (eq. 10), which
is at least what a plain autoencoder of the same architecture achieves; a poor autoencoder thus
implies a large γ* and, by Proposition 2, collapse."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vaecollapse.core.data import Dataset
from vaecollapse.core.diagnostics.plots import new_figure, save_figure
from vaecollapse.core.models.factory import load_run_model
from vaecollapse.core.theory import vae_spectrum
from vaecollapse.reproductions.claims import Claim
from vaecollapse.reproductions.common import RunOutcome, data_derived, load
from vaecollapse.reproductions.lucas2019.observation_noise import EPSILON, decoder_std_sweep
from vaecollapse.reproductions.registry import Comparison, Context, EntryResult, register
from vaecollapse.training.config import TrainConfig
from vaecollapse.training.runs import train_run

DAI2020 = "Dai, Wang & Wipf (ICML 2020)"
CONVENTION = (
    "−log p(x|z) = ||x−μ_x||²/(2γ) + (d/2)·log(2πγ) with γ = η_dec², β = 1 (docs/conventions.md): "
    "the paper's energy (4)."
)
GRID_POINTS = 7
SAMPLES = 8  # draws of z per image in the reconstruction error of eq. (10)
AUTOENCODER = {"deterministic": True}  # the VAE settings that make a plain autoencoder


# images decoded at once: a whole split through a CNN, times the draws, would not fit in memory
IMAGES_A_PASS = 256


def reconstruction_error(
    model: nn.Module, x: torch.Tensor, samples: int, images: int = IMAGES_A_PASS
) -> float:
    """(1/nd)·Σ_i E_q ||x_i − μ_x(z)||² (eq. 10) over the rows of ``x`` (n, ...), ``samples``
    draws of z per row (the encoder mean alone for a deterministic autoencoder), about
    ``images`` decoded a pass. The draws are made for the whole split at once, so the value does
    not depend on ``images``."""
    deterministic = model.config.deterministic
    noise = None
    if not deterministic:
        shape = (samples, x.shape[0], model.config.latent_dim)
        noise = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    draws_made = 1 if deterministic else samples
    rows = max(1, images // draws_made)
    total = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, x.shape[0], rows):
            part = x[start : start + rows]
            mean, logvar = model.encode(part)
            if deterministic:
                decoded = model.decoder(mean).unsqueeze(0)
            else:
                draws = noise[:, start : start + rows].to(mean.device)
                decoded = model.decoder(mean + torch.exp(0.5 * logvar) * draws)
            total += ((part - decoded) ** 2).sum(dtype=torch.float64).cpu()
    return float(total / (draws_made * x.numel()))


def train_autoencoder(
    ctx: Context, group: str, dataset: Dataset, settings: dict, training: TrainConfig
) -> tuple[float, float]:
    """Train (or find) the plain autoencoder of ``settings`` in ``group``: its reconstruction
    error per dimension on the training split, and its training seconds."""
    run_dir = ctx.run_dir(group, "autoencoder")
    history = train_run(
        run_dir, "vae", dataset, settings | AUTOENCODER, ctx.training(training),
        log_every=max(1, training.epochs // 4),
    )  # fmt: skip
    model, _ = load_run_model(run_dir)
    seconds = float(sum(record["seconds"] for record in history))
    return reconstruction_error(model, dataset.train.x, SAMPLES), seconds


@dataclass(frozen=True)
class GammaSweep:
    """dai-prop2's runs, which dai-taxonomy-ii shares: a ReLU MLP VAE with γ fixed at each of
    ``stds``² and learnable, and the linear theory's θ on the same data."""

    dataset: Dataset
    latent: int
    stds: tuple[float, ...]
    theta: np.ndarray
    outcomes: dict[str, RunOutcome]
    counted: dict[str, int]  # (ε = EPSILON, δ)-collapsed dimensions of each run
    learned_std: float
    training: TrainConfig
    common: dict
    group: str

    def collapsed(self) -> list[int]:
        """The fixed-γ runs' collapsed counts, along the grid."""
        return [self.counted[f"sigma-{std:g}"] for std in self.stds]


def gamma_sweep(ctx: Context) -> GammaSweep:
    """Train (or find) the γ grid: seven fixed values from 0.05² to (2θ_1)² and γ learnable."""
    if ctx.quick:
        source, hidden, latent, training = "digits", 128, 16, TrainConfig(epochs=60, lr=1e-3)
    else:  # Fig. 1's widths and latent size, two hidden layers
        source, hidden, latent, training = "fashion-mnist", 512, 64, TrainConfig(epochs=20)
    dataset = load(ctx, source)
    common = {"backbone": "mlp", "hidden": hidden, "depth": 2, "latent_dim": latent}
    # the grid reaches past twice the linear theory's first threshold (θ_1 in std units), where
    # a linear VAE keeps nothing: the "finite γ" of Proposition 2, from the data
    theta = vae_spectrum(dataset).values
    stds = tuple(data_derived(s) for s in np.geomspace(0.05, 2 * float(theta[0]), GRID_POINTS))
    group = f"dai-gamma-{source}"
    # γ learnable starts at the grid's third value: log γ moves about 2·lr a step under Adam,
    # so a start far from γ* would not reach it in the epochs given
    outcomes, counted, learned_std = decoder_std_sweep(
        ctx, group, dataset, common, stds, training, stds[2]
    )
    return GammaSweep(
        dataset, latent, stds, theta, outcomes, counted, learned_std, training, common, group
    )


@register(
    "dai-prop2",
    "decoder variance γ as a threshold: collapse rises with γ, complete at a finite γ (Prop. 2)",
    CONVENTION,
    paper=DAI2020,
    data=("fashion-mnist",),
    revision=2,
)
def dai_prop2(ctx: Context) -> EntryResult:
    sweep = gamma_sweep(ctx)
    dataset, latent, stds, theta = sweep.dataset, sweep.latent, sweep.stds, sweep.theta
    outcomes, counted, learned_std = sweep.outcomes, sweep.counted, sweep.learned_std
    theta_1 = float(theta[0])
    autoencoder_error, autoencoder_seconds = train_autoencoder(
        ctx, sweep.group, dataset, sweep.common, sweep.training
    )
    x = dataset.train.x
    learnable, _ = load_run_model(outcomes["sigma-learnable"].run_dir)
    own_error = reconstruction_error(learnable, x, SAMPLES)
    learned_gamma = learned_std**2
    collapsed = sweep.collapsed()
    # where Proposition 2 can be evaluated, a linear decoder: mode i collapses once γ ≥ θ_i²
    # (Dang et al.'s Theorem 4 at β = η_enc = 1), so there γ′ = θ_1²
    linear = [latent - int((theta[:latent] > std).sum()) for std in stds]
    linear_by_run = {f"sigma-{std:g}": n for std, n in zip(stds, linear, strict=True)}

    claim = Claim(
        f"with γ fixed, the (ε = {EPSILON:g}, δ)-collapsed dimensions are no more at the grid's "
        "smallest γ than a linear VAE's there, never fall as γ grows and "
        f"all {latent} collapse at the grid's largest, finite γ (Proposition 2); the learned γ* is "
        "at least the autoencoder's reconstruction error per dimension (eq. 10)"
    )
    # a grid collapsed everywhere would pass the rise and the end: the start must be alive
    claim.less(
        f"collapsed at the smallest γ ({stds[0] ** 2:.3g}), against the linear VAE's count there "
        f"({linear[0]})", collapsed[0], linear[0] + 0.5, "{:g}", scale=1.0,
    )  # fmt: skip
    claim.monotone("collapsed dimensions as γ grows", collapsed, increasing=True, fmt="{:.0f}")
    claim.greater(
        f"collapsed at the largest γ ({stds[-1] ** 2:.3g}), against all {latent}", collapsed[-1],
        latent - 0.5, "{:g}", scale=1.0,
    )  # fmt: skip
    claim.greater(
        "learned γ*, against the autoencoder's error per dimension", learned_gamma,
        autoencoder_error, "{:.4g}",
    )  # fmt: skip
    first_complete = next((s**2 for s, c in zip(stds, collapsed, strict=True) if c == latent), None)
    comparisons = [
        Comparison(
            f"(ε,δ)-collapsed of {latent} as γ = {', '.join(f'{s**2:.3g}' for s in stds)}",
            "rises with γ; complete collapse at a finite γ",
            ", ".join(map(str, collapsed)),
            "—" if first_complete is None else f"complete from γ = {first_complete:.3g}",
        ),
        Comparison(
            "learned γ* vs the learnable VAE's own reconstruction error per dimension (eq. 10)",
            "equal at a stationary point in γ",
            f"{learned_gamma:.4g} vs {own_error:.4g}",
            f"ratio {learned_gamma / own_error:.3f}",
        ),
        Comparison(
            "the autoencoder's reconstruction error per dimension (same architecture)",
            "at most γ*: the VAE cannot reconstruct better than its autoencoder",
            f"{autoencoder_error:.4g}",
            "below γ*" if autoencoder_error < learned_gamma else "ABOVE γ*",
        ),
        Comparison(
            "Proposition 2's γ′",
            "exists, finite",
            "not evaluated for this decoder (it depends on its Lipschitz constants); for a "
            f"linear decoder on these data it is θ_1² = {theta_1**2:.3g}",
            "—",
        ),
        Comparison(
            "a linear VAE's collapsed count at the same γ's (Theorem 4: mode i collapses once "
            "γ ≥ θ_i²)",
            "—",
            ", ".join(map(str, linear)),
            "the trained VAE's minus the linear one's: "
            + ", ".join(f"{c - n:+d}" for c, n in zip(collapsed, linear, strict=True)),
        ),
    ]
    rows = [
        {
            "run": label,
            "gamma": (learned_std if label == "sigma-learnable" else o.settings["eta_dec"]) ** 2,
            "collapsed": counted[label],
            "test_loss": o.history[-1].get("test_loss", math.nan),
            "reconstruction_error": own_error if label == "sigma-learnable" else math.nan,
            "linear_theory_collapsed": linear_by_run.get(label),
        }
        for label, o in outcomes.items()
    ]
    rows.append({"run": "autoencoder", "reconstruction_error": autoencoder_error})
    figure, axis = new_figure((6, 4))
    axis.plot([s**2 for s in stds], collapsed, marker="o", label="γ fixed")
    axis.plot([s**2 for s in stds], linear, ls="--", color="grey", label="linear VAE (theory)")
    axis.plot([learned_gamma], [counted["sigma-learnable"]], "*", ms=12, label="γ learned (γ*)")
    axis.axvline(autoencoder_error, color="grey", ls=":", label="autoencoder's error per dim")
    axis.set(xscale="log", xlabel="γ = η_dec²", ylabel=f"(ε = {EPSILON:g}, δ)-collapsed")
    axis.set_title(f"collapsed dimensions of {latent} against γ ({dataset.name})")
    axis.legend(fontsize=8)
    path = save_figure(figure, ctx.out / "dai-prop2.png")
    seconds = sum(o.train_seconds for o in outcomes.values())
    return EntryResult(
        **claim.fields(),
        rows=rows,
        comparisons=comparisons,
        figures=[path],
        train_seconds=float(seconds + autoencoder_seconds),
    )


MEAN_IMAGE_SHARE = 0.99  # a decoder that ignores z does no better than the mean image: ≥ 99% of it
LEARNED_SHARE = 0.5  # learning γ avoids the collapse: at most half the largest γ's error
FLAT_SHARE = 1e-3  # steps of the error against γ's direction allowed, of the mean image's error


@register(
    "dai-taxonomy-ii",
    "a decoder variance γ fixed too large: every dimension collapsed and reconstructions no better "
    "than the mean image; γ learned avoids it (Section 3, category (ii))",
    CONVENTION,
    paper=DAI2020,
    data=("fashion-mnist",),
)
def dai_taxonomy_ii(ctx: Context) -> EntryResult:
    sweep = gamma_sweep(ctx)
    x = sweep.dataset.train.x
    mean_image_error = float(x.double().var(0, correction=0).mean())
    labels = [f"sigma-{std:g}" for std in sweep.stds] + ["sigma-learnable"]
    errors = {
        label: reconstruction_error(load_run_model(sweep.outcomes[label].run_dir)[0], x, SAMPLES)
        for label in labels
    }
    fixed_errors = [errors[label] for label in labels[:-1]]
    collapsed, latent = sweep.collapsed(), sweep.latent
    largest, learned = labels[-2], "sigma-learnable"
    claim = Claim(
        f"with γ fixed at the grid's largest value ({sweep.stds[-1] ** 2:.3g}) all {latent} "
        f"dimensions are (ε = {EPSILON:g}, δ)-collapsed and the reconstruction error per pixel "
        f"is at least {MEAN_IMAGE_SHARE:.0%} of the mean image's, the error rising with γ along "
        f"the grid (up to {FLAT_SHARE:g} of the mean image's error a step); with γ learned fewer "
        "dimensions collapse and the error is at most "
        f"{LEARNED_SHARE:g} of the largest γ's"
    )
    claim.greater(f"collapsed at γ = {sweep.stds[-1] ** 2:.3g}, against all {latent}",
                  collapsed[-1], latent - 0.5, "{:g}", scale=1.0)  # fmt: skip
    claim.greater(
        f"reconstruction error per pixel at γ = {sweep.stds[-1] ** 2:.3g}, against "
        f"{MEAN_IMAGE_SHARE:g} × the mean image's", errors[largest],
        MEAN_IMAGE_SHARE * mean_image_error, "{:.4g}",
    )  # fmt: skip
    # once every dimension is collapsed each γ gives the mean image: the steps there are noise
    claim.monotone("reconstruction error per pixel as γ grows", fixed_errors, increasing=True,
                   tolerance=FLAT_SHARE * mean_image_error)  # fmt: skip
    claim.less("collapsed with γ learned, against the largest γ's", sweep.counted[learned],
               collapsed[-1], "{:g}", scale=1.0)  # fmt: skip
    claim.less(
        f"reconstruction error with γ learned, against {LEARNED_SHARE:g} × the largest γ's",
        errors[learned], LEARNED_SHARE * errors[largest], "{:.4g}",
    )  # fmt: skip
    gammas = [std**2 for std in sweep.stds]
    comparisons = [
        Comparison(
            f"(ε,δ)-collapsed of {latent}; reconstruction error per pixel, γ fixed at "
            + ", ".join(f"{g:.3g}" for g in gammas),
            "γ too large: most or all dimensions follow the prior, poor reconstructions",
            ", ".join(map(str, collapsed)) + "; " + ", ".join(f"{e:.4g}" for e in fixed_errors),
            f"the mean image's error: {mean_image_error:.4g}",
        ),
        Comparison(
            "γ learned: γ*, collapsed dimensions, reconstruction error per pixel",
            "avoided by learning γ",
            f"{sweep.learned_std**2:.4g}, {sweep.counted[learned]}, {errors[learned]:.4g}",
            "avoided" if claim.holds else "not avoided",
        ),
    ]
    rows = [
        {
            "run": label,
            "gamma": sweep.learned_std**2 if label == learned
            else sweep.outcomes[label].settings["eta_dec"] ** 2,
            "collapsed": sweep.counted[label], "reconstruction_error": errors[label],
            "mean_image_error": mean_image_error,
        }
        for label in labels
    ]  # fmt: skip
    figure, axis = new_figure((6, 4))
    axis.plot(gammas, fixed_errors, marker="o", label="γ fixed")
    axis.plot([sweep.learned_std**2], [errors[learned]], "*", ms=12, label="γ learned (γ*)")
    axis.axhline(mean_image_error, color="grey", ls="--", label="the mean image")
    axis.set(xscale="log", yscale="log", xlabel="γ = η_dec²",
             ylabel="reconstruction error per pixel")  # fmt: skip
    axis.set_title(f"reconstructions against γ ({sweep.dataset.name})")
    axis.legend(fontsize=8)
    path = save_figure(figure, ctx.out / "dai-taxonomy-ii.png")
    seconds = sum(o.train_seconds for o in sweep.outcomes.values())
    return EntryResult(**claim.fields(), rows=rows, comparisons=comparisons, figures=[path],
                       train_seconds=float(seconds))  # fmt: skip
