"""One revision's speed against another's, side by side in one run: the training benchmarks
(``train_speed.py`` and ``batched_training.py``, or those named by ``--benchmarks``) run under
both revisions in alternation, and each time is reported with its ratio.

    VAECOLLAPSE_DATA=../shared/data python benchmarks/against_revision.py --before REV \\
        [--after HEAD] [--rounds 3] [--write docs/benchmarks/one-loop-speed.md]

Both revisions are checked out into temporary git worktrees (so edits made while it runs are not
measured) and imported through ``PYTHONPATH``; the benchmark scripts themselves are this tree's,
so both revisions are measured by the same code. Every round runs each benchmark once (one
repeat) under the earlier revision and then under the later, so slow drifts of a shared machine
fall on both; the median over rounds is reported. A ratio above 1 means the later is slower. The
spread column is the earlier revision's own (max − min) / median over its rounds: a ratio inside
1 ± spread is within the noise of the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCHMARKS = {
    "train_speed": ["--repeats", "1", "--cases", "mnist-mlp,digits-small"],
    "batched_training": ["--repeats", "1", "--threads", "2"],
}


def measure(benchmark: str, tree: Path, scratch: Path) -> dict:
    """One run of a benchmark with `tree`'s package imported; its JSON results."""
    out = scratch / f"{benchmark}.json"
    command = [sys.executable, str(HERE / f"{benchmark}.py"), *BENCHMARKS[benchmark]]
    environment = os.environ | {"PYTHONPATH": str(tree)}
    subprocess.run([*command, "--json", str(out)], check=True, env=environment, cwd=ROOT,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return json.loads(out.read_text())


def _short(revision: str) -> str:
    return subprocess.run(["git", "rev-parse", "--short", revision], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="The earlier git revision.")
    parser.add_argument("--after", default="HEAD", help="The later git revision.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--benchmarks", default=",".join(BENCHMARKS))
    parser.add_argument("--write", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args()
    benchmarks = args.benchmarks.split(",")
    unknown = sorted(set(benchmarks) - set(BENCHMARKS))
    if unknown:
        raise SystemExit(f"unknown benchmarks {unknown}; choose from {sorted(BENCHMARKS)}")
    revisions = {"before": _short(args.before), "after": _short(args.after)}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        trees = {label: scratch / label for label in revisions}
        try:
            for label, revision in revisions.items():
                subprocess.run(["git", "worktree", "add", "--detach", "-q", str(trees[label]),
                                revision], cwd=ROOT, check=True)  # fmt: skip
            times: dict = {}
            for round_ in range(args.rounds):
                for benchmark in benchmarks:
                    for label, tree in trees.items():
                        results = measure(benchmark, tree, scratch)
                        for case, row in results.items():
                            for contender, value in row.items():
                                key = (benchmark, case, contender)
                                times.setdefault(key, {"before": [], "after": []})
                                times[key][label].append(value["seconds"])
                        print(f"round {round_ + 1}: {benchmark} under {label} done", flush=True)
        finally:
            for tree in trees.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                               check=False, stderr=subprocess.DEVNULL)  # fmt: skip
    lines = [
        f"{revisions['before']} (before) against {revisions['after']} (after), median of "
        f"{args.rounds} rounds.",
        "",
        "| benchmark | case | contender | before s | after s | after / before | spread |",
        "|---|---|---|---|---|---|---|",
    ]
    for (benchmark, case, contender), samples in times.items():
        old, new = statistics.median(samples["before"]), statistics.median(samples["after"])
        spread = (max(samples["before"]) - min(samples["before"])) / old
        lines.append(f"| {benchmark} | {case} | {contender} | {old:.2f} | {new:.2f} | "
                     f"{new / old:.2f} | ±{spread:.2f} |")  # fmt: skip
    print("\n" + "\n".join(lines))
    if args.write:
        command = " ".join(["python benchmarks/against_revision.py", *sys.argv[1:]])
        heading = "# Training speed, one revision against another\n\n"
        made_by = f"Made by `VAECOLLAPSE_DATA=../shared/data {command}`.\n\n"
        args.write.write_text(heading + made_by + "\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
