"""Nonlinear two-level MHVAEs (Dang et al. Sections 4.3 and 5): fig2c and table5 (ReLU MHVAE on
MNIST sweeping β1, β2 and η_dec; they share runs with fig4's sample grid), fig4 and fig9 (sample
grids of ReLU and CNN MHVAEs over β1 × β2) and fig10 (ResNet-18 MHVAE on CIFAR-10). Theorem 3
predicts that z2 collapses more as β2 or η_dec grow and less as β1 grows."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import torch

from vaecollapse.core.diagnostics.plots import new_figure, save_figure
from vaecollapse.core.models.factory import load_run_model
from vaecollapse.reproductions.claims import Claim
from vaecollapse.reproductions.common import (
    KL_NOISE,
    PAPER_CODE_CONVENTION,
    RunOutcome,
    image_grid,
    kl_monotone,
    level_summary,
    load,
    ours,
    paper_vs_ours,
    total_train_seconds,
    trend,
)
from vaecollapse.reproductions.registry import Context, EntryResult, register
from vaecollapse.reproductions.sweeps import (
    TABLE_SEEDS,
    Grid,
    Line,
    LineSweep,
    Measure,
    seed_summary,
)
from vaecollapse.training.config import TrainConfig

Point = tuple[float, float, float]  # (β1, β2, η_dec), the paper's β's


def _grid(group: str, base: dict, training: TrainConfig, iwae_k: int = 0, seeds: int = 1) -> Grid:
    """MHVAE runs over (β1, β2, η_dec) points (the paper's β's) with ``base``'s other settings."""
    return Grid(
        group, "mhvae", base,
        vary=lambda p: {"betas": (ours(p[0]), ours(p[1])), "eta_dec": p[2]},
        label=lambda p: "b1_{:g}-b2_{:g}-eta{:g}".format(*p),
        training=training, iwae_k=iwae_k, seeds=seeds,
    )  # fmt: skip


EXPECTED_RISE = {"β1": True, "β2": False, "η_dec": False}  # of KL(z2), by Theorem 3


def _lines(
    values: dict[str, tuple[float, ...]],
    eta_at_betas: float,
    asserted: tuple[str, ...] = ("β1", "β2", "η_dec"),
    paper: dict[str, dict[str, tuple]] | None = None,
) -> tuple[Line, ...]:
    """fig2c's three lines: β1 (β2 = 1), β2 (β1 = 1), both at ``eta_at_betas``; η_dec (β's 1).
    The claim is judged along the ``asserted`` ones (the others are reported)."""
    points = {
        "β1": [(b, 1.0, eta_at_betas) for b in values["β1"]],
        "β2": [(1.0, b, eta_at_betas) for b in values["β2"]],
        "η_dec": [(1.0, 1.0, e) for e in values["η_dec"]],
    }
    return tuple(
        Line(
            name, tuple(values[name]), tuple(points[name]), EXPECTED_RISE[name],
            asserted=name in asserted, paper=(paper or {}).get(name, {}),
            kl_weight=name != "β1",
        )
        for name in points
    )  # fmt: skip


def _point_row(sweep: str, point: Point, outcome: RunOutcome) -> dict:
    """One results.csv row: the point, KL(z1) and z2's summary (the IWAE keys keep their names)."""
    z2 = level_summary(outcome.report, "z2")
    return {
        "sweep": sweep, "beta1_paper": point[0], "beta2_paper": point[1], "eta_dec": point[2],
        "kl_z1": level_summary(outcome.report, "z1")["kl"],
        **{k if k.startswith("iwae") else f"{k}_z2": v for k, v in z2.items()},
    }  # fmt: skip


def _z2_measures(counts_judged: bool, au_judged: bool) -> tuple[Measure, ...]:
    """What a z2 sweep reports; judged: its KL, z2's collapsed count (``counts_judged``: more
    collapse, not only no less, against the KL's direction) and, where the paper prints it
    (``au_judged``), its AU from KL ≥ 0.01 pairs."""
    return (
        Measure("iwae_ll", "IWAE log-likelihood"),
        Measure("kl", "KL(z2) (nats)", "KL(z2)", follows_kl=True, judge="kl"),
        Measure(
            "collapsed", "z2 dimensions collapsed at ε = 0.01", "collapsed z2 dimensions",
            "{:.0f}", follows_kl=False, judge="strictly" if counts_judged else None,
        ),
        Measure(
            "au_kl_pairs_pct", "AU(z2) % (KL ≥ 0.01 pairs)", "AU(z2) %", fmt="{:.0f}",
            follows_kl=True, judge="monotone" if au_judged else None,
        ),
        Measure("au_burda_pct", "AU(z2) % (Burda)", fmt="{:.0f}", follows_kl=True),
        Measure("kl", "KL(z1) (nats)", level="z1"),
    )  # fmt: skip


