"""How a DiagnosisReport shows itself: a short text summary (``repr``), HTML with tables and
inline plots (Jupyter), and a pandas table of every dimension."""

from __future__ import annotations

import base64
import html
import io

from ..errors import InputError
from .metrics import AU_THRESHOLD
from .plots import plot_collapse_curves, plot_kl_bars
from .report import DiagnosisReport

NOTEBOOK_EXTRA = "pip install 'vaecollapse[notebook]'  (or: pip install pandas)"


def _level_line(name: str, level) -> str:
    d = level.latent_dim
    line = (
        f"{name}: {d} dims, KL {level.kl_total:.4g} nats, {len(level.collapsed_dims)} "
        f"(ε,δ)-collapsed {level.collapsed_dims}, AU {level.active_units}/{d}"
    )
    if level.mutual_information is not None:
        line += f", I(x;{name}) {level.mutual_information[0]:.3g} nats"
    return line


def report_text(report: DiagnosisReport) -> str:
    """A few lines: the criteria, each level, the likelihood and the verdict."""
    lines = [f"DiagnosisReport(ε={report.epsilon:g}, δ={report.delta:g})"]
    lines += ["  " + _level_line(name, level) for name, level in report.levels.items()]
    if report.iwae is not None:
        lines.append(
            f"  IWAE log-likelihood (K={report.iwae.samples}) {report.iwae.mean:.4g} "
            f"± {report.iwae.standard_error:.2g} nats"
        )
    if report.verdict:
        lines.append(f"  verdict: {report.verdict['summary']}")
    return "\n".join(lines)


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" style="max-width:48%">'


def report_html(report: DiagnosisReport) -> str:
    """Per level a table of its dimensions, then the likelihood, the verdict and two plots."""
    parts = [f"<h4>Diagnosis (ε = {report.epsilon:g}, δ = {report.delta:g})</h4>"]
    for name, level in report.levels.items():
        collapsed = set(level.collapsed_dims)
        stds = level.encoder_std.double().mean(0)
        rows = "".join(
            f"<tr><td>{i}</td><td>{kl:.4g}</td><td>{float(var):.4g}</td>"
            f"<td>{float(stds[i]):.4g}</td><td>{'collapsed' if i in collapsed else 'active'}"
            "</td></tr>"
            for i, (kl, var) in enumerate(zip(level.kl_per_dim, level.mean_variance, strict=True))
        )
        parts.append(
            f"<p><b>{html.escape(_level_line(name, level))}</b></p><table><tr><th>dim</th>"
            "<th>mean KL</th><th>Var E[z|x]</th><th>mean σ</th><th>state</th></tr>"
            f"{rows}</table>"
        )
    if report.iwae is not None:
        parts.append(
            f"<p>IWAE log-likelihood (K = {report.iwae.samples}): {report.iwae.mean:.4g} ± "
            f"{report.iwae.standard_error:.2g} nats</p>"
        )
    if report.verdict:
        findings = "".join(
            f"<li>{html.escape(f['level'])}, {f['dims']} dim(s): {html.escape(f['cause'])}: "
            f"{html.escape(f['explanation'])}</li>"
            for f in report.verdict["findings"]
        )
        parts.append(f"<p>Verdict: {html.escape(report.verdict['summary'])}</p><ul>{findings}</ul>")
    parts.append(_png(plot_collapse_curves({"model": report})) + _png(plot_kl_bars(report)))
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
