"""The default phase diagram's wall time: ``vaecollapse phase --out DIR`` with no other arguments
(the 256-point linear VAE diagram on the embedded digits), as a fresh process each time, from
scratch, with the torch thread count set explicitly (``--threads``, passed as OMP_NUM_THREADS).

    python benchmarks/phase_speed.py [--repeats 3] [--threads 2]

Prints each repeat's wall time (interpreter start to exit), the command's own split into training
and measuring, the agreement with the theory and the largest D_MA, then the median wall time
against the 60-second goal.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_SECONDS = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    environment = os.environ | {"OMP_NUM_THREADS": str(args.threads)}
    walls = []
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "phase"
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "vaecollapse", "phase", "--out", str(out)],
                check=True, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            walls.append(time.perf_counter() - started)
            summary = json.loads((out / "summary.json").read_text())
        seconds = summary["seconds"]
        print(
            f"repeat {repeat + 1}: {walls[-1]:5.1f} s wall (training {seconds['train']:.1f} s, "
            f"measuring {seconds['diagnose']:.1f} s); {summary['agreeing']} of "
            f"{len(summary['points'])} counts as the theory's, largest D_MA "
            f"{summary['max_d_ma']:.3g}"
        )
    median = statistics.median(walls)
    verdict = "meets" if median < GOAL_SECONDS else "misses"
    print(
        f"median {median:.1f} s with {args.threads} threads: {verdict} the "
        f"{GOAL_SECONDS:.0f} s goal"
    )


if __name__ == "__main__":
    main()