def _z2_sweep(
    lines: tuple[Line, ...],
    figure: str,
    paper_says: str | None = None,
    counts_judged: bool = True,
    au_judged: bool = False,
) -> LineSweep:
    """Theorem 3's claim on z2 along ``lines``, with z2's collapse curves in ``figure``."""
    parts = {"β2": "as β2 grows", "η_dec": "as η_dec grows", "β1": "as β1 falls"}
    asserted = ", ".join(parts[line.name] for line in lines if line.asserted)
    judged = ["KL(z2) falls"]
    judged += ["more z2 dimensions collapse"] if counts_judged else []
    judged += ["z2's AU falls"] if au_judged else []
    named = f"{', '.join(judged[:-1])} and {judged[-1]}" if len(judged) > 1 else judged[0]
    return LineSweep(
        f"{named} {asserted} (Theorem 3)",
        lines, _z2_measures(counts_judged, au_judged),
        lambda line, p, outcome: _point_row(line.name, p, outcome),
        level="z2", figure=figure, paper_says=paper_says,
    )  # fmt: skip


# the ReLU MHVAE of fig2c, table5 and fig4, as the paper's code builds it: MLPs of 256 whose
# Gaussian means end in tanh, Σ1 = 0.5²I fixed, Σ2 = tanh(MLP(z1))², η_enc = 0.5, d1 = d2 = 16
# (β's and η_dec vary per run)
RELU_MHVAE_SETTINGS = {
    "backbone": "mlp",
    "hidden": 256,
    "latent_dims": (16, 16),
    "latent_dim": 16,
    "encoder_variances": ("fixed", "amortized-tanh"),
    "sigmas": (0.5, None),
    "eta_enc": 0.5,
    "bounded_means": True,
}
# the model the sweeps trained before they took the paper's: unbounded means, Σ2 by a
# log-variance head; table5 trains it at the shared point as a labelled variant
UNBOUNDED_MHVAE = {"encoder_variances": ("fixed", "amortized"), "bounded_means": False}


def relu_group(source: str) -> str:
    """The run group of the paper's ReLU MHVAE on ``source`` (fig2c, table5 and fig4 share it)."""
    return f"relu-mhvae-bounded-{source}"


def _relu_setup(ctx: Context) -> tuple[str, dict, TrainConfig]:
    """(source, model settings, training) of the ReLU MHVAE of fig2c, table5 and fig4."""
    base = dict(RELU_MHVAE_SETTINGS)
    if ctx.quick:  # at 60 epochs a collapsed z2 of the tanh-bounded model kept up to 0.2 nats
        return "digits", base, TrainConfig(epochs=120, lr=1e-3)
    return "mnist", base, TrainConfig(epochs=100, lr=1e-3)


@register(
    "fig2c",
    "ReLU MHVAE: collapse of z2 as β1, β2 and η_dec vary (Fig. 2c)",
    PAPER_CODE_CONVENTION,
    data=("mnist",),
    revision=2,
)
def fig2c(ctx: Context) -> EntryResult:
    source, base, training = _relu_setup(ctx)
    values = {
        "β1": (0.1, 0.5, 1.0, 2.0),
        "β2": (0.1, 0.5, 1.0, 2.0),
        "η_dec": (0.25, 0.5, 1.0, 2.0),
    }
    # on the digits no z2 dimension is (ε = 0.01, δ)-collapsed along β1 or β2 (KL(z2) 0.14
    # nats over 16 dimensions at β1 = 0.1 still leaves samples above ε): quick reports the counts
    sweep = _z2_sweep(
        _lines(values, eta_at_betas=0.5), "fig2c.png",
        "larger β2 or η_dec → more collapse; larger β1 → less", counts_judged=not ctx.quick,
    )  # fmt: skip
    grid = _grid(relu_group(source), base, training)
    return sweep.result(ctx, grid.train_seeds(ctx, load(ctx, source), sweep.points))


