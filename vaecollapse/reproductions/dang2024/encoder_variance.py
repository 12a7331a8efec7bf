"""Learnable vs fixed encoder variance (Dang et al. Section 4.1): fig2a (linear VAE on MNIST),
table2 (ReLU VAE on MNIST) and fig5 (ResNet-18 VAE on CIFAR-10). A learnable Σ lets a dimension's
posterior settle exactly on the prior; a fixed one keeps every dimension's KL away from zero."""

from __future__ import annotations

import math
from dataclasses import replace

from vaecollapse.core.theory import vae_spectrum
from vaecollapse.reproductions.claims import Claim
from vaecollapse.reproductions.common import (
    LINEAR_CONVENTION,
    PAPER_CODE_CONVENTION,
    collapsed_at,
    data_derived,
    level_summary,
    load,
    mean_collapsed,
    ours,
    paper_vs_ours,
    plot_sweeps,
    total_train_seconds,
    train_runs,
)
from vaecollapse.reproductions.registry import Comparison, Context, EntryResult, register
from vaecollapse.reproductions.sweeps import TABLE_SEEDS, Grid, seed_noise, seed_summary
from vaecollapse.training.config import TrainConfig

FIG2A_EPSILON = 8e-5  # the ε at which the paper counts the learnable model's collapsed dimensions
FIG2A_PAPER_COUNT = (3, 0)  # dimensions collapsed at FIG2A_EPSILON: learnable, fixed


@register(
    "fig2a",
    "linear VAE: learnable vs fixed encoder variance (Fig. 2a)",
    LINEAR_CONVENTION,
    data=("mnist",),
)
def fig2a(ctx: Context) -> EntryResult:
    if ctx.quick:
        source, training = "digits", TrainConfig(epochs=150, lr=3e-3)
    else:
        source, training = "mnist", TrainConfig(epochs=100, lr=1e-4)
    dataset = load(ctx, source)
    theta = vae_spectrum(dataset).values
    # the paper's β = 4 keeps the modes with θ > 2 on MNIST; on the 8×8 digits, whose θ_2 and
    # θ_3 nearly tie, the β halfway between θ_1² and θ_2² keeps one
    beta = 4.0 if not ctx.quick else data_derived(((theta[0] + theta[1]) / 2) ** 2)
    common = {"latent_dim": 5, "beta": beta}
    runs = {
        "learnable": common | {"encoder_variance": "shared"},
        "fixed": common | {"encoder_variance": "fixed", "sigma": 1.0},
    }
    outcomes = train_runs(ctx, f"linear-vae-{source}", "vae", dataset, runs, training)
    predicted = int((theta[:5] > math.sqrt(beta)).sum())
    rows = [
        {
            "variance": label,
            "beta": beta,
            f"collapsed_at_eps_{FIG2A_EPSILON:g}": collapsed_at(o.report, FIG2A_EPSILON),
            "theory_active": predicted,
            **level_summary(o.report),
        }
        for label, o in outcomes.items()
    ]
    learnable, fixed = (collapsed_at(outcomes[k].report, FIG2A_EPSILON) for k in runs)
    at_default = [collapsed_at(outcomes[k].report, 0.01) for k in runs]
    figure = plot_sweeps(
        {f"linear VAE on {source}, β = {beta:.3g}": {k: o.report for k, o in outcomes.items()}},
        ctx.out / "fig2a.png",
    )
    statement = (
        "after the same training, a learnable Σ's (ε,δ)-collapse curve lies above that of Σ = I "
        "fixed (more dimensions collapsed, averaged over the log ε grid)"
    )
    if not ctx.quick:  # the paper's own claim is the count; the digits have other dimensions
        statement += (
            f", and, as the paper prints, {FIG2A_PAPER_COUNT[0]} of 5 dimensions are collapsed at "
            f"ε = {FIG2A_EPSILON:g} with the learnable Σ and {FIG2A_PAPER_COUNT[1]} with the fixed"
        )
    claim = Claim(statement)
    claim.greater(
        "collapsed dimensions averaged over the ε grid, learnable > fixed",
        mean_collapsed(outcomes["learnable"].report), mean_collapsed(outcomes["fixed"].report),
        "{:.3f}",
    )  # fmt: skip
    if not ctx.quick:  # a count equals the paper's: within half a dimension either side
        for name, count, printed in zip(runs, (learnable, fixed), FIG2A_PAPER_COUNT, strict=True):
            label = f"{name}: dimensions collapsed at ε = {FIG2A_EPSILON:g}"
            if printed > 0:  # "at least 0" cannot fail
                claim.greater(f"{label}, at least {printed}", count, printed - 0.5, "{:g}", 1.0)
            claim.less(f"{label}, at most {printed}", count, printed + 0.5, "{:g}", 1.0)
    counted = "agrees" if (learnable, fixed) == FIG2A_PAPER_COUNT else "does not hold"
    comparisons = [
        Comparison(
            f"dimensions collapsed at ε = {FIG2A_EPSILON:g} (learnable / fixed)",
            "{} / {}".format(*FIG2A_PAPER_COUNT) if not ctx.quick else "—",
            f"{learnable} / {fixed}",
            "—" if ctx.quick else counted,
        ),
        Comparison(
            "dimensions collapsed at ε = 0.01; averaged over the ε grid (learnable / fixed)",
            "—",
            " / ".join(map(str, at_default))
            + "; "
            + " / ".join(f"{mean_collapsed(outcomes[k].report):.2f}" for k in runs),
            "",
        ),
        Comparison(
            "theory: active dimensions at the global optimum (θ > √β·η_dec)",
            "2 (θ = 6.17, 2.10 > 2)" if not ctx.quick else "—",
            f"{predicted} (θ = {', '.join(f'{t:.3g}' for t in theta[:3])}, ...)",
            "agrees" if not ctx.quick and predicted == 2 else "—",
        ),
    ]
    return EntryResult(
        **claim.fields(),
        rows=rows,
        comparisons=comparisons,
        figures=[figure],
        train_seconds=total_train_seconds(outcomes.values()),
    )


