"""What the collapse monitor adds to training: epochs of the 784-256-16 ReLU VAE on MNIST (batch
128) with and without ``CollapseMonitor`` at its defaults (every epoch, 2048 test rows, patience
2) with an ``on_event`` hook and ``stop_when="level-collapsed"``, alternating, in one process with
the threads fixed; the median epoch of each and their ratio.

    VAECOLLAPSE_DATA=../shared/data python benchmarks/monitor_overhead.py [--epochs 6] \
        [--threads 2] [--write docs/benchmarks/monitor-overhead.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from vaecollapse.core.data import load_dataset
from vaecollapse.core.models import VAE, VAEConfig
from vaecollapse.core.monitor import CollapseMonitor

COMMAND = "VAECOLLAPSE_DATA=../shared/data python benchmarks/monitor_overhead.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6, help="epochs of each kind")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--write", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("mnist")
    torch.manual_seed(0)
    model = VAE(VAEConfig(data_dim=784, latent_dim=16, backbone="mlp", hidden=256))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    events = []
    monitor = CollapseMonitor(
        model, data.test.x, on_event=events.append, stop_when="level-collapsed"
    )
    seconds: dict[bool, list[float]] = {False: [], True: []}
    monitor_seconds = []
    for epoch in range(1, 2 * args.epochs + 1):
        watched = epoch % 2 == 0
        started = time.perf_counter()
        for index in torch.randperm(len(data.train)).split(128):
            optimizer.zero_grad()
            model(data.train.x[index]).loss().backward()
            optimizer.step()
        if watched:
            before = time.perf_counter()
            monitor.update(epoch)
            monitor_seconds.append(time.perf_counter() - before)
        seconds[watched].append(time.perf_counter() - started)
    plain, watched = (statistics.median(seconds[k]) for k in (False, True))
    update = statistics.median(monitor_seconds)
    table = "\n".join([
        f"`{COMMAND} --epochs {args.epochs} --threads {args.threads}` (torch "
        f"{torch.__version__}, {args.threads} threads; medians of {args.epochs} alternating "
        "epochs of each kind)",
        "",
        "| MNIST epoch, 784-256-16 VAE, batch 128 | seconds |",
        "|---|---|",
        f"| without the monitor | {plain:.2f} |",
        f"| with `CollapseMonitor` (every epoch, hook and early stopping) | {watched:.2f} |",
        f"| one monitor update | {update:.3f} |",
        f"| ratio of the epochs | {watched / plain:.3f} |",
        f"| one update against an epoch without the monitor | {update / plain:.1%} |",
    ])  # fmt: skip
    print(table)
    print(f"{len(events)} events; the monitor adds {100 * (watched / plain - 1):.1f}%")
    if args.write is not None:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(table + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
