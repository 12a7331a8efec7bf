"""``vaecollapse theory``: the linear model's optimum and collapse thresholds for a data set."""

from __future__ import annotations

import click
import numpy as np

from ..errors import InputError
from ..theory import MODELS, Prediction, Spectrum, phase_table, predict
from .common import data_loading_options, make_spec, print_json


def parse_list(text: str, option: str) -> list[float]:
    """ "0.5,1,2" -> [0.5, 1.0, 2.0]; every value must be a positive number."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise InputError(
            f"{option} takes a comma-separated list of numbers; got '{text}'."
        ) from None
    if any(not v > 0 for v in values):
        raise InputError(f"{option} values must be positive; got {values}.")
    return values


def parse_sigma(text: str | None, option: str) -> float | list[float] | None:
    """A fixed std: "0.5" -> 0.5, "0.5,1" -> [0.5, 1.0]; absent (None) means learnable."""
    if text is None:
        return None
    values = parse_list(text, option)
    return values[0] if len(values) == 1 else values


@click.command()
@click.option("--model", type=click.Choice(MODELS), required=True)
@click.option(
    "--dataset", "dataset_name", help="mnist, mnist-quadrant, digits, digits-quadrant ..."
)
@click.option("--data", "data_file", type=click.Path(dir_okay=False), help=".npy or .npz file.")
@data_loading_options
@click.option("--latent-dim", type=click.IntRange(min=1), required=True, help="d (d1 for mhvae).")
@click.option("--latent-dim2", type=click.IntRange(min=1), help="d2 for mhvae (default: d1).")
@click.option("--beta", type=float, help="β (vae, cvae).")
@click.option("--beta1", type=float, help="β1 (mhvae).")
@click.option("--beta2", type=float, help="β2 (mhvae).")
@click.option("--eta-enc", type=float, default=1.0, show_default=True, help="prior std η_enc.")
@click.option("--eta-dec", type=float, default=1.0, show_default=True, help="decoder std η_dec.")
@click.option("--sigma", help="fixed encoder std: one value or a comma list (absent: learnable).")
@click.option("--sigma1", help="mhvae: fixed std of Σ1 (absent: learnable).")
@click.option("--sigma2", help="mhvae: fixed std of Σ2 (absent: learnable).")
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
    model: str,
    dataset_name: str | None,
    data_file: str | None,
    data_dir: str | None,
    digits: tuple[int, ...],
    view: str | None,
    center: bool,
    no_verify: bool,
    latent_dim: int,
    latent_dim2: int | None,
    beta: float | None,
    beta1: float | None,
    beta2: float | None,
    eta_enc: float,
    eta_dec: float,
    sigma: str | None,
    sigma1: str | None,
    sigma2: str | None,
    solver: str | None,
    phase_betas: str | None,
    phase_eta_decs: str | None,
    as_json: bool,
) -> None:
    """Predict which latent dimensions of a linear MODEL collapse on a data set, and why."""
    if (dataset_name is None) == (data_file is None):
        raise click.UsageError("give exactly one of --dataset NAME or --data FILE.")
    if model == "mhvae":
        if beta is not None or sigma is not None:
            raise click.UsageError("mhvae takes --beta1/--beta2 and --sigma1/--sigma2.")
        b1, b2 = beta1 if beta1 is not None else 1.0, beta2 if beta2 is not None else 1.0
        s1, s2 = parse_sigma(sigma1, "--sigma1"), parse_sigma(sigma2, "--sigma2")
    else:
        if beta1 is not None or beta2 is not None or sigma1 or sigma2 or latent_dim2:
            raise click.UsageError(f"{model} takes --beta and --sigma, not the mhvae options.")
        b1, b2, s1, s2 = beta if beta is not None else 1.0, 1.0, parse_sigma(sigma, "--sigma"), None
    dataset = make_spec(dataset_name or data_file, data_dir, digits, view, center, no_verify).load()
    prediction = predict(
        model,
        dataset,
        latent_dim,
        latent_dim2=latent_dim2,
        beta=b1,
        beta2=b2,
        eta_enc=eta_enc,
        eta_dec=eta_dec,
        sigma=s1,
        sigma2=s2,
        solver=solver,
    )
    phase = None
    if phase_betas or phase_eta_decs:
        if model == "mhvae":
            raise click.UsageError("--phase-betas is for vae and cvae.")
        betas = parse_list(phase_betas, "--phase-betas") if phase_betas else [b1]
        etas = parse_list(phase_eta_decs, "--phase-eta-decs") if phase_eta_decs else [eta_dec]
        spectrum = prediction_spectrum(prediction)
        table = phase_table(spectrum, latent_dim, betas, etas, eta_enc=eta_enc, sigma=s1)
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
    return Spectrum(
        np.asarray(opt.theta, dtype=np.float64), "cvae" if opt.model == "cvae" else "vae"
    )


def format_phase(phase: dict) -> str:
    lines = ["active dimensions by eta_dec (rows) and beta (columns)"]
    lines.append(f"{'eta_dec':>9}  " + "  ".join(f"{b:>7.4g}" for b in phase["betas"]))
    for eta, row in zip(phase["eta_decs"], phase["active_dims"], strict=True):
        lines.append(f"{eta:>9.4g}  " + "  ".join(f"{n:>7d}" for n in row))
    return "\n".join(lines)


def format_prediction(prediction: Prediction, dataset_name: str) -> str:
    opt = prediction.optimum
    lines = [f"{opt.model.upper()} on {dataset_name}: {opt.method}"]
    hyper = opt.hyper
    lines.append(
        f"betas {hyper['betas']}  eta_enc {hyper['eta_enc']}  eta_dec {hyper['eta_dec']}  "
        f"latent {hyper['latent_dims']}  sigma {hyper['sigmas']}"
    )
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
        keys = (
            ["beta2", "eta_dec", "beta1", "sigma1"] if opt.model == "mhvae" else ["beta", "eta_dec"]
        )
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
        what = "z2 mode" if opt.model == "mhvae" else "mode"
        lines.append(
            f"starred columns: the value (others held) at which that {what} collapses"
            + ("; it collapses BELOW beta1* and sigma1*." if opt.model == "mhvae" else ".")
        )
    lines += [f"note: {n}" for n in opt.notes]
    return "\n".join(lines)