TABLE5_PAPER = {
    "β1": {
        "iwae_ll": (-229.88, -225.89, -225.82, -226.64, -227.49),
        "kl": (1.09, 4.59, 8.77, 13.00, 16.19),
        "au_kl_pairs_pct": (34, 89, 100, 100, 100),
    },
    "β2": {
        "iwae_ll": (-228.66, -226.72, -225.82, -226.05, -227.41),
        "kl": (18.07, 13.04, 8.77, 4.24, 1.98),
        "au_kl_pairs_pct": (100, 100, 100, 82, 40),
    },
    "η_dec": {
        "iwae_ll": (211.79, -225.82, -522.61, -740.24, -1278.18),
        "kl": (18.07, 8.77, 3.45, 0.49, 0.00),
        "au_kl_pairs_pct": (100, 100, 68, 18, 0),
    },
}


@register(
    "table5",
    "ReLU MHVAE: IWAE / KL / AU as β1, β2 and η_dec vary (Table 5)",
    PAPER_CODE_CONVENTION + " KL and AU are z2's (the level Theorem 3 speaks of).",
    data=("mnist",),
    revision=2,
)
def table5(ctx: Context) -> EntryResult:
    source, base, training = _relu_setup(ctx)
    betas = (0.25, 0.5, 1.0, 2.0, 3.0)
    values = {"β1": betas, "β2": betas, "η_dec": (0.25, 0.5, 0.75, 1.0, 2.0)}
    sweep = _z2_sweep(
        _lines(values, 0.5, paper=TABLE5_PAPER), "table5.png", counts_judged=not ctx.quick,
        au_judged=not ctx.quick,
    )  # fmt: skip
    dataset = load(ctx, source)
    iwae_k = 50 if ctx.quick else 1000
    grid = _grid(relu_group(source), base, training, iwae_k, seeds=TABLE_SEEDS)
    outcomes = grid.train_seeds(ctx, dataset, sweep.points)
    result = sweep.result(ctx, outcomes)
    # at the point every sweep shares, the model without the paper's bounds: how much of KL(z2)
    # do the tanh means and Σ2 = tanh² hold back? (reported, not claimed)
    shared_point = (1.0, 1.0, 0.5)
    variants = {
        "Σ2 = tanh(MLP(z1))², unbounded means": (
            f"relu-mhvae-{source}-tanh",
            base | {"bounded_means": False},
        ),
        "Σ2 by a log-variance head, unbounded means": (
            f"relu-mhvae-{source}",
            base | UNBOUNDED_MHVAE,
        ),
    }
    summaries = [seed_summary(outcomes[shared_point], "z2")[0]]
    for label, (group, variant_base) in variants.items():
        variant = _grid(group, variant_base, training, iwae_k)
        outcome = variant.train(ctx, dataset, [shared_point])[shared_point]
        result.rows.append(_point_row(label, shared_point, outcome))
        summaries.append(level_summary(outcome.report, "z2"))
        result.train_seconds += outcome.train_seconds
    for key, label in (("iwae_ll", "IWAE log-likelihood"), ("kl", "KL(z2) (nats)")):
        paper = None if ctx.quick else (TABLE5_PAPER["β1"][key][betas.index(1.0)],)
        result.comparisons.append(
            paper_vs_ours(
                f"{label} at β1 = β2 = 1, η_dec = 0.5: the paper's model (every mean through "
                f"tanh, Σ2 = tanh(MLP(z1))²; mean over {TABLE_SEEDS} seeds); Σ2 = "
                "tanh(MLP(z1))² with unbounded means; Σ2 by a log-variance head with unbounded "
                "means",
                paper,
                tuple(summary[key] for summary in summaries),
            )
        )
    return result


GRID_BETAS = (0.1, 1.0, 2.0, 4.0)  # Fig. 4's, as Appendix A and the paper's code set it
MAIN_TEXT_BETAS = (0.1, 1.0, 2.0, 6.0)  # the same grid as the main text (Section 5) lists it


def image_sharpness(images: torch.Tensor, image_shape: tuple[int, int, int]) -> np.ndarray:
    """Each of ``(n, D)`` images' mean absolute difference between neighbouring pixels ``(n,)``:
    lower for blurrier samples."""
    pictures = images.reshape(-1, *image_shape).clamp(0, 1)
    across = (pictures[..., :, 1:] - pictures[..., :, :-1]).abs().flatten(1).mean(1)
    down = (pictures[..., 1:, :] - pictures[..., :-1, :]).abs().flatten(1).mean(1)
    return ((across + down) / 2).numpy()


