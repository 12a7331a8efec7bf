"""Diagnosing a run directory written by ``vaecollapse train``: the report, its verdict, the
theory comparison for linear models, and the files it leaves in the run directory."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import torch

from vaecollapse.core.data import Dataset
from vaecollapse.core.diagnostics.display import headlines, probe_lines, warning_lines
from vaecollapse.core.diagnostics.iwae import (
    LikelihoodEstimate,
    importance_log_likelihood,
    model_log_weights,
)
from vaecollapse.core.diagnostics.linear import theory_comparison
from vaecollapse.core.diagnostics.plots import (
    plot_collapse_curves,
    plot_kl_bars,
    plot_std_histograms,
    save_figure,
)
from vaecollapse.core.diagnostics.report import DiagnosisReport, diagnose_model
from vaecollapse.core.diagnostics.verdict import explain
from vaecollapse.core.errors import InputError
from vaecollapse.core.fileio import replace_atomically, write_text_atomic
from vaecollapse.core.models.factory import (
    build_model,
    config_to_json,
    load_run_model,
    model_config,
)
from vaecollapse.core.pages import write_report
from vaecollapse.core.rundir import stored_data_spec
from vaecollapse.training.batched import Run
from vaecollapse.training.config import TrainConfig
from vaecollapse.training.many import train_many


def diagnose_run(
    run_dir: str | Path,
    *,
    epsilon: float = 0.01,
    delta: float = 0.05,
    iwae_k: int = 0,
    split: str = "test",
    dataset: Dataset | None = None,
) -> tuple[DiagnosisReport, Dataset]:
    """The report of a run's model on its data set's ``split`` (the training split when the data
    set has no test split), with ``verdict`` and, for linear models, ``theory`` filled in."""
    model, stored = load_run_model(run_dir)
    if dataset is None:
        dataset = stored_data_spec(Path(run_dir), stored).load()
    if split not in ("train", "test"):
        raise InputError(f"split must be train or test; got '{split}'.")
    _check_widths(Path(run_dir), model.config, dataset)
    part = dataset.test if split == "test" and dataset.test is not None else dataset.train
    report = diagnose_model(model, part.x, part.y, epsilon=epsilon, delta=delta)
    if iwae_k > 0:
        report.iwae = _stored_iwae(Path(run_dir), model, part, split, iwae_k)
    report.verdict = explain(report, model, dataset)
    report.settings = config_to_json(model.config)
    if getattr(model.config, "backbone", None) == "linear":
        try:
            report.theory = theory_comparison(model, dataset)
        except InputError as reason:  # e.g. an amortized variance: outside the theory
            report.theory = {"not_applicable": str(reason)}
    return report, dataset


def _check_widths(run_dir: Path, config, dataset: Dataset) -> None:
    """Refuse data whose rows are not as wide as those the run was trained on (a file replaced
    since training, or another data set given)."""
    trained = {"x": getattr(config, "data_dim", None) or getattr(config, "x_dim", None)}
    trained["y"] = getattr(config, "y_dim", None)
    now = {"x": dataset.x_dim, "y": dataset.y_dim}
    for name in ("x", "y"):
        if trained[name] != now[name]:
            raise InputError(
                f"the run in {run_dir} was trained on rows of {trained[name]} values ({name}) but "
                f"its data set {dataset.name} now has {now[name]}: the data changed since "
                "training. Give the data it was trained on (diagnose --data-dir, or restore the "
                "file)."
            )


def train_run(
    run_dir: str | Path,
    family: str,
    dataset: Dataset,
    settings: dict,
    train_config: TrainConfig,
    *,
    device: str = "auto",
    log_every: int = 1,
    log_prefix: str = "",
) -> list[dict]:
    """Train one model (or resume it, or skip it when complete) into ``run_dir``, initial weights
    from ``train_config.seed``. Returns every epoch's metrics."""
    run = prepared_run(run_dir, family, dataset, settings, train_config)
    (history,) = train_many(
        [run], dataset, device=device, progress=False, log_every=log_every, log_prefix=log_prefix
    )
    return history


def prepared_run(
    run_dir: str | Path, family: str, dataset: Dataset, settings: dict, train_config: TrainConfig
) -> Run:
    """The model ``family`` with ``settings`` for ``dataset``, initial weights from
    ``train_config.seed``, ready to train into ``run_dir`` alone or in a batch."""
    config = model_config(family, dataset, **settings)
    torch.manual_seed(train_config.seed)
    return Run(build_model(config), train_config, Path(run_dir), {"model": config_to_json(config)})


