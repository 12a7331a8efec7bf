"""Batched multi-configuration training, side by side in one run: the wall time of R
configurations trained as one batch (``vaecollapse.training.batched.train_batched``) against
one configuration trained alone (``vaecollapse.training.trainer.train``), per epoch, for three
MNIST models:

* ``linear-cvae`` — fig6a's linear CVAE on the quadrant task (x 196 → z 64; (z, x) 260 → y 588),
  batch 128, β at the eight thresholds θ_1..θ_8;
* ``mlp-vae`` — the paper's ReLU-MLP VAE, 784-256-16, batch 128, eight β's;
* ``mlp-mhvae`` — the ReLU MHVAE of fig2c, table5 and fig4 (tanh-bounded means, Σ2 =
  tanh(MLP(z1))², d1 = d2 = 16), batch 128, eight β2's.

    VAECOLLAPSE_DATA=../shared/data python benchmarks/batched_training.py [--threads 2]

Each measurement trains from scratch into a fresh directory (run-directory and test-split costs
included, as a sweep pays them) and is repeated ``--repeats`` times, interleaved; medians are
reported. The batched runs' final losses are compared with the alone run's for the β they share,
as a correctness check — except for ``mlp-mhvae``, whose log tanh(·)² variance amplifies
last-bit differences: a run whose initial weights move by 1e-7 drifts as far from the same run
unperturbed, so its gap measures that sensitivity, not a fault (tests/test_batched.py checks the
MHVAE's batching with fixed variances). The torch thread count is set explicitly
(``--threads``): on a shared machine the default can oversubscribe. Large freed blocks are kept
for reuse, as the command line keeps them (``vaecollapse.core.memory.keep_freed_memory``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from vaecollapse import TrainConfig
from vaecollapse.core.data import load_dataset
from vaecollapse.core.memory import keep_freed_memory
from vaecollapse.core.models.factory import build_model, config_to_json, model_config
from vaecollapse.core.theory import cvae_spectrum
from vaecollapse.reproductions.dang2024.mhvae_sweeps import RELU_MHVAE_SETTINGS
from vaecollapse.training.batched import Run, train_batched
from vaecollapse.training.trainer import train

TRAINING = TrainConfig(epochs=1, batch_size=128, lr=1e-4)


def cases(configurations: int) -> dict:
    quadrant = load_dataset("mnist-quadrant")
    theta = cvae_spectrum(quadrant).values
    mnist = load_dataset("mnist")
    return {
        "linear-cvae": (
            "cvae", quadrant,
            [{"latent_dim": 64, "encoder_variance": "shared", "beta": float(theta[k])}
             for k in range(configurations)],
        ),
        "mlp-vae": (
            "vae", mnist,
            [{"latent_dim": 16, "backbone": "mlp", "hidden": 256, "beta": 0.25 * (k + 1)}
             for k in range(configurations)],
        ),
        "mlp-mhvae": (
            "mhvae", mnist,
            [RELU_MHVAE_SETTINGS | {"betas": (1.0, 0.25 * (k + 1)), "eta_dec": 0.5}
             for k in range(configurations)],
        ),
    }  # fmt: skip


def make_run(family, dataset, settings, training, run_dir) -> Run:
    config = model_config(family, dataset, **settings)
    torch.manual_seed(training.seed)
    return Run(build_model(config), training, run_dir, {"model": config_to_json(config)})


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def train_alone(run: Run, dataset) -> list[dict]:
    return train(
        run.model, dataset, run.config, run.run_dir, run_config=run.run_config, device="cpu",
        progress=False,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configurations", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=("linear-cvae", "mlp-vae", "mlp-mhvae"))
    parser.add_argument("--json", help="Also write the results here.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()
    training = replace(TRAINING, epochs=args.epochs)
    r = args.configurations
    print(
        f"torch {torch.__version__}, {args.threads} threads; {args.epochs} epoch(s) a "
        f"measurement, median of {args.repeats}"
    )
    results: dict = {}
    for name, (family, dataset, settings) in cases(r).items():
        if args.only not in (None, name):
            continue
        alone_seconds, batched_seconds = [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as scratch:
                scratch = Path(scratch)
                one = make_run(family, dataset, settings[0], training, scratch / "alone")
                seconds, alone_history = timed(train_alone, one, dataset)
                alone_seconds.append(seconds)
                batch = [
                    make_run(family, dataset, s, training, scratch / f"batched{i}")
                    for i, s in enumerate(settings)
                ]
                seconds, histories = timed(
                    train_batched, batch, dataset, device="cpu", progress=False
                )
                batched_seconds.append(seconds)
        alone, batched = statistics.median(alone_seconds), statistics.median(batched_seconds)
        gap = abs(histories[0][-1]["train_loss"] - alone_history[-1]["train_loss"])
        print(
            f"{name:11s} one alone {alone / args.epochs:6.2f} s/epoch; {r} batched "
            f"{batched / args.epochs:6.2f} s/epoch = {batched / alone:4.2f}x one, "
            f"{r * alone / batched:4.2f}x cheaper per configuration than one by one "
            f"(final loss of the shared β: alone vs batched differ by {gap:.2e})"
        )
        results[name] = {
            "one alone": {"seconds": alone / args.epochs},
            f"{r} batched": {"seconds": batched / args.epochs},
        }
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
