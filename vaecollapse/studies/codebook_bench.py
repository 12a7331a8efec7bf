"""The codebook remedy bench: one small VQ autoencoder, one data set and one seed set, trained with
no remedy and with each remedy for codebook collapse, every run measured the same way over the
whole test split (``diagnose_codebook``: codes used, dead, perplexity, and the verdict) with its
reconstruction error, and one table and figure side by side.

The remedies are options of vector-quantize-pytorch's ``VectorQuantize`` (dead-code replacement
from batch samples, k-means initialisation, a lower code dimension with cosine similarity, a
faster EMA, a codebook-diversity entropy penalty) and its finite scalar quantiser as the
alternative. Each (remedy, seed) result is kept in ``runs/`` as it is measured, so a second call
over the same ``--out`` measures only what is missing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vaecollapse.core.codebook import diagnose_codebook
from vaecollapse.core.data import load_dataset
from vaecollapse.core.diagnostics.plots import new_figure, save_figure
from vaecollapse.core.errors import InputError
from vaecollapse.core.fileio import write_text_atomic
from vaecollapse.core.logs import LOGGER
from vaecollapse.core.pages import write_report
from vaecollapse.core.rundir import claimed_directory
from vaecollapse.studies.remedy_bench import add_seed_statistics, csv_text, seed_cell

VQ_EXTRA = "pip install 'vaecollapse[vq]'  (or: pip install vector-quantize-pytorch)"
BASELINE = {"decay": 0.99}  # the EMA codebook that collapses without a remedy
REMEDIES: dict[str, dict[str, Any] | None] = {
    "none": {},
    "dead-code-replacement": {"threshold_ema_dead_code": 2},
    "kmeans-init": {"kmeans_init": True},
    "cosine-low-dim": {"codebook_dim": 4, "use_cosine_sim": True},
    "faster-ema": {"decay": 0.8},
    "entropy-penalty": {"codebook_diversity_loss_weight": 0.1},
    "fsq": None,  # a finite scalar quantiser in place of the codebook
}
MEASURES = ("used", "dead", "perplexity", "reconstruction")  # per run, averaged over seeds


@dataclass(frozen=True)
class BenchSetup:
    """The model and its training: an MLP encoder to ``tokens`` tokens of ``token_dim`` each, a
    codebook of ``codebook_size`` (the FSQ's ``fsq_levels`` multiply to it), an MLP decoder;
    the first ``train_rows`` training images, squared error summed over the pixels (the
    Gaussian log-likelihood at η_dec = 1, halved), plus the quantiser's own losses."""

    dataset: str = "mnist"
    train_rows: int = 10000
    tokens: int = 4
    token_dim: int = 16
    codebook_size: int = 256
    fsq_levels: tuple[int, ...] = (8, 8, 4)
    hidden: int = 256
    epochs: int = 3
    batch_size: int = 128
    lr: float = 1e-3

    def __post_init__(self) -> None:
        if int(np.prod(self.fsq_levels)) != self.codebook_size:
            raise InputError(
                f"the FSQ levels {list(self.fsq_levels)} give {int(np.prod(self.fsq_levels))} "
                f"codes, not the codebook's {self.codebook_size}: give levels that multiply to it."
            )
        for name in ("train_rows", "tokens", "token_dim", "hidden", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1; got {getattr(self, name)}.")


def _quantizer(remedy: str, setup: BenchSetup) -> nn.Module:
    try:
        from vector_quantize_pytorch import FSQ, VectorQuantize
    except ImportError:
        raise InputError(f"the codebook bench needs vector-quantize-pytorch: {VQ_EXTRA}.") from None
    options = REMEDIES[remedy]
    if options is None:
        return FSQ(levels=list(setup.fsq_levels), dim=setup.token_dim)
    return VectorQuantize(
        dim=setup.token_dim, codebook_size=setup.codebook_size, **(BASELINE | options)
    )


class VQAutoencoder(nn.Module):
    """Images ``(B, P)`` → ``tokens`` encodings of ``token_dim`` → quantised → images."""

    def __init__(self, pixels: int, quantizer: nn.Module, setup: BenchSetup) -> None:
        super().__init__()
        width = setup.tokens * setup.token_dim
        self.shape = (setup.tokens, setup.token_dim)
        self.encoder = nn.Sequential(
            nn.Linear(pixels, setup.hidden), nn.ReLU(), nn.Linear(setup.hidden, width)
        )
        self.decoder = nn.Sequential(
            nn.Linear(width, setup.hidden), nn.ReLU(), nn.Linear(setup.hidden, pixels),
            nn.Sigmoid(),
        )  # fmt: skip
        self.quantizer = quantizer

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images).view(-1, *self.shape)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The reconstructions ``(B, P)`` and the quantiser's own loss (zero for FSQ)."""
        output = self.quantizer(self.encode(images))
        auxiliary = output[2].sum() if len(output) > 2 else images.new_zeros(())
        return self.decoder(output[0].flatten(1)), auxiliary


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(len(x), -1).float()


def train_and_measure(
    remedy: str, seed: int, setup: BenchSetup, train: torch.Tensor, test: torch.Tensor
) -> dict[str, Any]:
    """Train one (remedy, seed) and measure its codebook and reconstructions on ``test``."""
    torch.manual_seed(seed)
    model = VQAutoencoder(train.shape[1], _quantizer(remedy, setup), setup)
    optimizer = torch.optim.Adam(model.parameters(), lr=setup.lr)
    order = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    for _ in range(setup.epochs):
        for batch in train[torch.randperm(len(train), generator=order)].split(setup.batch_size):
            reconstruction, auxiliary = model(batch)
            loss = 0.5 * (reconstruction - batch).square().sum(1).mean() + auxiliary
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    seconds = time.perf_counter() - started
    model.eval()
    with torch.no_grad():
        encodings = model.encode(test)
        error = float((model(test)[0] - test).square().sum(1).mean())
    report = diagnose_codebook(model.quantizer, encodings, setup.codebook_size)
    return {
        "remedy": remedy, "seed": seed, "used": report.used, "dead": len(report.dead),
        "perplexity": report.perplexity, "reconstruction": error, "seconds": seconds,
        "findings": [finding.code for finding in report.findings],
        "setup": asdict(setup),
    }  # fmt: skip


def summarise(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per remedy, in the order run: each column's mean and standard deviation over the
    seeds (``<column>`` and ``<column>_sd``), time relative to ``none``'s mean."""
    baseline = float(np.mean([r["seconds"] for r in results if r["remedy"] == "none"]))
    rows = []
    for remedy in dict.fromkeys(r["remedy"] for r in results):
        mine = [r for r in results if r["remedy"] == remedy]
        values = {column: [r[column] for r in mine] for column in MEASURES}
        values["relative_time"] = [r["seconds"] / baseline for r in mine]
        row: dict[str, Any] = {"remedy": remedy, "seeds": len(mine)}
        add_seed_statistics(row, values)
        findings = {code for r in mine for code in r["findings"]}
        row["findings"] = ", ".join(sorted(findings)) or "—"
        rows.append(row)
    return rows


def markdown_table(rows: Sequence[dict[str, Any]], codebook_size: int) -> str:
    """Mean ± sd over the seeds per remedy (the mean alone for one seed)."""
    cell = seed_cell
    lines = [
        f"| remedy | codes used (of {codebook_size}) | dead | perplexity | reconstruction "
        "(squared error per image) | time (× none) | verdict (any seed) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['remedy']} | {cell(row, 'used', 1)} | {cell(row, 'dead', 1)} | "
            f"{cell(row, 'perplexity', 1)} | {cell(row, 'reconstruction', 2)} | "
            f"{cell(row, 'relative_time', 2)} | {row['findings']} |"
        )
    return "\n".join(lines) + "\n"


def plot_bench(results: Sequence[dict[str, Any]], codebook_size: int):
    """Codes used against reconstruction error, one point per seed and one colour per remedy,
    beside each remedy's perplexity (mean, with the seeds' range)."""
    figure, (scatter, bars) = new_figure((11, 4.2), 1, 2)
    remedies = list(dict.fromkeys(r["remedy"] for r in results))
    for k, remedy in enumerate(remedies):
        mine = [r for r in results if r["remedy"] == remedy]
        scatter.plot([r["used"] for r in mine], [r["reconstruction"] for r in mine], "o",
                     color=f"C{k}", label=remedy)  # fmt: skip
        values = [r["perplexity"] for r in mine]
        bars.bar(k, np.mean(values), color=f"C{k}")
        bars.vlines(k, min(values), max(values), color="black")
    scatter.set(xscale="log", xlabel=f"codes used (of {codebook_size}), test split",
                ylabel="reconstruction (squared error per image)")  # fmt: skip
    scatter.axvline(codebook_size, color="grey", ls=":")
    scatter.legend(fontsize=8)
    bars.set_xticks(range(len(remedies)), remedies, rotation=30, ha="right", fontsize=8)
    bars.set(ylabel="perplexity", title="perplexity (mean; line: seeds' range)")
    figure.tight_layout()
    return figure


def run_codebook_bench(
    out: str | Path,
    setup: BenchSetup = BenchSetup(),
    *,
    remedies: Sequence[str] = tuple(REMEDIES),
    seeds: Sequence[int] = (0, 1, 2),
    data_dir: str | None = None,
) -> list[dict[str, Any]]:
    """Train and measure every remedy at every seed into ``out`` (locked meanwhile), then write
    ``codebook-remedies.md``, ``.csv``, ``.png``, ``report.html`` and ``summary.json`` there."""
    unknown = [r for r in remedies if r not in REMEDIES]
    if unknown or "none" not in remedies:
        raise InputError(
            f"remedies must include none and be among {', '.join(REMEDIES)}; got "
            f"{', '.join(remedies)}."
        )
    if not seeds:
        raise InputError("give at least one seed.")
    dataset = load_dataset(setup.dataset, data_dir=data_dir)
    if dataset.test is None:
        raise InputError(f"{setup.dataset} has no test split to measure the codebooks on.")
    train, test = _flat(dataset.train.x[: setup.train_rows]), _flat(dataset.test.x)
    results = []
    with claimed_directory(out, "codebook-bench") as directory:
        started = time.perf_counter()
        planned = [(remedy, seed) for remedy in remedies for seed in seeds]
        for remedy, seed in planned:
            path = directory / "runs" / f"{remedy}-seed{seed}.json"
            kept = json.loads(path.read_text()) if path.exists() else None
            if kept is None or kept["setup"] != json.loads(json.dumps(asdict(setup))):
                kept = train_and_measure(remedy, seed, setup, train, test)
                path.parent.mkdir(exist_ok=True)
                write_text_atomic(path, json.dumps(kept, indent=2) + "\n")
            results.append(kept)
            LOGGER.info(
                f"[{len(results)}/{len(planned)}] {remedy} seed {seed}: {kept['used']} of "
                f"{setup.codebook_size} codes used, perplexity {kept['perplexity']:.1f}, "
                f"reconstruction {kept['reconstruction']:.2f} "
                f"({time.perf_counter() - started:.0f} s)"
            )
        _write_outputs(directory, results, setup)
    return results


def _write_outputs(directory: Path, results: Sequence[dict], setup: BenchSetup) -> None:
    rows = summarise(results)
    seeds = ", ".join(str(s) for s in dict.fromkeys(r["seed"] for r in results))
    header = (
        f"# Codebook remedy bench on {setup.dataset}\n\n"
        f"An MLP VQ autoencoder ({setup.tokens} tokens of {setup.token_dim}, a codebook of "
        f"{setup.codebook_size}, hidden width {setup.hidden}) trained {setup.epochs} epochs on the "
        f"first {setup.train_rows} training images (batch {setup.batch_size}, Adam {setup.lr:g}); "
        f"seeds {seeds}. Codes are counted over the whole test split. Mean ± sd over the "
        "seeds.\n\n"
    )
    markdown = header + markdown_table(rows, setup.codebook_size)
    write_text_atomic(directory / "codebook-remedies.md", markdown)
    write_text_atomic(directory / "codebook-remedies.csv", csv_text(rows))
    figure = save_figure(
        plot_bench(results, setup.codebook_size), directory / "codebook-remedies.png"
    )
    write_report(directory / "report.html", f"Codebook remedy bench on {setup.dataset}",
                 markdown, [figure])  # fmt: skip
    summary = {"setup": asdict(setup), "rows": rows, "runs": list(results)}
    write_text_atomic(directory / "summary.json", json.dumps(summary, indent=2) + "\n")