def step_noise(per_image: list[np.ndarray]) -> float:
    """Twice the largest standard error of a step between consecutive entries of ``per_image``
    (each ``(n,)``, the same n images): steps within it are not told apart from noise."""
    steps = [b - a for a, b in itertools.pairwise(per_image)]
    return 2 * max(float(np.std(d, ddof=1)) / np.sqrt(len(d)) for d in steps)


def _sample_grid(
    ctx: Context,
    name: str,
    group: str,
    source: str,
    base: dict,
    training: TrainConfig,
    grid: tuple[float, ...] = GRID_BETAS,
) -> EntryResult:
    """fig4 and fig9: train the β1 × β2 grid (η_enc = η_dec = 0.5); show each model's
    reconstructions through z2 of the same 36 held-out images, as the paper's grids do."""
    dataset = load(ctx, source)
    shown = (dataset.test or dataset.train).x[:36]
    points = [(b1, b2, 0.5) for b1 in grid for b2 in grid]
    outcomes = _grid(group, base, training).train(ctx, dataset, points)
    n = len(grid)
    figure, axes = new_figure((2.2 * n, 2.2 * n), n, n)
    rows, sharpness, kl2 = [], {}, {}
    for (b1, b2, eta), outcome in outcomes.items():
        model, _ = load_run_model(outcome.run_dir)
        samples = model.reconstruct(shown, torch.Generator().manual_seed(0))
        sharpness[(b1, b2)] = image_sharpness(samples, dataset.image_shape)
        kl2[(b1, b2)] = level_summary(outcome.report, "z2")["kl"]
        rows.append({"beta1_paper": b1, "beta2_paper": b2, "eta_dec": eta,
                     "kl_z2": kl2[(b1, b2)],
                     "sample_sharpness": float(sharpness[(b1, b2)].mean())})  # fmt: skip
        axis = axes[grid.index(b1), grid.index(b2)]
        axis.imshow(image_grid(samples, dataset.image_shape, 6), cmap="gray", vmin=0, vmax=1)
        axis.set_xticks([])
        axis.set_yticks([])
        axis.set_title(f"β1 = {b1:g}, β2 = {b2:g}", fontsize=8)
    figure_path = save_figure(figure, ctx.out / f"{name}.png")
    by_beta2 = [np.mean([kl2[(b1, b2)] for b1 in grid]) for b2 in grid]
    # per image, averaged over the other β: the same images, so steps are paired
    images_by_beta1 = [np.mean([sharpness[(b1, b2)] for b2 in grid], 0) for b1 in grid]
    images_by_beta2 = [np.mean([sharpness[(b1, b2)] for b1 in grid], 0) for b2 in grid]
    sharp_by_beta1 = [float(v.mean()) for v in images_by_beta1]
    sharp_by_beta2 = [float(v.mean()) for v in images_by_beta2]
    noise1, noise2 = step_noise(images_by_beta1), step_noise(images_by_beta2)
    comparisons = [
        paper_vs_ours(
            f"KL(z2) averaged over β1, β2 = {grid}", None, by_beta2,
            agreement=trend(by_beta2, False, KL_NOISE),
        ),
        paper_vs_ours(
            f"sample sharpness averaged over β1, β2 = {grid}", None, sharp_by_beta2,
            "{:.4f}", trend(sharp_by_beta2, False, noise2),
        ),
        paper_vs_ours(
            f"sample sharpness averaged over β2, β1 = {grid}", None, sharp_by_beta1,
            "{:.4f}", trend(sharp_by_beta1, True, noise1),
        ),
    ]  # fmt: skip
    comparisons[0].paper = "smaller β2 → less collapse"
    comparisons[1].paper = "smaller β2 → better samples"
    comparisons[2].paper = "smaller β1 → blurrier samples"
    # the paper judges samples by eye; ours by the sharpness of the 36 reconstructions, with steps
    # within twice their standard error over the images not told apart. β1's direction is
    # claimed in full runs only: on the digits it goes either way (docs/quick-claims.md)
    statement = (
        "averaged over β1, KL(z2) falls as β2 grows (smaller β2, less collapse of z2) and the "
        "samples are sharper (smaller β2, better samples)"
    )
    if not ctx.quick:
        statement += "; averaged over β2, they are sharper as β1 grows (smaller β1, blurrier)"
    claim = Claim(statement)
    report = next(iter(outcomes.values())).report
    kl_monotone(claim, "KL(z2) averaged over β1, as β2 grows", by_beta2, False, report, "z2")
    claim.monotone(
        "sample sharpness averaged over β1, as β2 grows", sharp_by_beta2, False, noise2,
        "{:.4f}",
    )  # fmt: skip
    if not ctx.quick:
        claim.monotone(
            "sample sharpness averaged over β2, as β1 grows", sharp_by_beta1, True, noise1,
            "{:.4f}",
        )  # fmt: skip
    return EntryResult(
        **claim.fields(),
        rows=rows,
        comparisons=comparisons,
        figures=[figure_path],
        train_seconds=total_train_seconds(outcomes.values()),
    )


