"""What the probes add to a diagnosis: ``diagnose`` of the 784-256-16 ReLU VAE (trained two
epochs) on the 10,000 MNIST test images with the probes (decoder usage, amortisation gap) and
without them, alternating, in one process with the threads fixed; the median of each and their
ratio, as a markdown table.

    VAECOLLAPSE_DATA=../shared/data python benchmarks/probe_cost.py [--repeats 3] [--threads 2]
        [--write docs/benchmarks/probe-cost.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from vaecollapse.core.data import load_dataset
from vaecollapse.core.diagnostics import diagnose
from vaecollapse.core.models import VAE, VAEConfig

COMMAND = "VAECOLLAPSE_DATA=../shared/data python benchmarks/probe_cost.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="diagnoses of each kind")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--write", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("mnist")
    torch.manual_seed(0)
    model = VAE(VAEConfig(data_dim=784, latent_dim=16, backbone="mlp", hidden=256))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):
        for index in torch.randperm(len(data.train)).split(128):
            optimizer.zero_grad()
            model(data.train.x[index]).loss().backward()
            optimizer.step()
    model.eval()
    seconds: dict[bool, list[float]] = {False: [], True: []}
    for repeat in range(2 * args.repeats):
        probed = repeat % 2 == 1
        started = time.perf_counter()
        diagnose(model, data.test.x, probes=probed)
        seconds[probed].append(time.perf_counter() - started)
    plain, probed = (statistics.median(seconds[k]) for k in (False, True))
    table = "\n".join([
        f"`{COMMAND} --repeats {args.repeats} --threads {args.threads}` (torch "
        f"{torch.__version__}, {args.threads} threads; medians of {args.repeats} alternating runs)",
        "",
        "| diagnose on 10,000 MNIST test images, 784-256-16 VAE | seconds |",
        "|---|---|",
        f"| without the probes (`probes=False`) | {plain:.2f} |",
        f"| with the probes (decoder usage, amortisation gap) | {probed:.2f} |",
        f"| ratio | {probed / plain:.2f} |",
    ])  # fmt: skip
    print(table)
    if args.write is not None:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(table + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
