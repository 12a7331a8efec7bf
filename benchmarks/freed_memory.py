"""The C allocator's treatment of large freed blocks, side by side in one run: each workload
timed in a fresh process with glibc's defaults (large blocks mapped anew and unmapped when
freed) and with ``vaecollapse.core.memory.keep_freed_memory`` (kept for reuse), alternating.

    VAECOLLAPSE_DATA=../shared/data python benchmarks/freed_memory.py [--threads 2]

Workloads, on MNIST with the ReLU MHVAE of fig2c, table5 and fig4 (tanh-bounded means,
Σ2 = tanh(MLP(z1))², d1 = d2 = 16, batch 128):

* ``batched`` — one epoch of ``--configurations`` runs (39, table5's grid: 13 points, three
  seeds) trained as one batch;
* ``alone`` — one epoch of one run;
* ``iwae`` — the IWAE estimate with K = 1000 on 1,000 test images.

Epochs run over the first ``--train-images`` training images (25,600: 200 steps). Medians of
``--repeats`` per setting; the torch thread count is set explicitly (``--threads``).
Only glibc's malloc is affected: on another allocator both columns measure the same thing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKLOADS = ("batched", "alone", "iwae")


def child(workload: str, keep: bool, threads: int, configurations: int, images: int) -> float:
    from dataclasses import replace

    import torch

    from vaecollapse.core.data import load_dataset
    from vaecollapse.core.diagnostics import importance_log_likelihood, model_log_weights
    from vaecollapse.core.memory import keep_freed_memory
    from vaecollapse.reproductions.dang2024.mhvae_sweeps import RELU_MHVAE_SETTINGS
    from vaecollapse.training.batched import train_batched
    from vaecollapse.training.config import TrainConfig
    from vaecollapse.training.runs import prepared_run
    from vaecollapse.training.trainer import train

    torch.set_num_threads(threads)
    if keep and not keep_freed_memory():
        raise SystemExit("keep_freed_memory did not apply here (not glibc, or tunables set)")
    mnist = load_dataset("mnist")
    mnist = replace(mnist, train=mnist.train.select(torch.arange(images)))
    with tempfile.TemporaryDirectory() as scratch:
        runs = [
            prepared_run(
                Path(scratch) / f"run{k}", "mhvae", mnist,
                RELU_MHVAE_SETTINGS | {"betas": (1.0, 0.25 * (k + 1)), "eta_dec": 0.5},
                TrainConfig(epochs=1, batch_size=128, lr=1e-3, seed=k % 3),
            )
            for k in range(configurations if workload == "batched" else 1)
        ]  # fmt: skip
        started = time.perf_counter()
        if workload == "batched":
            train_batched(runs, mnist, device="cpu", progress=False)
        elif workload == "alone":
            run = runs[0]
            train(
                run.model, mnist, run.config, run.run_dir, run_config=run.run_config,
                device="cpu", progress=False,
            )  # fmt: skip
        else:
            images = mnist.test.x[:1000]
            importance_log_likelihood(model_log_weights(runs[0].model), images, k=1000)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--configurations", type=int, default=39)
    parser.add_argument("--train-images", type=int, default=25_600)
    parser.add_argument("--only", choices=WORKLOADS)
    parser.add_argument("--child", choices=WORKLOADS, help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        seconds = child(args.child, args.keep, args.threads, args.configurations, args.train_images)
        print(json.dumps({"seconds": seconds}))
        return
    print(f"{args.threads} threads; median of {args.repeats} fresh processes per setting")
    for workload in WORKLOADS:
        if args.only not in (None, workload):
            continue
        seconds: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeats):
            for keep in (False, True):
                command = [
                    sys.executable, __file__, "--child", workload, "--threads",
                    str(args.threads), "--configurations", str(args.configurations),
                    "--train-images", str(args.train_images),
                ] + (["--keep"] if keep else [])  # fmt: skip
                output = subprocess.run(command, check=True, capture_output=True, text=True)
                seconds[keep].append(json.loads(output.stdout.splitlines()[-1])["seconds"])
        default, kept = (statistics.median(seconds[k]) for k in (False, True))
        print(
            f"{workload:8s} glibc defaults {default:7.2f} s; freed memory kept {kept:7.2f} s "
            f"= {default / kept:4.2f}x faster"
        )


if __name__ == "__main__":
    main()
