"""The experiment registry: one entry per figure or table of the papers (``vaecollapse reproduce
--list``).

An entry's ``run(context)`` executes its runs inside ``context.out`` (skipping what is already
complete there, so an interrupted ``all`` resumes), and returns an ``EntryResult``: result rows
(written as ``results.csv``), a paper-vs-ours table (``comparison.md``), the figures it drew and
whether its qualitative claim held.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from vaecollapse.core.errors import InputError
from vaecollapse.core.fileio import read_regular_file, write_text_atomic
from vaecollapse.core.rundir import ENTRY_OUTCOME, read_json_object, read_metrics
from vaecollapse.training.config import TrainConfig


@dataclass
class Comparison:
    """One line of the paper-vs-ours table."""

    quantity: str
    paper: str
    ours: str
    agreement: str


@dataclass
class EntryResult:
    claim: str
    claim_holds: bool
    rows: list[dict] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    seconds: float = 0.0  # this invocation's wall time (runs found complete are not re-trained)
    train_seconds: float = 0.0  # training time of all its runs, from their histories
    margin: str = ""  # the tightest check of the claim, with its numbers (claims.Claim)
    checks: list[str] = field(default_factory=list)  # every check, with its kind (claims.Check)


@dataclass
class Context:
    """Where and how an entry runs. ``quick``: the small CI variant of the entry. ``shared``: the
    run directories entries share (a sweep point two figures both use is trained once). ``jobs``:
    how many runs of a sweep train at once, each in its own process. ``epochs``: when set, every
    run trains this many epochs instead of the entry's own count (a run resumes with more).
    ``seed``: when set, every run starts from this seed instead of the entry's own (its initial
    weights, batches and samples; the data are the same), to see how much a result owes to it.
    ``batch``: train the runs of a sweep that can share a batch (``vaecollapse.training.batched``;
    linear and MLP backbones) as one batched model in this process, before ``jobs`` applies.
    ``dataset``: when set, one of the entry's ``alternatives``, run in place of its own data."""

    out: Path
    quick: bool
    data_dir: str | None = None
    verify: bool = True  # md5 checks of the official data files
    shared: Path | None = None
    jobs: int = 1
    epochs: int | None = None
    seed: int | None = None
    clip_norms: set[float | None] = field(default_factory=set)  # of every run it trained
    batch: bool = True
    dataset: str | None = None

    def training(self, config: TrainConfig) -> TrainConfig:
        """``config`` with the epochs and seed asked for on the command line, if any; every
        configuration an entry trains with passes through here."""
        if self.epochs is not None:
            config = replace(config, epochs=self.epochs)
        if self.seed is not None:
            config = replace(config, seed=self.seed)
        self.clip_norms.add(config.clip_grad_norm)
        return config

    def seed_or(self, default: int) -> int:
        """The seed asked for on the command line, else the entry's own ``default``."""
        return default if self.seed is None else self.seed

    def run_dir(self, *parts: str) -> Path:
        """A run directory in the shared area, apart for quick and full runs."""
        base = self.shared if self.shared is not None else self.out / "runs"
        return base.joinpath("quick" if self.quick else "full", *parts)


@dataclass(frozen=True)
class Entry:
    name: str
    title: str
    paper: str
    convention: str  # which KL convention the comparison with the paper uses
    run: Callable[[Context], EntryResult]
    data: tuple[str, ...] = ()  # data sets its full run needs besides the embedded digits
    alternatives: tuple[str, ...] = ()  # data sets `--dataset` may run it on instead
    # raised whenever what the claim asks or how its runs train changes, so that a record of an
    # earlier definition is never shown as a run of this one
    revision: int = 1

    def directory_name(self, dataset: str | None) -> str:
        """Its output folder: the entry's name, with ``-DATASET`` when run on an alternative."""
        return self.name if dataset is None else f"{self.name}-{dataset}"


REGISTRY: dict[str, Entry] = {}