def train_and_diagnose(
    run_dir: str | Path,
    family: str,
    dataset: Dataset,
    settings: dict,
    train_config: TrainConfig,
    *,
    device: str = "auto",
    log_every: int = 1,
    iwae_k: int = 0,
) -> tuple[list[dict], DiagnosisReport]:
    """``train_run``, then the diagnosis of the model on the test split: (history, report)."""
    history = train_run(
        run_dir, family, dataset, settings, train_config, device=device,
        log_every=log_every,
    )  # fmt: skip
    report, _ = diagnose_run(run_dir, dataset=dataset, iwae_k=iwae_k)
    return history, report


def _stored_iwae(run_dir: Path, model, part, split: str, k: int) -> LikelihoodEstimate:
    """The IWAE estimate, the slow part of a diagnosis (``k`` passes a row), kept in the run
    directory: reused while the weights' values, the rows and ``k`` are the ones it was made from,
    so re-running an experiment over finished runs does not pay for it again. Runs without final
    weights (still training) are not stored."""
    weights = run_dir / "model.pt"
    key = None
    if weights.exists():
        key = {
            "weights_sha256": _weights_digest(model),
            "split": split,
            "rows": int(part.x.shape[0]),
            "data_sum": float(part.x.double().sum()),
            "k": k,
        }
        path = run_dir / f"iwae-{split}-k{k}.pt"
        stored = None
        if path.exists():
            try:
                stored = torch.load(path, map_location="cpu", weights_only=True)
            except Exception:  # a damaged store is estimated afresh and replaced
                stored = None
        if isinstance(stored, dict) and stored.get("key") == key:
            return LikelihoodEstimate(stored["values"], k)
    estimate = importance_log_likelihood(model_log_weights(model), part.x, part.y, k=k)
    if key is not None:
        record = {"key": key, "values": estimate.values}
        replace_atomically(path, lambda tmp: torch.save(record, tmp))
    return estimate


