"""How a DiagnosisReport shows itself: a short text summary (``repr``), HTML with tables and
inline plots (Jupyter), and a pandas table of every dimension."""

from __future__ import annotations

import base64
import html
import io

import numpy as np
import torch

from vaecollapse.core.diagnostics.metrics import AU_THRESHOLD
from vaecollapse.core.diagnostics.plots import (
    has_kl_map,
    plot_collapse_curves,
    plot_kl_bars,
    plot_kl_map,
)
from vaecollapse.core.diagnostics.report import DiagnosisReport
from vaecollapse.core.errors import InputError

NOTEBOOK_EXTRA = "pip install 'vaecollapse[notebook]'  (or: pip install pandas)"


HOLE_KL = 0.1  # nats per value of the aggregate posterior's KL to the prior worth a sentence


def _shape(level) -> str:
    return "×".join(str(n) for n in level.latent_shape)


def _numbers(values) -> str:
    return "[" + ", ".join(f"{float(v):.3g}" for v in values) + "]"


def grid_lines(name: str, level, configured_scale: float | None = None) -> list[str]:
    """For a latent grid: KL and collapse per channel, and the aggregate posterior per channel
    against the prior with the scaling factor a diffusion model on these latents needs."""
    if not level.is_grid:
        return []
    per_position = int(np.prod(level.position_shape))
    lines = [
        f"channels of {name} ({_shape(level)}, channel axis {level.channel_axis}): KL per "
        f"channel {_numbers(level.kl_per_channel)} nats; collapsed positions per channel "
        f"{level.collapsed_per_channel.tolist()} of {per_position}; collapsed channels "
        f"{level.collapsed_channels}"
    ]
    aggregate = level.aggregate_posterior()
    if aggregate is None:
        return lines
    text = (
        f"aggregate posterior of {name} per channel: mean {_numbers(aggregate['mean'])}, std "
        f"{_numbers(aggregate['std'])}"
    )
    if aggregate["kl_to_prior"] is not None:
        text += f", KL to the prior ≥ {_numbers(aggregate['kl_to_prior'])} nats per value"
    if aggregate["scaling_factor"] is not None:
        text += (
            f"; scaling factor 1/std = {aggregate['scaling_factor']:.4g} "
            f"(shift {aggregate['shift']:.3g})"
        )
        if configured_scale is not None:
            text += f" against the configured {configured_scale:.4g}"
    lines.append(text)
    holes = [c for c, kl in enumerate(aggregate["kl_to_prior"] or []) if kl > HOLE_KL]
    if holes:
        lines.append(
            f"channel(s) {holes} sit away from the prior (KL ≥ {HOLE_KL:g} nats per value): "
            "prior draws land where the encoder never puts codes and decode to what the decoder "
            "never saw; a diffusion model should see the latents shifted and scaled as above, "
            "and samples should come from the aggregate posterior, not the prior."
        )
    return lines


def _level_line(name: str, level) -> str:
    d = level.latent_dim
    d_text = f"{d} values ({_shape(level)})" if level.is_grid else f"{d} dims"
    line = (
        f"{name}: {d_text}, KL {level.kl_total:.4g} nats, {len(level.collapsed_dims)} "
        f"(ε,δ)-collapsed {_listed(level.collapsed_dims)}, AU {level.active_units}/{d}"
    )
    if level.mutual_information is not None:
        line += f", I(x;{name}) {level.mutual_information[0]:.3g} nats"
    return line


def _listed(indices: list[int], limit: int = 32) -> str:
    """A list of indices, shortened past ``limit`` (a grid has thousands)."""
    if len(indices) <= limit:
        return str(indices)
    return f"[{', '.join(map(str, indices[:limit]))}, … {len(indices) - limit} more]"


def _which(level, dims: int | list[int]) -> str:
    """What a finding is about: a count, dimensions, or a grid's whole channels (and values)."""
    if isinstance(dims, int):
        return f"{dims} dimension(s)"
    if not level.is_grid:
        return f"dimensions {_listed(dims)}"
    chosen = np.zeros(level.latent_dim, dtype=bool)
    chosen[dims] = True
    per_channel = level.by_channel(torch.as_tensor(chosen)[None])[0]  # (C, P)
    whole = [int(c) for c in np.flatnonzero(per_channel.all(1).numpy())]
    rest = int(per_channel.sum()) - len(whole) * per_channel.shape[1]
    parts = [f"channels {whole}"] if whole else []
    if rest:
        parts.append(f"{rest} value(s) of other channels")
    return " and ".join(parts)