TABLE2_PAPER = {  # learnable, fixed
    "iwae_ll": (-744.99, -743.63),
    "kl": (9.54, 9.80),
    "au_kl_pairs_pct": (69, 100),
}


@register(
    "table2",
    "ReLU VAE: learnable vs fixed encoder variance, IWAE / KL / AU (Table 2)",
    PAPER_CODE_CONVENTION,
    data=("mnist",),
)
def table2(ctx: Context) -> EntryResult:
    if ctx.quick:
        source, latent, iwae_k = "digits", 8, 50
        training = TrainConfig(epochs=60, lr=1e-3)
    else:
        source, latent, iwae_k = "mnist", 16, 1000
        training = TrainConfig(epochs=100, lr=1e-4)
    dataset = load(ctx, source)
    common = {"latent_dim": latent, "backbone": "mlp", "hidden": 256, "beta": ours(1.0)}
    pair = {
        "learnable": {"encoder_variance": "shared"},
        "fixed": {"encoder_variance": "fixed", "sigma": 0.5},
    }
    group = f"relu-vae-{source}"
    grid = Grid(
        group, "vae", common, vary=pair.get, label=str, training=training, iwae_k=iwae_k,
        seeds=TABLE_SEEDS,
    )  # fmt: skip
    seeded = grid.train_seeds(ctx, dataset, list(pair))
    # Diagnostic pairs, one seed each, reported beside the paper's numbers and not part of the
    # claim: does the paper script's z = μ + σ²ε, or the learning rate, explain our differences?
    noisy = {
        f"{k}-noise-variance": common | v | {"noise_scale": "variance"} for k, v in pair.items()
    }
    diagnostic = train_runs(ctx, group, "vae", dataset, noisy, training, iwae_k=iwae_k)
    variants = {"-noise-variance": ", z drawn with std σ² (paper script)"}
    if not ctx.quick:  # quick mode already trains at 1e-3
        faster = replace(training, lr=1e-3)
        at_1e3 = {k: common | v for k, v in pair.items()}
        more = train_runs(ctx, f"{group}-lr-1e-3", "vae", dataset, at_1e3, faster, iwae_k=iwae_k)
        diagnostic |= {f"{k}-lr-1e-3": o for k, o in more.items()}
        variants["-lr-1e-3"] = ", lr 1e-3"
    rows = [
        {"variance": k, "seed": o.seed, **level_summary(o.report)}
        for k, outcomes in seeded.items()
        for o in outcomes
    ] + [{"variance": k, "seed": o.seed, **level_summary(o.report)} for k, o in diagnostic.items()]
    spread = {k: seed_summary(outcomes) for k, outcomes in seeded.items()}
    quantities = (
        ("iwae_ll", f"IWAE log-likelihood, K = {iwae_k}"),
        ("kl", "KL (nats)"),
        ("au_kl_pairs_pct", "AU % (paper code: pairs with KL ≥ 0.01)"),
        ("au_burda_pct", "AU % (Burda: Var_x E[z|x] > 0.01)"),
    )
    comparisons = [
        paper_vs_ours(
            f"{name} (learnable, fixed), mean ± sd over {TABLE_SEEDS} seeds",
            None if ctx.quick else TABLE2_PAPER.get(key),
            [spread[k][0][key] for k in pair], spread=[spread[k][1][key] for k in pair],
        )
        for key, name in quantities
    ]  # fmt: skip
    comparisons += [
        paper_vs_ours(
            f"{name} (learnable, fixed){told}, one seed",
            None if ctx.quick else TABLE2_PAPER.get(key),
            [level_summary(diagnostic[f"{k}{suffix}"].report)[key] for k in pair],
        )
        for suffix, told in variants.items()
        for key, name in quantities
    ]
    shown = {k: outcomes[0] for k, outcomes in seeded.items()} | diagnostic
    figure = plot_sweeps(
        {f"ReLU VAE on {source} (first seed)": {k: o.report for k, o in shown.items()}},
        ctx.out / "table2.png",
    )
    learnable, fixed = (spread[k][0]["au_kl_pairs_pct"] for k in pair)
    # the fixed Σ keeps every pair in every seed (100%), so one pair under 0.01 in one learnable
    # run would pass a bare "<": the means must differ by more than the seeds' noise
    noise = seed_noise(*(spread[k] for k in pair), "au_kl_pairs_pct")
    claim = Claim(
        f"averaged over {TABLE_SEEDS} seeds, the learnable Σ leaves fewer active units "
        "(paper-code AU) than Σ = 0.5²I fixed, by more than twice the standard error of the "
        "difference"
    )
    claim.greater(
        "mean AU % (paper code) of the fixed Σ minus the learnable's, against 2 standard errors",
        fixed - learnable, noise, "{:.2f}", scale=noise,
    )  # fmt: skip
    return EntryResult(
        **claim.fields(),
        rows=rows,
        comparisons=comparisons,
        figures=[figure],
        train_seconds=total_train_seconds(
            [*(o for v in seeded.values() for o in v), *diagnostic.values()]
        ),
    )