def _weights_digest(model) -> str:
    """A hash of the weights' values (not of model.pt's bytes, which change with every save)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def write_diagnosis(
    report: DiagnosisReport, run_dir: str | Path, label: str = "model"
) -> list[Path]:
    """``diagnosis.json``, three PNGs and ``report.html`` (the text and the figures in one page)
    in ``run_dir``, each written atomically."""
    run_dir = Path(run_dir)
    path = run_dir / "diagnosis.json"
    text = report.to_json() + "\n"
    write_text_atomic(path, text)
    figures = [
        save_figure(plot_collapse_curves({label: report}), run_dir / "collapse_curve.png"),
        save_figure(plot_kl_bars(report), run_dir / "kl_per_dim.png"),
        save_figure(plot_std_histograms({label: report}), run_dir / "encoder_std.png"),
    ]
    page = write_report(
        run_dir / "report.html", f"Diagnosis: {label}", diagnosis_markdown(report, label), figures
    )
    return [path, *figures, page]


def _cell(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.replace("|", "∣")  # the page's tables split cells at every "|"


def diagnosis_markdown(report: DiagnosisReport, label: str) -> str:
    """The diagnosis as the page ``report.html`` shows it: the verdict (each level's headline,
    its causes and fixes), the warnings, the settings the model was built with, a table per
    level, the probes, the likelihood and the theory comparison."""
    out = [f"# Diagnosis: {label}", ""]
    if report.verdict:
        out += ["## Verdict", ""]
        for head, details in headlines(report):
            out += [f"**{head}**", "", *(f"- {line}" for line in details), ""]
    if report.warnings:
        out += ["## Warnings", "", *(f"- {line}" for line in warning_lines(report)), ""]
    if report.settings:
        out += ["## Settings", "", "| setting | value |", "|---|---|"]
        out += [f"| `{key}` | {_cell(value)} |" for key, value in report.settings.items()]
        out.append("")
    for name, level in report.levels.items():
        collapsed = set(level.collapsed_dims)
        stds = level.encoder_std.double().mean(0)
        d = level.latent_dim
        out += [f"## Level {name}: {d} dimensions", ""]
        out.append(
            f"KL {level.kl_total:.3f} nats; (ε = {report.epsilon:g}, δ = {report.delta:g})-"
            f"collapsed {len(collapsed)} of {d}; active units (Burda: Var E[z|x] > 0.01) "
            f"{level.active_units} of {d}; (row, dimension) pairs with KL ≥ 0.01: "
            f"{100 * level.kl_active_fraction:.1f}%."
        )
        if level.mutual_information is not None:
            mi, error = level.mutual_information
            out[-1] += (
                f" Mutual information I(x; {name}) {mi:.3f} ± {error:.3f} nats (at most log N = "
                f"{math.log(level.kl.shape[0]):.2f} over these {level.kl.shape[0]} rows)."
            )
        out += [
            "",
            "| dimension | mean KL | Var E[z∣x] | mean σ | state |",
            "|---|---|---|---|---|",
        ]
        for i, (kl, var) in enumerate(zip(level.kl_per_dim, level.mean_variance, strict=True)):
            state = "collapsed" if i in collapsed else "active"
            out.append(f"| {i} | {kl:.4f} | {float(var):.4f} | {float(stds[i]):.4f} | {state} |")
        out.append("")
    extra = probe_lines(report)
    if report.iwae is not None:
        extra.append(
            f"IWAE log-likelihood (K = {report.iwae.samples}): {report.iwae.mean:.3f} "
            f"± {report.iwae.standard_error:.3f} nats"
        )
    extra += _theory_lines(report)
    if extra:
        out += ["## Probes, likelihood and theory", "", *(f"- {line}" for line in extra), ""]
    return "\n".join(out)


def _theory_lines(report: DiagnosisReport) -> list[str]:
    if not report.theory or "maps" not in report.theory:
        return []
    parts = [f"{k} {v['d_ma']:.4f}" for k, v in report.theory["maps"].items()]
    parts += [f"σ_{k} {v['d_ma']:.4f}" for k, v in report.theory["encoder_std"].items()]
    return [
        "theory vs learned, D_MA: " + ", ".join(parts),
        f"theory predicts active: {report.theory['predicted_active']}",
    ]


def format_report(report: DiagnosisReport) -> str:
    """The verdict first — per level its headline, causes and fixes — and the warnings; then a
    plain-text table per level, the probes, the likelihood and the theory comparison."""
    lines = []
    if report.verdict:
        lines.append(f"verdict: {report.verdict['summary']}")
        for head, details in headlines(report):
            lines.append(f"  {head}")
            lines += [f"    {line}" for line in details]
    lines += warning_lines(report)
    for name, level in report.levels.items():
        collapsed = set(level.collapsed_dims)
        lines.append(f"level {name}: {level.latent_dim} dimensions")
        lines.append(f"  {'dim':>4} {'mean KL':>10} {'Var E[z|x]':>11} {'mean σ':>8}  state")
        stds = level.encoder_std.double().mean(0)
        for i, (kl, var) in enumerate(zip(level.kl_per_dim, level.mean_variance, strict=True)):
            state = "collapsed" if i in collapsed else "active"
            lines.append(
                f"  {i:>4} {kl:>10.4f} {float(var):>11.4f} {float(stds[i]):>8.4f}  {state}"
            )
        d = level.latent_dim
        lines.append(
            f"  KL {level.kl_total:.3f} nats; (ε={report.epsilon:g}, δ={report.delta:g})-collapsed "
            f"{len(collapsed)}/{d}; AU (Burda) {level.active_units}/{d} "
            f"({100 * level.active_units / d:.0f}%); pairs with KL ≥ 0.01: "
            f"{100 * level.kl_active_fraction:.1f}%"
        )
        if level.mutual_information is not None:
            mi, error = level.mutual_information
            lines.append(
                f"  mutual information I(x; {name}) {mi:.3f} ± {error:.3f} nats (at most "
                f"log N = {math.log(level.kl.shape[0]):.2f} over these {level.kl.shape[0]} rows)"
            )
    lines += probe_lines(report)
    if report.iwae is not None:
        lines.append(
            f"IWAE log-likelihood (K={report.iwae.samples}): {report.iwae.mean:.3f} "
            f"± {report.iwae.standard_error:.3f} nats"
        )
    lines += _theory_lines(report)
    return "\n".join(lines)
