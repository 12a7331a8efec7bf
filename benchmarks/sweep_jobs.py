"""Sweep throughput, side by side in one run: the runs of a sweep trained one after another with
all of the process's threads (``--jobs 1``), side by side in worker processes that split the
threads (``--jobs 2``, ...), and as one batched model (``batched``, what ``reproduce`` does by
default for these models), for two of the paper's MNIST models:

* ``relu-mhvae`` — the ReLU-MLP MHVAE of fig2c/table5/fig4 (784-256-16-256-16), arithmetic-bound;
* ``relu-cvae`` — the hidden-16 ReLU CVAE on the quadrant view of fig2b/table3, overhead-bound.

    VAECOLLAPSE_DATA=../shared/data python benchmarks/sweep_jobs.py [--runs 4] [--epochs 2]

Every sweep trains ``--runs`` runs (β varies) from scratch into a fresh directory, including the
workers' start-up; the final training losses of every way are printed as a correctness check.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from vaecollapse.core.data import load_dataset
from vaecollapse.reproductions.common import train_runs
from vaecollapse.reproductions.dang2024.mhvae_sweeps import RELU_MHVAE_SETTINGS
from vaecollapse.reproductions.registry import Context
from vaecollapse.training.config import TrainConfig

MODELS = {
    "relu-mhvae": ("mhvae", "mnist", RELU_MHVAE_SETTINGS),
    "relu-cvae": (
        "cvae",
        "mnist-quadrant",
        {"latent_dim": 16, "backbone": "mlp", "hidden": 16, "encoder_variance": "shared"},
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-batched", action="store_true", help="leave out the batched sweep")
    args = parser.parse_args()
    training = TrainConfig(epochs=args.epochs, lr=1e-3)
    print(f"{torch.get_num_threads()} threads; {args.runs} runs of {args.epochs} epochs a sweep")
    for name, (family, source, settings) in MODELS.items():
        dataset = load_dataset(source)
        runs = {f"beta{i}": settings | {"beta": 0.25 * (i + 1)} for i in range(args.runs)}
        seconds, losses = {}, {}
        ways = [(f"--jobs {jobs}", jobs, False) for jobs in args.jobs]
        ways += [] if args.no_batched else [("batched", 1, True)]
        for way, jobs, batch in ways:
            with tempfile.TemporaryDirectory() as scratch:
                ctx = Context(Path(scratch) / "bench", quick=False, jobs=jobs, batch=batch)
                started = time.perf_counter()
                outcomes = train_runs(ctx, "sweep", family, dataset, runs, training)
                seconds[way] = time.perf_counter() - started
            losses[way] = [o.history[-1]["train_loss"] for o in outcomes.values()]
        base = ways[0][0]
        for way, _, _ in ways:
            print(
                f"{name:11s} {way:9s}: {seconds[way]:7.1f} s  "
                f"{seconds[base] / seconds[way]:4.2f}x the {base} throughput; "
                f"final losses {', '.join(f'{v:.2f}' for v in losses[way])}"
            )


if __name__ == "__main__":
    main()
