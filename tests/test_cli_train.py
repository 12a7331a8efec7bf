"""`vaecollapse train`: flags, validated configuration files, resume, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

BASE = [
    "train",
    "--dataset",
    "digits",
    "--backbone",
    "mlp",
    "--hidden",
    "16",
    "--latent-dim",
    "3",
    "--batch-size",
    "256",
]


def test_train_and_resume(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = run_cli(*BASE, "--epochs", "2", "--out", str(out))
    assert first.code == 0, first.err
    assert "trained 2 epochs" in first.out
    again = run_cli(*BASE, "--epochs", "3", "--out", str(out))
    assert again.code == 0 and "trained 3 epochs" in again.out
    assert "epoch 1/" not in again.err  # resumed, not restarted
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]


def test_toml_and_yaml_configs(run_cli, tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(
        'dataset = "digits"\nlatent-dim = 2\nepochs = 1\nbackbone = "linear"\n'
        'encoder_variance = "shared"\nbeta = 2\n'
    )
    result = run_cli("train", "--config", str(tmp_path / "c.toml"), "--out", str(tmp_path / "t"))
    assert result.code == 0, result.err
    stored = json.loads((tmp_path / "t" / "config.json").read_text())
    assert stored["model"]["beta"] == 2.0 and stored["model"]["encoder_variance"] == "shared"
    (tmp_path / "c.yaml").write_text("dataset: digits\nlatent_dim: 2\nepochs: 1\nlr: 0.01\n")
    result = run_cli(
        "train", "--config", str(tmp_path / "c.yaml"), "--epochs", "2", "--out", str(tmp_path / "y")
    )
    assert result.code == 0 and "trained 2 epochs" in result.out  # the flag overrides the file


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            'dataset = "digits"\nlatent_dim = 2\nlearning_rate = 0.1\n',
            "unknown setting 'learning_rate'",
        ),
        ('dataset = "digits"\nlatent_dim = "two"\n', "setting 'latent_dim' must be an integer"),
        ('dataset = "digits"\nlatent_dim = 2\nanalytic = 1\n', "'analytic' must be true or false"),
        ('dataset = "digits"\nlatent_dim = true\n', "setting 'latent_dim' must be an integer"),
        ("dataset = \n", "not valid TOML"),
    ],
)
def test_bad_config_files_exit_2(run_cli, tmp_path: Path, text: str, fragment: str) -> None:
    (tmp_path / "c.toml").write_text(text)
    result = run_cli("train", "--config", str(tmp_path / "c.toml"), "--out", str(tmp_path / "r"))
    assert result.code == 2 and fragment in " ".join(result.err.split())
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--dataset", "digits", "--out", "x"],  # no latent dim
        ["train", "--dataset", "digits", "--latent-dim", "2"],  # no --out
        ["train", "--dataset", "digits", "--latent-dim", "2", "--lr", "-1", "--out", "x"],
        ["train", "--dataset", "digits-quadrant", "--latent-dim", "2", "--out", "x"],
        [
            "train",
            "--dataset",
            "digits",
            "--latent-dim",
            "2",
            "--encoder-variance",
            "fixed",
            "--out",
            "x",
        ],
        ["train", "--model", "cvae", "--dataset", "digits", "--latent-dim", "2", "--out", "x"],
        ["train", "--model", "mhvae", "--dataset", "digits", "--latent-dims", "2,x", "--out", "x"],
        [
            "train",
            "--model",
            "vae",
            "--dataset",
            "digits",
            "--latent-dim",
            "2",
            "--betas",
            "3",
            "--out",
            "x",
        ],
        [
            "train",
            "--model",
            "mhvae",
            "--dataset",
            "digits",
            "--latent-dim",
            "2",
            "--encoder-variance",
            "fixed,shared,shared",
            "--sigma",
            "0.5",
            "--out",
            "x",
        ],
        ["train", "--backbone", "cnn", "--data", "missing.npz", "--latent-dim", "2", "--out", "x"],
        ["train", "--dataset", "digits", "--bounded-means", "--latent-dim", "2", "--out", "x"],
    ],
)
def test_bad_flags_exit_2(run_cli, tmp_path: Path, args: list[str], monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli(*args)
    assert result.code == 2 and "Traceback" not in result.err


@pytest.mark.parametrize(
    "args",
    [
        [
            "--model",
            "cvae",
            "--dataset",
            "digits-quadrant",
            "--backbone",
            "cnn",
            "--channels",
            "4,2",
            "--conditional-prior",
        ],
        [
            "--model",
            "mhvae",
            "--dataset",
            "digits",
            "--backbone",
            "mlp",
            "--hidden",
            "16",
            "--latent-dims",
            "3,2",
            "--encoder-variances",
            "fixed,amortized",
            "--sigma",
            "0.5",
            "--betas",
            "0.5,2",
            "--bounded-means",
        ],
        [
            "--model",
            "mhvae",
            "--dataset",
            "digits",
            "--levels",
            "3",
            "--encoder-variance",
            "shared",
            "--analytic",
            "--learn-eta-dec",
        ],
        [
            "--model",
            "vae",
            "--dataset",
            "digits",
            "--backbone",
            "mlp",
            "--hidden",
            "16",
            "--deterministic",
        ],
    ],
)
def test_every_family_trains_from_the_cli(run_cli, tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "run"
    common = ["--latent-dim", "3", "--epochs", "1", "--batch-size", "512", "--out", str(out)]
    result = run_cli("train", *args, *common)
    assert result.code == 0, result.err
    stored = json.loads((out / "config.json").read_text())
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    family = args[1]
    assert stored["model"]["family"] == family
    if family == "mhvae":
        levels = len(stored["model"]["latent_dims"] or []) or stored["model"]["levels"]
        assert set(record["kl"]) == {f"z{i + 1}" for i in range(levels)}
    if "--betas" in args:
        assert stored["model"]["betas"] == [0.5, 2.0]
        assert stored["model"]["encoder_variances"] == ["fixed", "amortized"]
        assert stored["model"]["bounded_means"] is True
    if "--deterministic" in args:
        assert record["kl"] == {}