def _information(name: str, level) -> str:
    text = f"{level.kl_total:.3g} nats of KL"
    if level.mutual_information is not None:
        text += f", I(x;{name}) {level.mutual_information[0]:.3g} nats"
    return text


def headlines(report: DiagnosisReport) -> list[tuple[str, list[str]]]:
    """Per level the headline — how much of the latent carries information, what collapsed —
    and under it each finding's cause (with its code) and fix, the counts' disagreement and the
    misreading warnings: what a reader needs first."""
    verdict = report.verdict or {"levels": {}, "findings": []}
    out = []
    for name, level in report.levels.items():
        facts = verdict["levels"].get(name, {})
        d = level.latent_dim
        unit = f"values of the {_shape(level)} grid" if level.is_grid else "dimensions"
        if facts.get("collapsed_as_a_whole"):
            head = f"{name}: collapsed as a whole — {_information(name, level)} over {d} {unit}"
        else:
            collapsed = len(level.collapsed_dims)
            state = f"{collapsed} of {d} {unit} collapsed" if collapsed else "none collapsed"
            carried = facts.get("carrying_dims")
            share = "" if carried is None else f", 90% of it in {carried} of {d} {unit}"
            head = f"{name}: {state} — {_information(name, level)}{share}"
        lines = grid_lines(name, level, report.settings.get("scaling_factor"))
        for finding in verdict["findings"]:
            if finding["level"] != name:
                continue
            dims = finding["dims"]
            which = _which(level, dims)
            lines.append(f"cause [{finding['code']}], {which}: {finding['explanation']}")
            if finding["suggestion"]:
                lines.append(f"fix: {finding['suggestion']}")
        if facts.get("counts_note"):
            lines.append(f"counts: {facts['counts_note']}.")
        out.append((head, lines))
    return out


def warning_lines(report: DiagnosisReport) -> list[str]:
    return [f"warning [{w['code']}]: {w['message']}" for w in report.warnings]


def probe_lines(report: DiagnosisReport) -> list[str]:
    """One line per probe that ran, after how the decoder was found, where it was."""
    found = report.settings.get("decoder")
    lines = [f"decoder: {found}"] if found else []
    usage = report.probes.get("decoder_usage")
    if usage is not None:
        used = usage.used_dims(report.epsilon)
        lines.append(
            f"decoder use of {usage.level}: log p(x|z) {usage.posterior:.4g} with its own code, "
            f"{usage.shuffled:.4g} with another row's, {usage.prior:.4g} from the prior "
            f"(reads {usage.information_used:.3g} ± {usage.used_error:.2g} nats per row; "
            f"{'dimensions' if usage.per_value else 'channels'} it reads: {used})"
        )
    gap = report.probes.get("amortisation_gap")
    if gap is not None:
        lines.append(
            f"amortisation gap of {gap.level} (β = {gap.beta:.3g}, {gap.steps} steps per row): "
            f"{gap.gain:+.3g} ± {gap.gain_error:.2g} nats per row, KL {gap.kl_before.sum():.3g} → "
            f"{gap.kl_after.sum():.3g} nats, revived {gap.revived}"
        )
    scale = report.probes.get("loss_scale")
    if scale is not None:
        lines.append(
            f"loss_fn's KL weight: β_eff = {scale.kl_weight:.4g} in the summed-ELBO convention "
            f"(gradient misfit {scale.misfit:.1%})"
        )
    return lines


