"""Do the quick claims hold whatever the thread count and the seed? Every registered entry's quick
variant is run under four conditions — 1 and 2 torch threads, each with the entries' own seeds and
with every run seeded 2 instead — each condition in its own process and output folder, and the
claim and its tightest check (``vaecollapse.reproductions.claims``) are tabulated side by side.

    VAECOLLAPSE_DATA=../shared/data python benchmarks/quick_claims.py [--write docs/quick-claims.md]
        [--cores 2] [--only fig5,table4]

The CIFAR-10 entries run on the same stand-in the test suite writes (40 images of 3 patterns).
A claim that flips between conditions, or holds by a hair in one, needs a larger effect.
With ``--only`` and ``--write`` an existing file keeps its other entries' sections: the named
entries' sections are replaced or added, and the count is taken again over every section.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CONDITIONS = [(1, None), (2, None), (1, 2), (2, 2)]  # (threads, seed; None = the entry's own)


def worker(threads: int, seed: int | None, out: Path, names: list[str]) -> None:
    """Run the quick entries in this process with ``threads`` threads; one JSON line each."""
    import torch

    torch.set_num_threads(threads)
    sys.path.insert(0, str(REPO_ROOT))
    from tests.stand_ins import write_cifar_stand_in
    from vaecollapse.reproductions import REGISTRY, run_entry

    stand_in = out / "cifar-stand-in"
    write_cifar_stand_in(stand_in, n_per_batch=8, patterns=3)
    for name in names:
        cifar = "cifar10" in REGISTRY[name].data
        started = time.perf_counter()
        try:
            result = run_entry(
                name, out, quick=True, seed=seed, data_dir=stand_in if cifar else None,
                verify=not cifar,
            )  # fmt: skip
            record = {"holds": result.claim_holds, "margin": result.margin}
        except Exception as exc:  # an entry that cannot run is reported, not hidden
            record = {"holds": False, "margin": f"error: {type(exc).__name__}: {exc}"}
        record |= {"entry": name, "seconds": time.perf_counter() - started}
        print(json.dumps(record), flush=True)


def run_condition(threads: int, seed: int | None, names: list[str]) -> dict[str, dict]:
    with tempfile.TemporaryDirectory(prefix="quick-claims-") as folder:
        command = [sys.executable, __file__, "--worker", "--threads", str(threads)]
        command += ["--out", folder, "--only", ",".join(names)]
        if seed is not None:
            command += ["--seed", str(seed)]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(REPO_ROOT))
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
    return {record["entry"]: record for record in records}


def waves(conditions: list[tuple], cores: int) -> list[list[tuple]]:
    """The conditions in groups run at once, each group's threads summing to at most ``cores``
    (more would oversubscribe the cores and slow every process many times over)."""
    groups: list[list[tuple]] = []
    used = cores
    for condition in sorted(conditions, key=lambda c: c[0]):
        if used + condition[0] > cores:
            groups.append([])
            used = 0
        groups[-1].append(condition)
        used += condition[0]
    return groups


def label(threads: int, seed: int | None) -> str:
    return f"{threads} thread{'s' if threads > 1 else ''}, seed {'own' if seed is None else seed}"


def sections(names: list[str], results: dict[tuple, dict[str, dict]]) -> dict[str, str]:
    """Each entry's section: a table of its conditions."""
    found = {}
    header = ["| condition | claim | tightest check | s |", "|---|---|---|---|"]
    for name in names:
        lines = [f"## {name}", "", *header]
        for (threads, seed), records in results.items():
            record = records.get(name, {"holds": False, "margin": "no result", "seconds": 0})
            state = "holds" if record["holds"] else "**does not hold**"
            margin = record["margin"].removeprefix("tightest check — ").replace("|", "\\|")
            lines.append(
                f"| {label(threads, seed)} | {state} | {margin} | {record['seconds']:.0f} |"
            )
        found[name] = "\n".join(lines) + "\n"
    return found


def merged(existing: str, updated: dict[str, str], order: list[str]) -> dict[str, str]:
    """The sections of an existing file with ``updated`` ones replacing or joining them, in
    ``order``."""
    kept = {}
    for chunk in existing.split("\n## ")[1:]:
        kept[chunk.split("\n", 1)[0].strip()] = "## " + chunk.rstrip("\n") + "\n"
    kept |= updated
    return {name: kept[name] for name in order if name in kept}


def commit() -> str:
    """The checked-out commit the conditions ran on ("+ changes" when the package or the
    benchmarks differ from it; edits to the documents do not count)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD") or "an unknown commit"
    return head + (
        " + changes" if git("status", "--porcelain", "--", "vaecollapse", "benchmarks") else ""
    )


def markdown(found: dict[str, str], wall: str) -> str:
    rows = [line for text in found.values() for line in text.splitlines()]
    cells = [line for line in rows if line.startswith("| ") and "thread" in line]
    held = sum(line.split(" | ")[1] == "holds" for line in cells)
    lines = [
        "# Quick claims under other thread counts and seeds",
        "",
        "Generated by `VAECOLLAPSE_DATA=../shared/data python benchmarks/quick_claims.py --write "
        "docs/quick-claims.md` on a 2-core CPU machine: every entry's quick variant (the one the "
        "test suite runs) under 1 and 2 torch threads, with the entries' own seeds and with "
        "every run seeded 2, each condition in a fresh process and folder. Each cell: whether "
        "the claim held, then its tightest check — the inequality closest to failing, with its "
        "numbers and the margin relative to the values compared.",
        "",
        f"{held} of {len(cells)} entry-conditions hold; {wall}.",
        "",
    ]
    return "\n".join(lines) + "\n" + "\n".join(found.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--only", help="comma-separated entry names (default: every entry)")
    parser.add_argument(
        "--cores", type=int, default=1, help="run conditions at once while their threads fit"
    )
    parser.add_argument("--write", type=Path, help="write the markdown table here")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT))
    from vaecollapse.reproductions.registry import entry_names

    names = args.only.split(",") if args.only else entry_names()
    if args.worker:
        worker(args.threads, args.seed, args.out, names)
        return
    started = time.perf_counter()
    results = {}
    for wave in waves(CONDITIONS, args.cores):
        with ThreadPoolExecutor(len(wave)) as pool:
            futures = {c: pool.submit(run_condition, *c, names) for c in wave}
            results |= {c: f.result() for c, f in futures.items()}
    results = {c: results[c] for c in CONDITIONS}
    found = sections(names, results)
    wall = f"wall time {(time.perf_counter() - started) / 60:.0f} min, at {commit()}"
    if args.write and args.only and args.write.exists():
        previous = args.write.read_text(encoding="utf-8")
        before = previous.split(" entry-conditions hold; ", 1)[1].split(".\n", 1)[0]
        found = merged(previous, found, entry_names())
        wall = f"{before}; {', '.join(names)} updated alone, {wall}"
    text = markdown(found, wall)
    if args.write:
        args.write.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