@register(
    "fig4",
    "ReLU MHVAE samples over β1 × β2 (Fig. 4, Fig. 3b)",
    PAPER_CODE_CONVENTION,
    data=("mnist",),
)
def fig4(ctx: Context) -> EntryResult:
    source, base, training = _relu_setup(ctx)
    return _sample_grid(ctx, "fig4", relu_group(source), source, base, training)


@register(
    "fig4-main",
    "ReLU MHVAE samples over β1 × β2 with the main text's 6.0 in place of the appendix's 4.0",
    PAPER_CODE_CONVENTION,
    data=("mnist",),
)
def fig4_main(ctx: Context) -> EntryResult:
    source, base, training = _relu_setup(ctx)
    # quick: the grid's ends and its middle, as fig9's quick grid; the runs at 0.1 and 1.0 are
    # fig4's and fig2c's (the same group), trained once where they share an output folder
    grid = (0.1, 1.0, 6.0) if ctx.quick else MAIN_TEXT_BETAS
    return _sample_grid(ctx, "fig4-main", relu_group(source), source, base, training, grid)


@register(
    "fig9",
    "CNN MHVAE samples over β1 × β2 (Fig. 9)",
    PAPER_CODE_CONVENTION,
    data=("mnist",),
    revision=2,
)
def fig9(ctx: Context) -> EntryResult:
    source, base, training = _relu_setup(ctx)
    # the paper's CNN MHVAE: maps between the levels 64 wide (tanh means and Σ2 as the ReLU one)
    base = base | {"backbone": "cnn", "channels": (64, 32), "latent_hidden": 64}
    grid = GRID_BETAS
    if ctx.quick:  # CNNs cost more: a 3 × 3 grid, 30 epochs
        training, grid = replace(training, epochs=30), (0.1, 1.0, 4.0)
    return _sample_grid(ctx, "fig9", f"cnn-mhvae-{source}", source, base, training, grid)


@register(
    "fig10",
    "ResNet-18 MHVAE on CIFAR-10: collapse of z2 as β1, β2 and η_dec vary (Fig. 10)",
    PAPER_CODE_CONVENTION,
    data=("cifar10",),
)
def fig10(ctx: Context) -> EntryResult:
    base = {
        "backbone": "resnet18",
        "channels": (32, 8),
        "encoder_variances": ("fixed", "amortized"),
        "sigmas": (0.1, None),
        "eta_enc": 0.1,
    }
    if ctx.quick:  # the sweeps' end points on a handful of images
        base |= {"latent_dim": 8, "hidden": 32, "latent_hidden": 32}
        values = {"β1": (0.1, 2.0), "β2": (0.1, 2.0), "η_dec": (0.25, 2.0)}
        training = TrainConfig(epochs=10, batch_size=8, lr=1e-3)
    else:
        base |= {"latent_dim": 64, "hidden": 512, "latent_hidden": 1024}
        values = {"β1": (0.1, 0.5, 1.0, 2.0), "β2": (0.1, 0.5, 1.0, 2.0)}
        values["η_dec"] = (0.25, 0.5, 1.0, 2.0)
        training = TrainConfig(epochs=100, lr=1e-3)
    # ten epochs on 40 images: only η_dec's effect holds under every thread count and seed
    # (benchmarks/quick_claims.py: with seed 2 on two threads β2 = 2 left KL(z2) above its value
    # at β2 = 0.1), so β1's and β2's are reported without asserting
    asserted = ("η_dec",) if ctx.quick else ("β1", "β2", "η_dec")
    sweep = _z2_sweep(
        _lines(values, eta_at_betas=0.1, asserted=asserted), "fig10.png",
        "as fig2c: larger β2 or η_dec → more collapse; larger β1 → less",
        counts_judged=not ctx.quick,
    )  # fmt: skip
    grid = _grid("resnet-mhvae-cifar10", base, training)
    return sweep.result(ctx, grid.train_seeds(ctx, load(ctx, "cifar10"), sweep.points))
