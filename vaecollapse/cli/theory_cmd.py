"""``vaecollapse theory``: the linear model's optimum and collapse thresholds for a data set."""

from __future__ import annotations

from typing import Any

import click
import numpy as np

from vaecollapse.cli.common import data_options, print_json
from vaecollapse.core.data import DataSpec
from vaecollapse.core.families import model_family
from vaecollapse.core.models.factory import Family, family_settings, model_config
from vaecollapse.core.models.mhvae import MHVAEConfig
from vaecollapse.core.models.vae import VAEConfig
from vaecollapse.core.options import (
    LIST,
    Setting,
    command_options,
    from_command_line,
    split_settings,
)
from vaecollapse.core.theory import Prediction, Spectrum, phase_table, predict_for_config
from vaecollapse.core.theory.degeneracy import OBSERVED, PATH_SCALES, UNBOUNDED

THEORY_SETTINGS = (
    "latent_dim", "latent_dims", "beta", "betas", "eta_enc", "eta_dec", "encoder_variance",
    "encoder_variances", "sigma", "sigmas", "delta_rate",
)  # fmt: skip
POSITIVE_LIST = Setting(float, "", low=0, low_open=True, shape=LIST)


@click.command()
@command_options(Family)
@data_options
@command_options(VAEConfig, MHVAEConfig, only=THEORY_SETTINGS)
@click.option(
    "--solver",
    type=click.Choice(["closed", "numeric"]),
    default=None,
    help="closed form (default where one exists) or the exact numeric solver.",
)
@click.option("--phase-betas", help="vae/cvae: comma list of β for a phase table of active dims.")
@click.option("--phase-eta-decs", help="η_dec values for the phase table (default: --eta-dec).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def theory(
    solver: str | None,
    phase_betas: str | None,
    phase_eta_decs: str | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """Predict which latent dimensions of a linear model collapse on a data set, and why.

    The model settings are those of `vaecollapse train` (linear backbone): a level's encoder
    variance is fixed where it is `fixed` (the default where a sigma is given) and learnable
    otherwise."""
    settings = from_command_line(flags, Family, DataSpec, VAEConfig, MHVAEConfig)
    family = Family(**split_settings(settings, Family)).model
    if "dataset" not in settings:
        raise click.UsageError("--dataset is required: a data set name or a .npy/.npz file.")
    model_settings = family_settings(
        family, {k: v for k, v in settings.items() if k in THEORY_SETTINGS}
    )
    dataset = DataSpec(**split_settings(settings, DataSpec)).load()
    config = model_config(family, dataset, **model_settings)
    prediction = predict_for_config(config, dataset, solver=solver)
    phase = None
    if phase_betas or phase_eta_decs:
        if model_family(family).hierarchical:
            raise click.UsageError("--phase-betas is for vae and cvae.")
        betas = _positive_list(phase_betas, "--phase-betas") or [config.beta]
        etas = _positive_list(phase_eta_decs, "--phase-eta-decs") or [config.eta_dec]
        spectrum = prediction_spectrum(prediction)
        sigma = config.sigma if config.encoder_variance == "fixed" else None
        table = phase_table(
            spectrum, config.latent_dim, betas, etas, eta_enc=config.eta_enc, sigma=sigma
        )
        phase = {"betas": betas, "eta_decs": etas, "active_dims": table.tolist()}
    label = dataset.name + ("-quadrant" if dataset.view == "quadrant" else "")
    if as_json:
        out = prediction.to_json()
        out["dataset"] = label
        out["phase"] = phase
        print_json(out)
        return
    click.echo(format_prediction(prediction, label))
    if phase:
        click.echo("")
        click.echo(format_phase(phase))


def prediction_spectrum(prediction: Prediction) -> Spectrum:
    opt = prediction.optimum
    conditional = model_family(opt.model).conditional
    return Spectrum(np.asarray(opt.theta, dtype=np.float64), conditional=conditional)


def format_phase(phase: dict) -> str:
    lines = ["active dimensions by eta_dec (rows) and beta (columns)"]
    lines.append(f"{'eta_dec':>9}  " + "  ".join(f"{b:>7.4g}" for b in phase["betas"]))
    for eta, row in zip(phase["eta_decs"], phase["active_dims"], strict=True):
        lines.append(f"{eta:>9.4g}  " + "  ".join(f"{n:>7d}" for n in row))
    return "\n".join(lines)


def format_prediction(prediction: Prediction, dataset_name: str) -> str:
    opt = prediction.optimum
    hierarchical = model_family(opt.model).hierarchical
    lines = [f"{opt.model.upper()} on {dataset_name}: {opt.method}"]
    hyper = opt.hyper
    lines.append(
        f"betas {hyper['betas']}  eta_enc {hyper['eta_enc']}  eta_dec {hyper['eta_dec']}  "
        f"latent {hyper['latent_dims']}  sigma {hyper['sigmas']}"
    )
    if opt.degeneracy is not None:
        lines += degeneracy_lines(opt)
    else:
        active = ", ".join(
            f"{k}: {v}/{d}"
            for (k, v), d in zip(opt.active_dims.items(), hyper["latent_dims"], strict=True)
        )
        lines.append(f"active dimensions  {active}")
        lines.append(f"loss (negative beta-ELBO per sample, nats)  {opt.loss:.6g}")
    lines.append("")
    maps = list(opt.singular_values)
    # Threshold columns: β*, η_dec* per mode for VAE/CVAE; β2*, η_dec*, β1* per z2 mode for MHVAE.
    keys = []
    if prediction.thresholds:
        keys = ["beta2", "eta_dec", "beta1", "sigma1"] if hierarchical else ["beta", "eta_dec"]
    header = f"{'mode':>4}  {'theta':>9}  " + "  ".join(f"{m:>9}" for m in maps)
    header += "  " + "  ".join(f"{'std ' + k:>9}" for k in opt.encoder_std)
    if keys:
        header += f"  {'active':>6}  " + "  ".join(f"{k + '*':>9}" for k in keys)
    lines.append(header)

    def cell(values, i: int) -> str:
        return f"{values[i]:>9.4g}" if i < len(values) else f"{'':>9}"

    for i in range(max(len(v) for v in opt.singular_values.values())):
        theta = opt.theta[i] if i < len(opt.theta) else 0.0
        row = f"{i + 1:>4}  {theta:>9.4g}  " + "  ".join(
            cell(opt.singular_values[m], i) for m in maps
        )
        row += "  " + "  ".join(cell(v, i) for v in opt.encoder_std.values())
        if keys and i < len(prediction.thresholds):
            t = prediction.thresholds[i]
            row += f"  {'yes' if t['active'] else 'no':>6}  " + "  ".join(
                f"{t[k]:>9.4g}" for k in keys
            )
        lines.append(row)
    if keys:
        lines.append("")
        what = "z2 mode" if hierarchical else "mode"
        lines.append(
            f"starred columns: the value (others held) at which that {what} collapses"
            + ("; it collapses BELOW beta1* and sigma1*." if hierarchical else ".")
        )
    lines += [f"note: {n}" for n in opt.notes]
    return "\n".join(lines)


def degeneracy_lines(opt) -> list[str]:
    """What the text output says instead of active counts when there is no unique optimum."""
    degeneracy = opt.degeneracy
    scales = ", ".join(f"{a:g}" for a in PATH_SCALES)
    losses = ", ".join(f"{v:.6g}" for v in opt.path_losses or ())
    if degeneracy.status == UNBOUNDED:
        lines = [
            "status  UNBOUNDED: the objective has no minimum, so no dimension count is predicted.",
            f"  the loss falls without bound as we {degeneracy.direction}.",
            f"  along that path L = {losses} at a = {scales}; the solver stopped at "
            f"{opt.loss:.6g}, which is not an optimum.",
        ]
    else:
        lines = [
            "status  NON-UNIQUE: a continuum of optima with the same loss; the active counts "
            "depend on the solver's start and are not predicted.",
            f"  the flat direction: {degeneracy.direction}."
            if degeneracy.path != OBSERVED
            else f"  seen by the solver: {degeneracy.direction}.",
            f"  loss (negative beta-ELBO per sample, nats)  {opt.loss:.6g}",
            "  identified at every optimum: " + ", ".join(degeneracy.identified),
        ]
        lines += [
            f"  singular values of {name}  " + " ".join(f"{v:.4g}" for v in values)
            for name, values in opt.invariants.items()
        ]
    lines.append(
        "  the maps below are where the solver stopped (docs/theory.md: objectives without a "
        "unique optimum)."
    )
    return lines


def _positive_list(text: str | None, flag: str) -> list[float] | None:
    if text is None:
        return None
    return list(POSITIVE_LIST.check(flag, POSITIVE_LIST.parse(flag, text)))