def register(
    name: str,
    title: str,
    convention: str,
    paper: str = "Dang et al. (ICLR 2024)",
    data: tuple[str, ...] = (),
    alternatives: tuple[str, ...] = (),
    revision: int = 1,
):
    """Decorator: add ``run(context) -> EntryResult`` to the registry under ``name``;
    ``revision``: the number of its definition (see ``Entry``)."""

    def add(run: Callable[[Context], EntryResult]) -> Callable[[Context], EntryResult]:
        if name in REGISTRY:
            raise ValueError(f"experiment '{name}' is registered twice")
        REGISTRY[name] = Entry(name, title, paper, convention, run, data, alternatives, revision)
        return run

    return add


def by_paper() -> dict[str, list[Entry]]:
    """The registered entries grouped by paper: the papers in the order their first entry was
    registered (Dang et al.'s first), each paper's entries in registration order."""
    groups: dict[str, list[Entry]] = {}
    for entry in REGISTRY.values():
        groups.setdefault(entry.paper, []).append(entry)
    return groups


def entry_names() -> list[str]:
    """Every entry's name, grouped by paper as in :func:`by_paper` (the order of ``all``)."""
    return [entry.name for entries in by_paper().values() for entry in entries]


def entry_on(name: str, dataset: str | None = None) -> Entry:
    """Entry ``name``, checked to run on ``dataset`` (None: its own data); InputError else."""
    if name not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise InputError(f"unknown experiment '{name}'. Known: {known}.")
    entry = REGISTRY[name]
    if dataset is not None and dataset not in entry.alternatives:
        takers = [e.name for e in REGISTRY.values() if dataset in e.alternatives]
        raise InputError(
            f"experiment '{name}' does not run on --dataset {dataset}: "
            + (f"it takes {', '.join(entry.alternatives)}. " if entry.alternatives else
               "it runs on its own data only. ")
            + (f"Entries that take {dataset}: {', '.join(takers)}." if takers else
               f"No entry takes {dataset}.")
        )  # fmt: skip
    return entry


def run_entry(
    name: str,
    out: str | Path,
    quick: bool = False,
    data_dir: str | None = None,
    verify: bool = True,
    jobs: int = 1,
    epochs: int | None = None,
    seed: int | None = None,
    batch: bool = True,
    dataset: str | None = None,
) -> EntryResult:
    """Run one entry into ``out/name`` (``out/name-DATASET`` on an alternative data set; its
    runs under ``out/shared-runs``, where other entries can reuse them, batched where they can
    be, else ``jobs`` at a time) and write its CSV and markdown table."""
    entry = entry_on(name, dataset)
    directory = Path(out) / entry.directory_name(dataset)
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    context = Context(
        directory, quick, data_dir, verify, Path(out) / "shared-runs", jobs, epochs, seed,
        batch=batch, dataset=dataset,
    )  # fmt: skip
    result = entry.run(context)
    result.seconds = time.perf_counter() - started
    write_text_atomic(directory / "results.csv", to_csv(result.rows))
    write_text_atomic(
        directory / "comparison.md",
        to_markdown(entry, result, quick, epochs, seed, clipping_note(context.clip_norms), dataset),
    )
    outcome = {
        "mode": "quick" if quick else "full",
        "revision": entry.revision,
        "dataset": dataset,
        "claim_holds": result.claim_holds,
        "margin": result.margin,
        "checks": result.checks,
        "seconds": result.seconds,
        "train_seconds": result.train_seconds,
        "epochs": epochs,
        "seed": seed,
        "clip_grad_norm": sorted(context.clip_norms, key=lambda v: -1.0 if v is None else v),
    }
    write_text_atomic(directory / ENTRY_OUTCOME, json.dumps(outcome, indent=1) + "\n")
    return result


