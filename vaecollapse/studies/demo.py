"""The main job on the embedded digits (no network): predict, train, diagnose, compare.

For a linear VAE (digits, d = 8) and a linear CVAE (digits quadrant task, d = 8), each at three
β's chosen to land in different regimes: the theory's predicted number of active dimensions, a
short ELBO training run of the same model, its diagnosis, and a table of predicted vs observed
active dimensions, with plots. Every run directory is resumable, so a second call is quick.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from vaecollapse.core.data import load_dataset
from vaecollapse.core.diagnostics.plots import new_figure, plot_collapse_curves, save_figure
from vaecollapse.core.families import model_family
from vaecollapse.core.fileio import write_text_atomic
from vaecollapse.core.logs import LOGGER
from vaecollapse.core.rundir import claimed_directory
from vaecollapse.core.theory import predict
from vaecollapse.training.config import TrainConfig
from vaecollapse.training.runs import train_and_diagnose, write_diagnosis

LATENT_DIM = 8
BETAS = {"vae": (0.35, 0.5, 2.0), "cvae": (0.2, 0.35, 0.6)}
TRAINING = TrainConfig(epochs=200, batch_size=128, lr=1e-2, seed=0, analytic=True)


@dataclass(frozen=True)
class DemoRow:
    model: str
    beta: float
    predicted_active: int
    observed_active: int
    burda_active: int
    kl_total: float
    test_loss: float
    theory_loss: float
    d_ma_decoder: float
    run_dir: str


def run_demo(out: str | Path, epochs: int = TRAINING.epochs) -> list[DemoRow]:
    """Run every configuration into ``out`` (locked meanwhile; a directory of other files is
    refused); write ``summary.md``, ``summary.json`` and plots."""
    with claimed_directory(out, "demo") as directory:
        return _run_demo(directory, epochs)


def _run_demo(out: Path, epochs: int) -> list[DemoRow]:
    rows, reports, collapse_betas = [], {}, {}
    started = time.perf_counter()
    for family, betas in BETAS.items():
        dataset = load_dataset(model_family(family).default_dataset)
        for beta in betas:
            prediction = predict(family, dataset, LATENT_DIM, beta=beta)
            collapse_betas[family] = [mode["beta"] for mode in prediction.thresholds]
            run_dir = out / f"{family}-beta{beta:g}"
            history, report = train_and_diagnose(
                run_dir,
                family,
                dataset,
                {"latent_dim": LATENT_DIM, "encoder_variance": "shared", "beta": beta},
                replace(TRAINING, epochs=epochs),
                device="cpu",
                log_every=epochs,
            )
            write_diagnosis(report, run_dir, label=f"{family} β={beta:g}")
            reports[(family, beta)] = report
            decoder_map = "U1" if model_family(family).conditional else "U"
            rows.append(
                DemoRow(
                    model=family,
                    beta=beta,
                    predicted_active=prediction.optimum.active_dims["z"],
                    observed_active=LATENT_DIM - len(report.collapsed_dims),
                    burda_active=report.active_units,
                    kl_total=report.kl_total,
                    test_loss=history[-1]["test_loss"],
                    theory_loss=prediction.optimum.loss,
                    d_ma_decoder=report.theory["maps"][decoder_map]["d_ma"],
                    run_dir=str(run_dir),
                )
            )
            LOGGER.info(
                f"{family} β={beta:g}: predicted {rows[-1].predicted_active} active, observed "
                f"{rows[-1].observed_active} ({time.perf_counter() - started:.0f} s)"
            )
    for family in BETAS:
        save_figure(
            plot_collapse_curves({f"β={b:g}": reports[(family, b)] for b in BETAS[family]}),
            out / f"collapse_curves_{family}.png",
        )
    plot_predicted_vs_observed(rows, collapse_betas, out / "predicted_vs_observed.png")
    write_text_atomic(out / "summary.md", format_table(rows))
    write_text_atomic(out / "summary.json", json.dumps([r.__dict__ for r in rows], indent=2) + "\n")
    return rows


def format_table(rows: list[DemoRow]) -> str:
    lines = [
        "| model | β | predicted active | observed active (ε=0.01, δ=0.05) | AU (Burda) | "
        "KL (nats) | D_MA decoder | test loss | theory loss (train) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| linear {r.model.upper()} d={LATENT_DIM} | {r.beta:g} | {r.predicted_active} | "
            f"{r.observed_active} | {r.burda_active} | {r.kl_total:.3f} | {r.d_ma_decoder:.4f} | "
            f"{r.test_loss:.3f} | {r.theory_loss:.3f} |"
        )
    return "\n".join(lines) + "\n"


def theory_staircase(collapse_betas: list[float], low: float, high: float) -> tuple:
    """The theory's active count over a continuous β range: mode i is active while β is below
    the β at which it collapses. Returns (β grid, counts), log-spaced from ``low`` to ``high``
    with every threshold inside the range on the grid, so each step sits where it belongs."""
    inside = [b for b in collapse_betas if low < b < high]
    grid = np.unique(np.concatenate([np.geomspace(low, high, 400), inside]))
    counts = (np.asarray(collapse_betas)[None, :] > grid[:, None]).sum(1)
    return grid, counts


def plot_predicted_vs_observed(
    rows: list[DemoRow], collapse_betas: dict[str, list[float]], path: Path
) -> Path:
    """Per family: the theory's active dimensions as the staircase it is over β (from the β at
    which each mode collapses), the theory at the trained β's, and the trained models."""
    figure, axes = new_figure((9, 3.4), 1, len(BETAS))
    for axis, family in zip(axes, BETAS, strict=True):
        mine = [r for r in rows if r.model == family]
        betas = [r.beta for r in mine]
        grid, counts = theory_staircase(collapse_betas[family], min(betas) / 3, max(betas) * 3)
        axis.plot(grid, counts, drawstyle="steps-post", color="C0", label="theory")
        axis.plot(betas, [r.predicted_active for r in mine], "o", color="C0")
        axis.plot(betas, [r.observed_active for r in mine], "x", color="C1", ms=10, label="trained")
        axis.set_xscale("log")
        axis.set_xlabel("β")
        axis.set_ylabel("active dimensions")
        axis.set_title(f"linear {family.upper()} on {model_family(family).default_dataset}")
        axis.legend(fontsize=8)
    return save_figure(figure, path)
