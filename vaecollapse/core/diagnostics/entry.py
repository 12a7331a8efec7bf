"""``diagnose``: the full diagnosis of any VAE on the user's data — the report, the probes that
need only the model and the data, the guards against misreading it, and the verdict with a cause
and a fix for every collapsed dimension."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from vaecollapse.core.adapters import (
    DiffusersAutoencoder,
    EncoderModel,
    as_latent_model,
    as_tensor_data,
)
from vaecollapse.core.diagnostics.loss_scale import loss_scale
from vaecollapse.core.diagnostics.misreadings import misreadings, warn
from vaecollapse.core.diagnostics.probes import PROBE_ROWS, amortisation_gap, decoder_usage
from vaecollapse.core.diagnostics.report import DiagnosisReport, _check_settings, diagnose_model
from vaecollapse.core.diagnostics.verdict import Objective, explain, user_findings, verdict
from vaecollapse.core.errors import InputError
from vaecollapse.core.protocol import LatentModel
from vaecollapse.core.theory import vae_spectrum

SPECTRUM_WIDTH = 4096  # rows wider than this get no data spectrum (its D × D moment is too big)


def _has_likelihood(latent: LatentModel) -> bool:
    return not (
        isinstance(latent, EncoderModel)
        and latent.decoder is None
        and latent._log_likelihood is None
    )


def _probe_rows(n: int) -> torch.Tensor:
    """A fixed, seeded subset of PROBE_ROWS row indices (all rows of a smaller set), in order."""
    if n <= PROBE_ROWS:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(0))[:PROBE_ROWS].sort().values


def _check_beta(beta: float | None) -> None:
    if beta is not None and not (
        isinstance(beta, (int, float)) and math.isfinite(beta) and beta > 0
    ):
        raise InputError(
            f"beta must be a finite number > 0 (the KL weight trained with); got {beta!r}."
        )


def diagnose(
    model: Any,
    data: Any,
    y: Any = None,
    *,
    eta_enc: float = 1.0,
    epsilon: float = 0.01,
    delta: float = 0.05,
    batch_size: int = 1024,
    iwae_k: int = 0,
    beta: float | None = None,
    loss_fn: Callable[[Any, torch.Tensor], Any] | None = None,
    probes: bool = True,
    **adapter: Any,
) -> DiagnosisReport:
    """Diagnose ANY VAE on ``data`` (a tensor ``(N, ...)``, a TensorDataset or a DataLoader):
    every latent level's KL per dimension, (ε,δ)-collapse, active units and mutual information,
    with ``iwae_k`` > 0 the importance-weighted log-likelihood, and a verdict naming each
    collapsed dimension's cause (a ``code``) and its fix.

    ``model``: one of this toolkit's models, anything following the latent-model protocol, a
    pythae model, or a user's encoder (a function or module, or a module with ``encode``/
    ``encoder``) returning ``(mean, logvar)``, ``(loc, scale)`` (``encoder_output="scale"``) or
    a ``Normal``, compared with the prior N(0, eta_enc² I). ``adapter``: how to read a user's
    model (``vaecollapse.core.adapters.EncoderModel``): ``encoder_output``, ``decoder`` with
    ``likelihood`` ("gaussian" with ``eta_dec``, or "bernoulli" with ``decoder_output`` "logits"
    or "probabilities") or ``decoder_log_likelihood(x, z)`` -> log p(x | z) ``(K, B)`` for ``z``
    ``(K, B, d)``; without either, a model's own ``decode`` method or ``decoder`` attribute is
    used where it maps codes to the data's shape (read as Bernoulli probabilities when its
    outputs and the data lie in [0, 1], else as a Gaussian mean; ``settings["decoder"]`` says
    which). With a likelihood, ``probes`` runs the decoder-usage and amortisation-gap
    probes (on a fixed subset of PROBE_ROWS rows). ``beta``: the KL weight the model was trained
    with, which (with ``eta_dec``, or η_dec estimated from the residuals) gives the linear
    threshold's cause and fix; ``loss_fn(model, batch)``: the training loss, whose KL weight is
    measured from its gradients (``batch``: rows of ``data`` as a tensor)."""
    _check_settings(epsilon, delta, eta_enc)
    _check_beta(beta)
    if loss_fn is not None and not callable(loss_fn):
        raise InputError(
            f"loss_fn must be a function loss_fn(model, batch); got a {type(loss_fn).__name__}."
        )
    latent = as_latent_model(model, eta_enc=eta_enc, **adapter)
    x = as_tensor_data(data)
    targets = None if y is None else as_tensor_data(y)
    chosen = _probe_rows(x.shape[0])
    found_decoder = None
    if isinstance(latent, EncoderModel):
        found_decoder = latent.adopt_found_decoder(x[chosen], "likelihood" in adapter)
    report = diagnose_model(
        latent, x, targets, epsilon=epsilon, delta=delta, iwae_k=iwae_k, batch_size=batch_size
    )
    rows_x, rows_y = x[chosen], None if targets is None else targets[chosen]
    measured: dict[str, Any] = {}
    one_level = len(report.levels) == 1
    if probes and _has_likelihood(latent):
        measured["decoder_usage"] = decoder_usage(latent, rows_x, rows_y)
    if loss_fn is not None:
        measured["loss_scale"] = loss_scale(latent, loss_fn, model, x)
    scale = measured.get("loss_scale")
    trained_beta = beta
    if trained_beta is None and scale is not None and scale.kl_weight > 0:
        trained_beta = scale.kl_weight
    if probes and one_level and _has_likelihood(latent):
        measured["amortisation_gap"] = amortisation_gap(
            latent, rows_x, rows_y, beta=trained_beta or 1.0, epsilon=epsilon, delta=delta
        )
    usage = measured.get("decoder_usage")
    residual = None if usage is None else usage.residual_std
    report.warnings = misreadings(latent, rows_x, residual, eta_stated="eta_dec" in adapter)
    warn(report.warnings)
    report.probes = measured
    stated = {k: v for k, v in adapter.items() if isinstance(v, (str, int, float))}
    report.settings = {"beta": beta, "eta_enc": eta_enc, "loss_fn": loss_fn is not None, **stated}
    if found_decoder is not None:
        report.settings["decoder"] = found_decoder
    owner = getattr(getattr(latent, "encoder", None), "__self__", None)
    if isinstance(owner, DiffusersAutoencoder) and owner.scaling_factor is not None:
        report.settings["scaling_factor"] = owner.scaling_factor
    if hasattr(latent, "config"):
        report.verdict = explain(report, latent, data=x, targets=targets, probes=measured)
        return report
    objective = _stated_objective(latent, trained_beta, eta_enc, adapter, measured, beta)
    flat = x.reshape(x.shape[0], -1)
    spectrum = vae_spectrum(flat.double(), center=True) if flat.shape[1] <= SPECTRUM_WIDTH else None
    widths = {"data": flat.shape[1], "latent": next(iter(report.levels.values())).latent_dim,
              "rows": 0 if scale is None else scale.rows}  # fmt: skip
    findings = []
    if one_level:
        findings = user_findings(
            report, measured, objective=objective, spectrum=spectrum,
            intended_beta=beta or 1.0, widths=widths,
            missing=_threshold_missing(trained_beta, objective, spectrum),
        )  # fmt: skip
    report.verdict = verdict(report, findings)
    return report


def _stated_objective(
    latent: LatentModel,
    trained_beta: float | None,
    eta_enc: float,
    adapter: dict,
    measured: dict,
    stated_beta: float | None,
) -> Objective | None:
    """β and η_dec for the linear threshold, and where each was read: β as stated or measured
    from ``loss_fn``; η_dec as stated, the adapter's (which ``loss_fn``'s β_eff is relative to)
    or estimated from the residuals. None where either is unknown or the decoder is not
    Gaussian."""
    if trained_beta is None or not isinstance(latent, EncoderModel):
        return None
    if latent.likelihood != "gaussian" or latent.decoder is None:
        return None
    beta_source = "stated" if stated_beta is not None else "measured from loss_fn"
    usage = measured.get("decoder_usage")
    if "eta_dec" in adapter:
        eta, eta_source = latent.eta_dec, "stated"
    elif "loss_scale" in measured:
        eta, eta_source = latent.eta_dec, "the likelihood's"
    elif usage is not None and usage.residual_std:
        eta, eta_source = usage.residual_std, "estimated from the residuals"
    else:
        return None
    return Objective(trained_beta, eta_enc, eta, None,
                     source=f"β {beta_source}, η_dec {eta_source}")  # fmt: skip


def _threshold_missing(trained_beta, objective, spectrum) -> str:
    """What the linear threshold would need, in a sentence, where it could not run."""
    if objective is not None and spectrum is not None:
        return ""
    if trained_beta is None:
        return "State beta= (and eta_dec=) for the linear threshold's number."
    if spectrum is None:
        return f"Rows wider than {SPECTRUM_WIDTH} values get no linear threshold."
    return "The linear threshold's number needs a Gaussian decoder (decoder= with eta_dec=)."
