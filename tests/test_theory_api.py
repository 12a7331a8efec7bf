"""Thresholds, what-ifs, phase tables, degenerate inputs and the `theory` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vaecollapse.core.data import gaussian_with_spectrum, load_dataset
from vaecollapse.core.errors import InputError
from vaecollapse.core.theory import (
    collapse_thresholds,
    cvae_spectrum,
    largest_beta_keeping,
    largest_eta_dec_keeping,
    phase_table,
    predict,
    vae_closed_form,
    vae_spectrum,
)


@pytest.fixture(scope="module")
def spectrum():
    return vae_spectrum(gaussian_with_spectrum(50, [16.0, 4.0, 1.0, 0.25], seed=0, exact=True))


def test_thresholds_are_where_the_closed_form_switches(spectrum) -> None:
    rows = collapse_thresholds(spectrum, 4, beta=2.0)
    assert [r["beta"] for r in rows] == pytest.approx([16.0, 4.0, 1.0, 0.25])
    for row in rows:
        below = vae_closed_form(spectrum, 4, beta=row["beta"] * 0.99).active_dims["z"]
        above = vae_closed_form(spectrum, 4, beta=row["beta"] * 1.01).active_dims["z"]
        assert below == above + 1
        eta_below = vae_closed_form(spectrum, 4, beta=2.0, eta_dec=row["eta_dec"] * 0.99)
        eta_above = vae_closed_form(spectrum, 4, beta=2.0, eta_dec=row["eta_dec"] * 1.01)
        assert eta_below.active_dims["z"] == eta_above.active_dims["z"] + 1


def test_fixed_sigma_thresholds(spectrum) -> None:
    rows = collapse_thresholds(spectrum, 2, beta=1.0, sigma=[2.0, 0.5])
    # θ = 4, 2 meet the sorted stds 0.5, 2: thresholds β = (θ/σ')²
    assert [r["beta"] for r in rows] == pytest.approx([64.0, 1.0])
    assert [r["sigma"] for r in rows] == pytest.approx([4.0, 2.0])


def test_largest_keeping_and_phase_table(spectrum) -> None:
    assert largest_beta_keeping(2, spectrum, 4) == pytest.approx(4.0)
    assert largest_eta_dec_keeping(1, spectrum, 4, beta=4.0) == pytest.approx(2.0)
    table = phase_table(spectrum, 4, betas=[0.1, 2.0, 10.0], eta_decs=[0.5, 1.0])
    assert table.shape == (2, 3)
    for i, eta in enumerate([0.5, 1.0]):
        for j, beta in enumerate([0.1, 2.0, 10.0]):
            expected = vae_closed_form(spectrum, 4, beta=beta, eta_dec=eta).active_dims["z"]
            assert table[i, j] == expected
    with pytest.raises(InputError):
        largest_beta_keeping(5, spectrum, 4)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"beta": 0.0},
        {"beta": -1.0},
        {"eta_dec": 0.0},
        {"eta_enc": -2.0},
        {"sigma": 0.0},
        {"sigma": [1.0, -1.0, 1.0, 1.0]},
        {"sigma": [1.0, 2.0]},
        {"beta": float("nan")},
    ],
)
def test_bad_hyper_parameters(spectrum, kwargs) -> None:
    with pytest.raises(InputError):
        vae_closed_form(spectrum, 4, **kwargs)


def test_degenerate_data(spectrum) -> None:
    wide = vae_closed_form(spectrum, 7, beta=0.5)  # more latents than data dimensions
    assert wide.singular_values["U"].shape == (7,) and wide.active_dims["z"] == 3
    x = np.zeros((30, 5))
    x[:, :2] = np.random.default_rng(0).standard_normal((30, 2))  # zero-variance pixels
    theta = vae_spectrum(x).values
    assert theta.shape == (5,) and np.all(theta[2:] == 0)
    y = np.random.default_rng(1).standard_normal((30, 3))
    assert cvae_spectrum(x, y).values.shape == (3,)  # singular A: pseudo-inverse
    with pytest.raises(InputError):
        vae_closed_form(spectrum, 0)


def test_predict_rejects_wrong_pairing() -> None:
    with pytest.raises(InputError, match="paired"):
        predict("cvae", load_dataset("digits"), 4)
    with pytest.raises(InputError, match="flat view"):
        predict("vae", load_dataset("digits-quadrant"), 4)


def test_cli_json_vae_fixed_and_learnable(run_cli) -> None:
    result = run_cli(
        "theory",
        "--model",
        "vae",
        "--dataset",
        "digits",
        "--latent-dim",
        "5",
        "--beta",
        "4",
        "--json",
    )
    assert result.code == 0, result.err
    out = json.loads(result.out)
    theta = out["theta"]
    assert theta == sorted(theta, reverse=True) and len(theta) == 64
    assert len(out["singular_values"]["U"]) == 5 and len(out["singular_values"]["V"]) == 5
    assert out["active_dims"] == sum(t > 2.0 for t in theta[:5])
    assert len(out["encoder_std"]) == 5 and isinstance(out["loss"], float)
    fixed = json.loads(
        run_cli(
            "theory",
            "--model",
            "vae",
            "--dataset",
            "digits",
            "--latent-dim",
            "5",
            "--beta",
            "4",
            "--sigma",
            "1",
            "--json",
        ).out
    )
    assert fixed["method"].startswith("closed form (Theorem 1")


def test_cli_cvae_numeric_matches_closed(run_cli) -> None:
    args = [
        "theory",
        "--model",
        "cvae",
        "--dataset",
        "digits-quadrant",
        "--latent-dim",
        "4",
        "--beta",
        "0.5",
        "--json",
    ]
    closed = json.loads(run_cli(*args).out)
    numeric = json.loads(run_cli(*args, "--solver", "numeric").out)
    assert numeric["loss"] == pytest.approx(closed["loss"], rel=1e-8)
    assert np.allclose(numeric["singular_values"]["U1"], closed["singular_values"]["U1"], atol=1e-4)


def test_cli_mhvae_and_user_file(run_cli, tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", gaussian_with_spectrum(40, [9.0, 4.0, 1.0], seed=1))
    result = run_cli(
        "theory",
        "--model",
        "mhvae",
        "--dataset",
        str(tmp_path / "x.npy"),
        "--latent-dim",
        "2",
        "--betas",
        "1,1",
        "--encoder-variances",
        "fixed,shared",
        "--sigma",
        "0.5",
        "--json",
    )
    assert result.code == 0, result.err
    out = json.loads(result.out)
    assert set(out["active_dims"]) == {"z1", "z2"} and "V1" in out["singular_values"]
    assert "U2" in out["singular_values"] and out["encoder_std_level"] == "z2"


@pytest.mark.parametrize(
    "args",
    [
        ["--model", "vae", "--dataset", "digits", "--latent-dim", "3", "--beta", "-1"],
        ["--model", "vae", "--dataset", "digits", "--latent-dim", "3", "--sigma", "0"],
        ["--model", "vae", "--dataset", "digits", "--latent-dim", "3", "--sigma", "a,b"],
        ["--model", "vae", "--latent-dim", "3"],
        ["--model", "cvae", "--dataset", "digits", "--latent-dim", "3"],
        ["--model", "mhvae", "--dataset", "digits", "--latent-dim", "3", "--solver", "closed"],
        ["--model", "vae", "--dataset", "digits", "--latent-dim", "0"],
    ],
)
def test_cli_bad_input_exit_2(run_cli, args) -> None:
    result = run_cli("theory", *args)
    assert result.code == 2 and "Traceback" not in result.err


def test_cli_phase_table(run_cli) -> None:
    args = [
        "theory",
        "--model",
        "vae",
        "--dataset",
        "digits",
        "--latent-dim",
        "6",
        "--phase-betas",
        "0.5,2,8",
        "--phase-eta-decs",
        "0.5,1",
        "--json",
    ]
    out = json.loads(run_cli(*args).out)
    theta = np.array(out["theta"][:6])
    for i, eta in enumerate([0.5, 1.0]):
        for j, beta in enumerate([0.5, 2.0, 8.0]):
            assert out["phase"]["active_dims"][i][j] == int(np.sum(theta > np.sqrt(beta) * eta))
    assert (
        run_cli(
            "theory",
            "--model",
            "vae",
            "--dataset",
            "digits",
            "--latent-dim",
            "2",
            "--phase-betas",
            "1,-1",
        ).code
        == 2
    )


def test_spectra_from_names_and_datasets() -> None:
    digits = load_dataset("digits")
    assert np.allclose(vae_spectrum("digits").values, vae_spectrum(digits.train.x).values)
    quadrant = load_dataset("digits-quadrant")
    by_name = cvae_spectrum("digits-quadrant").values
    assert np.allclose(by_name, cvae_spectrum(quadrant.train.x, quadrant.train.y).values)
    with pytest.raises(InputError, match="paired"):
        cvae_spectrum("digits")
