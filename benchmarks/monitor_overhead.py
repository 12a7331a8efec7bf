"""What the collapse monitor adds to training: epochs of the 784-256-16 ReLU VAE on MNIST (batch
128) with and without ``CollapseMonitor`` at its defaults (every epoch, 2048 test rows),
alternating, in one process with the threads fixed; the median epoch of each and their ratio.

    VAECOLLAPSE_DATA=../shared/data python benchmarks/monitor_overhead.py [--epochs 6] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from vaecollapse.data import load_dataset
from vaecollapse.models import VAE, VAEConfig
from vaecollapse.monitor import CollapseMonitor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6, help="epochs of each kind")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("mnist")
    torch.manual_seed(0)
    model = VAE(VAEConfig(data_dim=784, latent_dim=16, backbone="mlp", hidden=256))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    monitor = CollapseMonitor(model, data.test.x)
    seconds: dict[bool, list[float]] = {False: [], True: []}
    monitor_seconds = []
    for epoch in range(1, 2 * args.epochs + 1):
        watched = epoch % 2 == 0
        started = time.perf_counter()
        for index in torch.randperm(len(data.train)).split(128):
            optimiser.zero_grad()
            model(data.train.x[index]).loss().backward()
            optimiser.step()
        if watched:
            before = time.perf_counter()
            monitor.update(epoch)
            monitor_seconds.append(time.perf_counter() - before)
        seconds[watched].append(time.perf_counter() - started)
    plain, watched = (statistics.median(seconds[k]) for k in (False, True))
    print(f"threads {args.threads}; median of {args.epochs} epochs each")
    print(f"epoch without the monitor {plain:.2f} s, with it {watched:.2f} s")
    print(f"one monitor update {statistics.median(monitor_seconds):.3f} s")
    print(f"ratio {watched / plain:.3f} (the monitor adds {100 * (watched / plain - 1):.1f}%)")


if __name__ == "__main__":
    main()