@register(
    "fig5",
    "ResNet-18 VAE on CIFAR-10: learnable vs fixed encoder variance (Fig. 5)",
    PAPER_CODE_CONVENTION,
    data=("cifar10",),
)
def fig5(ctx: Context) -> EntryResult:
    # At Σ = I = η_enc² I the linear optimum keeps the same dimensions with a learnable or a fixed
    # Σ, so on a small stand-in the direction of the paper's comparison is decided by noise (a
    # count of 1 against 0 or 2 against 2 of 16, flipping with the thread count). The quick
    # variant fixes Σ = 0.5²I, as Table 2 does, where the theory predicts the difference, and
    # compares the collapse curves averaged over ε, the statistic of fig2a's quick claim.
    if ctx.quick:  # a handful of images: the data set the test writes, or the real one
        latent, hidden, training, sigma = 16, 32, TrainConfig(epochs=15, batch_size=8), 0.5
    else:
        latent, hidden, training, sigma = 128, 512, TrainConfig(epochs=100, lr=1e-3), 1.0
    dataset = load(ctx, "cifar10")
    common = {
        "latent_dim": latent,
        "backbone": "resnet18",
        "hidden": hidden,
        "channels": (32, 8),
        "beta": ours(2.0),
    }
    runs = {
        "learnable": common | {"encoder_variance": "shared"},
        "fixed": common | {"encoder_variance": "fixed", "sigma": sigma},
    }
    outcomes = train_runs(ctx, "resnet-vae-cifar10", "vae", dataset, runs, training)
    # the paper reads Fig. 5 at δ = 0.01
    curves = {k: o.report for k, o in outcomes.items()}
    for report in curves.values():
        for level in report.levels.values():
            level.delta = 0.01
    epsilon = 0.01  # the paper compares the two models "with a same ε threshold"
    counts = {k: collapsed_at(r, epsilon) for k, r in curves.items()}
    areas = {k: mean_collapsed(r) for k, r in curves.items()}
    rows = [
        {"variance": k, "collapsed_at_eps_0.01": counts[k], "mean_collapsed": areas[k],
         **level_summary(r)}
        for k, r in curves.items()
    ]  # fmt: skip
    title = f"ResNet-18 VAE on CIFAR-10 (δ = 0.01, fixed Σ = {sigma:g}²I)"
    figure = plot_sweeps({title: curves}, ctx.out / "fig5.png")
    comparisons = [
        Comparison(
            f"dimensions collapsed at ε = {epsilon:g}, δ = 0.01 (learnable / fixed Σ = "
            f"{sigma:g}²I)",
            "learnable: most; fixed (Σ = I): few",
            f"{counts['learnable']} / {counts['fixed']} of {latent}",
            "agrees" if counts["learnable"] > counts["fixed"] else "disagrees",
        ),
        Comparison(
            "collapsed dimensions averaged over the ε grid (learnable / fixed)",
            "—",
            f"{areas['learnable']:.2f} / {areas['fixed']:.2f}",
            "",
        ),
    ]
    if ctx.quick:
        claim = Claim(
            "with Σ = 0.5²I fixed (quick: where the linear theory predicts the difference), the "
            "learnable Σ's (ε,δ)-collapse curve lies above the fixed one's, averaged over ε"
        )
        claim.greater(
            "collapsed dimensions averaged over the ε grid, learnable > fixed",
            areas["learnable"], areas["fixed"], "{:.3f}",
        )  # fmt: skip
    else:
        claim = Claim(
            f"at ε = {epsilon:g} (δ = 0.01) the learnable Σ has more collapsed dimensions than "
            "Σ = I fixed"
        )
        claim.greater(
            "collapsed dimensions, learnable > fixed", counts["learnable"], counts["fixed"],
            "{:.0f}",
        )  # fmt: skip
    return EntryResult(
        **claim.fields(),
        rows=rows,
        comparisons=comparisons,
        figures=[figure],
        train_seconds=total_train_seconds(outcomes.values()),
    )