def to_csv(rows: list[dict]) -> str:
    if not rows:
        return ""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def clipping_note(clip_norms: set[float | None]) -> str:
    """How the entry's runs clipped gradients (Dang et al.'s nonlinear scripts clip their norm at
    0.1; the paper does not say so, and no entry here does unless its settings ask for it)."""
    if not clip_norms:
        return ""
    stated = sorted("none" if v is None else f"total norm {v:g}" for v in clip_norms)
    return "Gradient clipping of its runs: " + ", ".join(stated) + "."


def to_markdown(
    entry: Entry,
    result: EntryResult,
    quick: bool,
    epochs: int | None = None,
    seed: int | None = None,
    clipping: str = "",
    dataset: str | None = None,
) -> str:
    mode = "quick" if quick else "full"
    if dataset is not None:
        mode += f", on {dataset} in place of its own data"
    if epochs is not None:
        mode += f", every run trained {epochs} epochs instead of the entry's own count"
    if seed is not None:
        mode += f", every run seeded {seed} instead of the entry's own seed"
    lines = [
        f"# {entry.directory_name(dataset)}: {entry.title}",
        "",
        f"Source: {entry.paper}. Mode: {mode}. "
        f"Wall time: {result.seconds:.1f} s (training of its runs: {result.train_seconds:.1f} s, "
        "counting epochs run by earlier, interrupted invocations).",
        f"KL convention: {entry.convention}",
        *([clipping] if clipping else []),
        "",
        f"Claim: {result.claim} — **{'holds' if result.claim_holds else 'does not hold'}**.",
        *([f"Margin: {result.margin}."] if result.margin else []),
        *(
            [
                "",
                "Checks (information: the paper's finding; consistency: nearly automatic at a "
                "converged optimum, e.g. a KL falling as its own weight grows):",
                "",
            ]
            if result.checks
            else []
        ),
        *(f"- {check}" for check in result.checks),
        "",
        "| quantity | paper | ours | agreement |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {c.quantity} | {c.paper} | {c.ours} | {c.agreement} |" for c in result.comparisons
    ]
    if result.figures:
        lines += ["", "Figures: " + ", ".join(p.name for p in result.figures)]
    return "\n".join(lines) + "\n"


def found_results(out: Path) -> list[tuple[Entry, str]]:
    """Every entry with a ``result.json`` under ``out``, in registry order, each on its own data
    and then on its alternatives: (entry, its folder's name)."""
    return [
        (entry, folder)
        for name in entry_names()
        for entry in [REGISTRY[name]]
        for folder in [entry.directory_name(d) for d in (None, *entry.alternatives)]
        if (out / folder / ENTRY_OUTCOME).is_file()
    ]


# What a report reads of each entry's result.json, and the types it must have.
OUTCOME_FIELDS = {"mode": str, "claim_holds": bool, "seconds": (int, float),
                  "train_seconds": (int, float)}  # fmt: skip


def _typed(value: object, kind: type | tuple[type, ...]) -> bool:
    """``isinstance``, with a bool taken only where a bool is meant (a bool is an int)."""
    return isinstance(value, kind) and isinstance(value, bool) == (kind is bool)


def read_outcome(out: Path, entry: Entry, folder: str) -> dict:
    """The ``result.json`` of ``entry`` in ``out/folder``, checked to hold what a report reads
    (with its ``comparison.md`` beside it); a clear error if it is damaged."""
    path = out / folder / ENTRY_OUTCOME
    fix = f"Run `vaecollapse reproduce {entry.name} --out {out}` again to rewrite it."
    outcome = read_json_object(path, "an entry's outcome", fix)
    wrong = [key for key, kind in OUTCOME_FIELDS.items() if not _typed(outcome.get(key), kind)]
    if wrong or outcome["mode"] not in ("quick", "full"):
        named = ", ".join(wrong or ["mode"])
        raise InputError(f"{path} lacks a valid {named}, so it is not an entry's outcome. {fix}")
    comparison = out / folder / "comparison.md"
    if not os.path.lexists(comparison):
        raise InputError(f"{out / folder} has a {ENTRY_OUTCOME} but no comparison.md. {fix}")
    return outcome


