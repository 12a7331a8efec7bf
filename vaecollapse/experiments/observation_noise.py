"""Lucas et al. (NeurIPS 2019), as reproduced in the course report (its Figs. 7–8): a deep
nonlinear Gaussian VAE on MNIST trained with the observation noise σ² fixed at several values or
learnable. The larger the fixed σ², the more (ε,δ)-collapsed latent dimensions; a learnable σ²
settles at a value of its own, and the model collapses as a fixed σ² of that size would."""

from __future__ import annotations

import math

import torch

from ..diagnostics.plots import new_figure, save_figure
from ..models.factory import load_run_model
from ..train import TrainConfig
from .claims import Claim
from .common import collapsed_at, load, train_runs
from .ppca_equivalence import CONVENTION, LUCAS2019
from .registry import Comparison, Context, EntryResult, register

EPSILON = 0.01  # nats: Lucas et al.'s (ε, δ)-collapse with the report's δ
DECODER_STDS = (0.05, 0.1, 0.2, 0.4, 0.8)  # fixed σ, from sharp to blurry on [0, 1] pixels


@register(
    "lucas-sigma",
    "deep VAE: (ε,δ)-collapsed dimensions as the observation noise σ² grows, or is learned",
    CONVENTION,
    paper=LUCAS2019,
    data=("mnist",),
)
def lucas_sigma(ctx: Context) -> EntryResult:
    if ctx.quick:
        source, hidden, latent, training = "digits", 128, 16, TrainConfig(epochs=60, lr=1e-3)
    else:
        source, hidden, latent, training = "mnist", 256, 32, TrainConfig(epochs=10, lr=1e-3)
    dataset = load(ctx, source)
    common = {"backbone": "mlp", "hidden": hidden, "depth": 2, "latent_dim": latent}
    runs = {f"sigma-{std:g}": common | {"eta_dec": std} for std in DECODER_STDS}
    # a learnable σ starts in the middle of the grid
    runs["sigma-learnable"] = common | {"eta_dec": DECODER_STDS[2], "learn_eta_dec": True}
    outcomes = train_runs(ctx, f"lucas-sigma-{source}", "vae", dataset, runs, training)
    counted = {label: collapsed_at(outcome.report, EPSILON) for label, outcome in outcomes.items()}
    collapsed = [counted[f"sigma-{std:g}"] for std in DECODER_STDS]
    learned_collapsed = counted["sigma-learnable"]
    model, _ = load_run_model(outcomes["sigma-learnable"].run_dir)
    learned_std = float(torch.exp(model.log_eta_dec.detach()))
    rows = [
        {
            "sigma": label.removeprefix("sigma-"),
            "decoder_std": learned_std if label == "sigma-learnable" else settings["eta_dec"],
            "collapsed": counted[label],
            "test_loss": outcomes[label].history[-1].get("test_loss", math.nan),
        }
        for label, settings in runs.items()
    ]
    claim = Claim(
        f"with σ fixed, the (ε = {EPSILON:g}, δ)-collapsed dimensions never fall as σ grows "
        f"({', '.join(f'{s:g}' for s in DECODER_STDS)}) and end above where they start"
    )
    claim.monotone("collapsed dimensions as σ grows", collapsed, increasing=True, fmt="{:.0f}")
    claim.greater("collapsed at the largest σ over the smallest", collapsed[-1], collapsed[0],
                  "{:.0f}", scale=latent)  # fmt: skip
    comparisons = [
        Comparison(
            f"(ε,δ)-collapsed of {latent}, σ = {', '.join(f'{s:g}' for s in DECODER_STDS)}",
            "larger σ² → more collapsed dimensions",
            ", ".join(str(c) for c in collapsed),
            "agrees" if claim.holds else "does not rise throughout",
        ),
        Comparison(
            "σ learnable (started at 0.2): learned σ; collapsed dimensions",
            "σ² settles; collapse as a fixed σ² of that size",
            f"{learned_std:.3g}; {learned_collapsed}",
            "—",
        ),
        Comparison(
            "test loss (−ELBO, nats) per σ, then learnable",
            "a fixed σ² far from the data's noise costs ELBO",
            ", ".join(f"{row['test_loss']:.1f}" for row in rows),
            "—",
        ),
    ]
    figure, axis = new_figure((6, 4))
    axis.plot(DECODER_STDS, collapsed, marker="o", label="σ fixed")
    axis.plot([learned_std], [learned_collapsed], "*", ms=12, label="σ learnable (where it ended)")
    axis.set(xscale="log", xlabel="decoder std σ", ylabel=f"(ε = {EPSILON:g}, δ)-collapsed")
    axis.set_title(f"collapsed dimensions of {latent} against σ ({dataset.name})")
    axis.legend(fontsize=8)
    path = save_figure(figure, ctx.out / "lucas-sigma.png")
    return EntryResult(
        **claim.fields(),
        rows=rows,
        comparisons=comparisons,
        figures=[path],
        train_seconds=float(sum(o.train_seconds for o in outcomes.values())),
    )
