"""Dai, Wang & Wipf (ICML 2020), Section 6, Figures 1 and 2: autoencoders and VAEs of growing
depth. Figure 1 (left): fully connected networks on Fashion-MNIST (middle: convolutional ones,
here on CIFAR-10 with ``--dataset cifar10``). The paper's claims: the autoencoder's training
reconstruction error first falls with depth (capacity), then rises (bad local minima or plateaus
of a deep unregularised network); the VAE's is always above the autoencoder's; KL warm-up helps
the VAE a little, not past the autoencoder. Added here: each VAE's (ε,δ)-collapsed dimensions and
active units per depth, which the paper does not report. Figure 2: convolutional VAEs with more
convolutions per scale have more encoder stds σ_z near 1."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from vaecollapse.core.data import Dataset
from vaecollapse.core.diagnostics.plots import new_figure, save_figure
from vaecollapse.core.models.factory import load_run_model
from vaecollapse.reproductions.claims import Claim
from vaecollapse.reproductions.common import load, train_labelled, train_runs
from vaecollapse.reproductions.dai2020.decoder_variance import (
    AUTOENCODER,
    DAI2020,
    SAMPLES,
    reconstruction_error,
    train_autoencoder,
)
from vaecollapse.reproductions.lucas2019.observation_noise import EPSILON
from vaecollapse.reproductions.registry import Comparison, Context, EntryResult, register
from vaecollapse.training.config import TrainConfig

KINDS = ("autoencoder", "VAE", "VAE, KL warm-up")


@dataclass(frozen=True)
class Deepening:
    """The networks one dai-fig1 invocation deepens: ``base`` settings with ``depth_key`` set to
    each of ``depths``, trained on ``source`` with ``training``; ``axis`` names the depth."""

    source: str
    base: dict
    depth_key: str
    depths: tuple[int, ...]
    axis: str
    training: TrainConfig


def fig1_deepening(ctx: Context) -> Deepening:
    """Fully connected networks of 1 to 10 hidden layers (Fig. 1 left), or with ``--dataset
    cifar10`` convolutional ones of 1 to 5 convolutions per spatial scale (Fig. 1 middle, which
    the paper runs on CIFAR-100)."""
    if ctx.dataset == "cifar10":
        layers = "convolutions per spatial scale"
        if ctx.quick:
            base = {"backbone": "cnn", "channels": (8, 8), "latent_dim": 8}
            return Deepening("cifar10", base, "conv_depth", (1, 2), layers,
                             TrainConfig(epochs=2, batch_size=16, lr=1e-3))  # fmt: skip
        base = {"backbone": "cnn", "channels": (32, 64, 128), "latent_dim": 64}
        return Deepening("cifar10", base, "conv_depth", (1, 2, 3, 4, 5), layers,
                         TrainConfig(epochs=20, batch_size=64, lr=2e-4))  # fmt: skip
    if ctx.quick:
        base = {"backbone": "mlp", "hidden": 64, "latent_dim": 8}
        return Deepening("digits", base, "depth", (1, 2, 4, 8), "hidden layers",
                         TrainConfig(epochs=60, batch_size=64, lr=1e-3))  # fmt: skip
    # the paper's networks; 20 epochs (18,760 steps) against its 250K iterations
    base = {"backbone": "mlp", "hidden": 512, "latent_dim": 64}
    return Deepening("fashion-mnist", base, "depth", (1, 2, 4, 6, 8, 10), "hidden layers",
                     TrainConfig(epochs=20, batch_size=64, lr=2e-4))  # fmt: skip


@register(
    "dai-fig1",
    "autoencoders and VAEs of growing depth: the reconstruction error against depth (Fig. 1 left)",
    "VAEs: −log p(x|z) with a learnable γ = η_dec², β = 1 (docs/conventions.md); the "
    "reconstruction error is (1/nd)·Σ_i E_q||x_i − μ_x(z)||² on the training split (the "
    "autoencoder's at its code), as the paper plots it.",
    paper=DAI2020,
    data=("fashion-mnist",),
    alternatives=("cifar10",),
    revision=2,
)
def dai_fig1(ctx: Context) -> EntryResult:
    deepening = fig1_deepening(ctx)
    depths, training, latent = deepening.depths, deepening.training, deepening.base["latent_dim"]
    dataset = load(ctx, deepening.source)
    warm_up = replace(training, kl_schedule="linear", kl_warmup_epochs=training.epochs / 2)
    schedules = {"VAE": training, "VAE, KL warm-up": warm_up}  # each VAE kind's training
    x = dataset.train.x
    errors = {kind: [] for kind in KINDS}
    collapsed, active = {kind: [] for kind in KINDS[1:]}, {kind: [] for kind in KINDS[1:]}
    seconds = 0.0
    backbone = deepening.base["backbone"]
    area = f"dai-depth-{backbone}-{dataset.name}"
    if ctx.jobs > 1:
        _train_every_depth(ctx, area, dataset, deepening, schedules)
    for depth in depths:
        model = deepening.base | {deepening.depth_key: depth}
        group = f"{area}/depth{depth}"
        error, trained_seconds = train_autoencoder(ctx, group, dataset, model, training)
        errors["autoencoder"].append(error)
        seconds += trained_seconds
        vae = model | {"learn_eta_dec": True}
        for kind, schedule in schedules.items():
            label = VAE_LABELS[kind]
            outcome = train_runs(ctx, group, "vae", dataset, {label: vae}, schedule)[label]
            seconds += outcome.train_seconds
            trained, _ = load_run_model(outcome.run_dir)
            errors[kind].append(reconstruction_error(trained, x, SAMPLES))
            level = outcome.report.levels["z"]
            collapsed[kind].append(len(level.collapsed_dims))
            active[kind].append(level.active_units)

    ae = errors["autoencoder"]
    best = min(range(len(depths)), key=ae.__getitem__)
    claim = Claim(
        "at every depth both VAEs reconstruct worse than the autoencoder; the autoencoder's error "
        "first falls with depth, then rises again (lowest at neither end); KL warm-up lowers the "
        "VAE's error at some depth"
    )
    for kind in KINDS[1:]:
        for depth, vae_error, ae_error in zip(depths, errors[kind], ae, strict=True):
            claim.greater(f"{kind}, depth {depth}: error above the autoencoder's", vae_error,
                          ae_error, "{:.4g}")  # fmt: skip
    claim.greater(
        f"autoencoder: error at depth {depths[0]} above its lowest (depth {depths[best]})",
        ae[0], ae[best], "{:.4g}",
    )  # fmt: skip
    claim.greater(
        f"autoencoder: error at depth {depths[-1]} above its lowest (depth {depths[best]})",
        ae[-1], ae[best], "{:.4g}",
    )  # fmt: skip
    helped = [plain - warm for plain, warm in zip(errors["VAE"], errors["VAE, KL warm-up"],
                                                  strict=True)]  # fmt: skip
    most = max(range(len(depths)), key=helped.__getitem__)
    claim.greater(
        f"KL warm-up: the plain VAE's error minus the warmed-up one's, at the depth it helps "
        f"most ({depths[most]})", helped[most], 0.0, "{:.4g}", scale=errors["VAE"][most],
    )  # fmt: skip
    rows = [
        {"depth": depth, "kind": kind, "reconstruction_error": errors[kind][i],
         "collapsed": collapsed[kind][i] if kind in collapsed else None,
         "active_units": active[kind][i] if kind in active else None}
        for i, depth in enumerate(depths) for kind in KINDS
    ]  # fmt: skip
    listed = f"{deepening.axis} " + ", ".join(map(str, depths))
    comparisons = [
        Comparison(
            f"{kind}: reconstruction error per dimension, {listed}",
            "AE: falls, then rises with depth; VAEs above the AE; warm-up a little better",
            ", ".join(f"{e:.4g}" for e in errors[kind]),
            f"lowest at depth {depths[min(range(len(depths)), key=errors[kind].__getitem__)]}",
        )
        for kind in KINDS
    ]
    comparisons += [
        Comparison(
            f"{kind}: (ε = {EPSILON:g}, δ)-collapsed of {latent}; active units, {listed}",
            "not reported (the paper: deeper → more σ_z near 1)",
            "; ".join(f"{c}/{a}" for c, a in zip(collapsed[kind], active[kind], strict=True)),
            "—",
        )
        for kind in KINDS[1:]
    ]
    figure, (left, right) = new_figure((11, 4), 1, 2)
    for kind in KINDS:
        left.plot(depths, errors[kind], marker="o", label=kind)
    left.set(xlabel=deepening.axis, ylabel="training reconstruction error per dimension")
    width = deepening.base.get("hidden") or deepening.base["channels"]
    left.set_title(f"{dataset.name}: {backbone} {width}, latent {latent}")
    left.legend(fontsize=8)
    for kind in KINDS[1:]:
        right.plot(depths, collapsed[kind], marker="o", label=kind)
    right.set(xlabel=deepening.axis, ylabel=f"(ε = {EPSILON:g}, δ)-collapsed dimensions")
    right.set_title("collapse against depth (not in the paper)")
    right.legend(fontsize=8)
    path = save_figure(figure, ctx.out / "dai-fig1.png")
    return EntryResult(
        **claim.fields(), rows=rows, comparisons=comparisons, figures=[path],
        train_seconds=seconds,
    )  # fmt: skip


VAE_LABELS = {"VAE": "vae", "VAE, KL warm-up": "vae-warmup"}


def _train_every_depth(
    ctx: Context,
    area: str,
    dataset: Dataset,
    deepening: Deepening,
    schedules: dict[str, TrainConfig],
) -> None:
    """With ``--jobs N``: train all depths' autoencoders and VAEs (``schedules``: each VAE
    kind's training) N at a time, the deepest (the slowest) first, into the run directories the
    entry then reads in turn. On one GPU the small networks of one process leave it mostly idle;
    several processes fill it."""
    runs, trainings = {}, {}
    for depth in sorted(deepening.depths, reverse=True):
        model = deepening.base | {deepening.depth_key: depth}
        runs[f"depth{depth}/autoencoder"] = model | AUTOENCODER
        trainings[f"depth{depth}/autoencoder"] = ctx.training(deepening.training)
        for kind, schedule in schedules.items():
            label = f"depth{depth}/{VAE_LABELS[kind]}"
            runs[label] = model | {"learn_eta_dec": True}
            trainings[label] = ctx.training(schedule)
    train_labelled(
        ctx, area, "vae", dataset, runs, trainings, max(1, deepening.training.epochs // 4)
    )


NEAR_ONE = 0.9  # an encoder std σ_z this close to the prior's 1 carries (almost) nothing


@register(
    "dai-fig2",
    "convolutional VAEs of growing depth per scale: σ_z histograms (Fig. 2)",
    "as dai-fig1: γ learnable, β = 1; σ_z are the encoder's stds on the test split.",
    paper=DAI2020,
    data=("fashion-mnist",),
    alternatives=("cifar10",),
    revision=2,
)
def dai_fig2(ctx: Context) -> EntryResult:
    if ctx.dataset == "cifar10" and ctx.quick:
        source, channels, latent = "cifar10", (8, 8), 8
        training = TrainConfig(epochs=2, batch_size=16, lr=1e-3)
    elif ctx.dataset == "cifar10":  # colour images nearer CelebA's, at 32 × 32
        source, channels, latent = "cifar10", (32, 64, 128), 64
        training = TrainConfig(epochs=20, batch_size=64, lr=1e-3)
    elif ctx.quick:
        source, channels, latent = "digits", (16, 16), 8
        training = TrainConfig(epochs=60, batch_size=64, lr=1e-3)
    else:  # Fashion-MNIST in place of the paper's CelebA (not on this machine)
        source, channels, latent = "fashion-mnist", (32, 64), 64
        training = TrainConfig(epochs=20, batch_size=64, lr=1e-3)
    per_scale = (2, 4, 5)  # convolutions per spatial scale, the paper's three panels
    dataset = load(ctx, source)
    base = {"backbone": "cnn", "channels": channels, "latent_dim": latent, "learn_eta_dec": True}
    runs = {f"per-scale-{k}": base | {"conv_depth": k} for k in per_scale}
    outcomes = train_runs(ctx, f"dai-sigma-{source}", "vae", dataset, runs, training)
    x = dataset.train.x
    stds, errors, near, collapsed = {}, [], [], []
    for k in per_scale:
        outcome = outcomes[f"per-scale-{k}"]
        level = outcome.report.levels["z"]
        stds[k] = level.encoder_std.flatten().numpy()
        errors.append(reconstruction_error(load_run_model(outcome.run_dir)[0], x, SAMPLES))
        near.append(100.0 * float((stds[k] > NEAR_ONE).mean()))
        collapsed.append(len(level.collapsed_dims))
    claim = Claim(
        "the deeper the network at each scale, the larger the training reconstruction error and "
        f"the more encoder stds σ_z near 1 (above {NEAR_ONE:g}), at every step of depth"
    )
    claim.monotone("reconstruction error as the depth grows", errors, True, fmt="{:.4g}")
    claim.monotone(f"share of σ_z above {NEAR_ONE:g} (%) as the depth grows", near, True,
                   fmt="{:.1f}")  # fmt: skip
    claim.greater(f"share of σ_z above {NEAR_ONE:g} (%), deepest over shallowest", near[-1],
                  near[0], "{:.1f}", scale=100.0)  # fmt: skip
    listed = ", ".join(map(str, per_scale))
    comparisons = [
        Comparison(
            f"reconstruction error per dimension, {listed} convolutions per scale",
            "rises with depth", ", ".join(f"{e:.4g}" for e in errors), "",
        ),
        Comparison(
            f"share of σ_z above {NEAR_ONE:g} (%); (ε = {EPSILON:g}, δ)-collapsed of {latent}",
            "more σ_z near 1 with depth",
            "; ".join(f"{n:.1f}/{c}" for n, c in zip(near, collapsed, strict=True)),
            "",
        ),
    ]  # fmt: skip
    rows = [
        {"conv_per_scale": k, "reconstruction_error": e, "sigma_near_one_pct": n,
         "collapsed": c, "sigma_median": float(np.median(stds[k]))}
        for k, e, n, c in zip(per_scale, errors, near, collapsed, strict=True)
    ]  # fmt: skip
    figure, axes = new_figure((4 * len(per_scale), 3.4), 1, len(per_scale))
    for axis, k in zip(axes, per_scale, strict=True):
        axis.hist(stds[k], bins=40, range=(0, 1.2))
        axis.axvline(NEAR_ONE, color="grey", ls=":")
        axis.set(xlabel="σ_z", ylabel="count")
        axis.set_title(f"{k} convolutions per scale: error {errors[per_scale.index(k)]:.3g}")
    path = save_figure(figure, ctx.out / "dai-fig2.png")
    return EntryResult(
        **claim.fields(), rows=rows, comparisons=comparisons, figures=[path],
        train_seconds=float(sum(o.train_seconds for o in outcomes.values())),
    )  # fmt: skip