def of_earlier_definition(entry: Entry, outcome: dict) -> bool:
    """Whether an entry's ``result.json`` ran an earlier definition of it (a result without a
    revision is of the first)."""
    return outcome.get("revision", 1) < entry.revision


def outcome_mode(entry: Entry, outcome: dict) -> str:
    """How an entry's ``result.json`` ran, as the status tables say it: its mode, data set,
    epochs and seed when not its own, and whether it ran an earlier definition of the entry."""
    mode = outcome["mode"]
    if outcome.get("dataset") is not None:
        mode += f", on {outcome['dataset']}"
    if outcome.get("epochs") is not None:
        mode += f", {outcome['epochs']} epochs"
    if outcome.get("seed") is not None:
        mode += f", seed {outcome['seed']}"
    if of_earlier_definition(entry, outcome):
        mode += ", an earlier definition"
    return mode


def collect_report(out: str | Path) -> str:
    """Every entry run under ``out`` (its ``result.json``), in registry order: a table of modes,
    claims and times, then each ``comparison.md`` (the body of docs/reproduction.md)."""
    out = Path(out)
    found = found_results(out)
    lines = [
        "| paper | entry | mode | claim | wall s (last invocation) | training s (all its runs) |",
        "|---|---|---|---|---|---|",
    ]
    sections = []
    for entry, folder in found:
        outcome = read_outcome(out, entry, folder)
        claim = "holds" if outcome["claim_holds"] else "does not hold"
        lines.append(
            f"| {entry.paper} | {folder} | {outcome_mode(entry, outcome)} | {claim} | "
            f"{outcome['seconds']:.1f} | "
            f"{outcome['train_seconds']:.1f} |"
        )
        text = read_regular_file(out / folder / "comparison.md", out).decode("utf-8", "replace")
        sections.append(text.replace("\n# ", "\n### ").replace("# ", "### ", 1))
    ran = {entry.name for entry, _ in found}
    missing = [name for name in entry_names() if name not in ran]
    lines.append("")
    for mode, (runs, complete, seconds) in run_area_totals(out / "shared-runs").items():
        lines.append(
            f"Training time of the {runs} {mode} runs in {out}/shared-runs/{mode} ({complete} "
            f"complete), each counted once though entries share runs: {seconds / 60:.1f} min."
        )
    if missing:
        lines.append(f"Not run yet in {out}: {', '.join(missing)}.")
    return "\n".join(lines) + "\n\n" + "\n".join(sections)


RECORDED_FILES = ("comparison.md", ENTRY_OUTCOME, "results.csv")


def record_results(out: Path, records: Path) -> list[str]:
    """Copy every full-mode entry found under ``out`` (its comparison, outcome and rows; no runs,
    no figures) into ``records/<folder>``, replacing an earlier record of the same entry: a
    small record of the full results to keep with the documents that quote them. Returns the
    folders recorded."""
    recorded = []
    for entry, folder in found_results(out):
        if read_outcome(out, entry, folder).get("mode") != "full":
            continue
        (records / folder).mkdir(parents=True, exist_ok=True)
        for name in RECORDED_FILES:
            source = out / folder / name
            if os.path.lexists(source):
                copied = read_regular_file(source, out).decode("utf-8", "replace")
                write_text_atomic(records / folder / name, copied)
        recorded.append(folder)
    return recorded


def run_area_totals(shared: Path) -> dict[str, tuple[int, int, float]]:
    """Per mode (full, quick) of a shared run area: (runs, runs with final weights, summed epoch
    seconds of every run's history)."""
    totals = {}
    for mode in ("full", "quick"):
        histories = sorted((shared / mode).glob("**/metrics.jsonl"))
        if not histories:
            continue
        seconds = sum(record["seconds"] for path in histories for record in read_metrics(path))
        complete = sum((path.parent / "model.pt").is_file() for path in histories)
        totals[mode] = (len(histories), complete, seconds)
    return totals