def report_text(report: DiagnosisReport) -> str:
    """The headlines and warnings first, then each level, the probes and the likelihood."""
    lines = [f"DiagnosisReport(ε={report.epsilon:g}, δ={report.delta:g})"]
    for head, details in headlines(report):
        lines.append("  " + head)
        lines += ["    " + line for line in details]
    lines += ["  " + line for line in warning_lines(report)]
    lines += ["  " + _level_line(name, level) for name, level in report.levels.items()]
    lines += ["  " + line for line in probe_lines(report)]
    if report.iwae is not None:
        lines.append(
            f"  IWAE log-likelihood (K={report.iwae.samples}) {report.iwae.mean:.4g} "
            f"± {report.iwae.standard_error:.2g} nats"
        )
    return "\n".join(lines)


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" style="max-width:48%">'


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def _channel_table(level) -> str:
    """A grid level's table: per channel its KL, collapsed positions and aggregate posterior."""
    aggregate = level.aggregate_posterior() or {}
    channels = len(level.kl_per_channel)
    mean, std, prior = (
        aggregate.get(k) or [None] * channels for k in ("mean", "std", "kl_to_prior")
    )
    per_position = int(np.prod(level.position_shape))
    rows = "".join(
        f"<tr><td>{c}</td><td>{kl:.4g}</td><td>{collapsed} of {per_position}</td>"
        f"<td>{_number(m)}</td><td>{_number(s)}</td><td>{_number(p)}</td></tr>"
        for c, (kl, collapsed, m, s, p) in enumerate(
            zip(level.kl_per_channel, level.collapsed_per_channel, mean, std, prior, strict=True)
        )
    )
    return (
        "<table><tr><th>channel</th><th>mean KL</th><th>collapsed positions</th>"
        "<th>aggregate mean</th><th>aggregate std</th><th>KL to prior ≥</th></tr>"
        f"{rows}</table>"
    )


def report_html(report: DiagnosisReport) -> str:
    """The headlines, causes, fixes and warnings first; then per level a table of its
    dimensions, the probes, the likelihood and two plots."""
    parts = [
        '<div style="max-width:60em;overflow-wrap:anywhere">',
        f"<h4>Diagnosis (ε = {report.epsilon:g}, δ = {report.delta:g})</h4>",
    ]
    for head, details in headlines(report):
        items = "".join(f"<li>{html.escape(line)}</li>" for line in details)
        parts.append(f"<p><b>{html.escape(head)}</b></p><ul>{items}</ul>")
    for line in warning_lines(report):
        parts.append(f'<p style="color:#a40">{html.escape(line)}</p>')
    for name, level in report.levels.items():
        if level.is_grid:
            parts.append(f"<p>{html.escape(_level_line(name, level))}</p>{_channel_table(level)}")
            continue
        collapsed = set(level.collapsed_dims)
        stds = level.encoder_std.double().mean(0)
        rows = "".join(
            f"<tr><td>{i}</td><td>{kl:.4g}</td><td>{float(var):.4g}</td>"
            f"<td>{float(stds[i]):.4g}</td><td>{'collapsed' if i in collapsed else 'active'}"
            "</td></tr>"
            for i, (kl, var) in enumerate(zip(level.kl_per_dim, level.mean_variance, strict=True))
        )
        parts.append(
            f"<p>{html.escape(_level_line(name, level))}</p><table><tr><th>dim</th>"
            "<th>mean KL</th><th>Var E[z|x]</th><th>mean σ</th><th>state</th></tr>"
            f"{rows}</table>"
        )
    parts += [f"<p>{html.escape(line)}</p>" for line in probe_lines(report)]
    if report.iwae is not None:
        parts.append(
            f"<p>IWAE log-likelihood (K = {report.iwae.samples}): {report.iwae.mean:.4g} ± "
            f"{report.iwae.standard_error:.2g} nats</p>"
        )
    parts.append(_png(plot_collapse_curves({"model": report})) + _png(plot_kl_bars(report)))
    if any(has_kl_map(level) for level in report.levels.values()):
        parts.append(_png(plot_kl_map(report)))
    parts.append("</div>")
    return "".join(parts)


def report_dataframe(report: DiagnosisReport):
    """A pandas DataFrame, one row per (level, dimension)."""
    try:
        import pandas
    except ImportError:
        message = f"to_dataframe() needs pandas, which is not installed: {NOTEBOOK_EXTRA}."
        raise InputError(message) from None
    rows = []
    for name, level in report.levels.items():
        collapsed = set(level.collapsed_dims)
        stds = level.encoder_std.double().mean(0)
        for i, kl in enumerate(level.kl_per_dim):
            rows.append(
                {
                    "level": name,
                    "dimension": i,
                    "mean_kl": float(kl),
                    "mean_variance": float(level.mean_variance[i]),
                    "mean_std": float(stds[i]),
                    "collapsed": i in collapsed,
                    "active_unit": float(level.mean_variance[i]) > AU_THRESHOLD,
                }
            )
    return pandas.DataFrame(rows)
