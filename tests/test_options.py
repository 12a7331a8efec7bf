"""The one declaration of every setting: domains reject what they must, values come back in one
normal form, and the command line, configuration files and docs/settings.md are derived from it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from vaecollapse.cli.settings_doc import settings_document
from vaecollapse.cli.train_cmd import SECTIONS, train_command
from vaecollapse.core.data import DataSpec
from vaecollapse.core.errors import InputError
from vaecollapse.core.models.mhvae import MHVAEConfig
from vaecollapse.core.models.vae import VAEConfig
from vaecollapse.core.options import LIST, SCALAR_OR_LIST, Setting, declared, read_settings_file
from vaecollapse.training.config import TrainConfig

from .conftest import REPO_ROOT

POSITIVE = Setting(float, "", low=0, low_open=True)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 0.0, -1.0, True, "1"])
def test_a_positive_scale_rejects_what_is_not_one(value) -> None:
    with pytest.raises(InputError, match=r"eta must be a finite number > 0"):
        POSITIVE.check("eta", value)


def test_values_come_back_in_one_normal_form() -> None:
    assert POSITIVE.check("eta", 2) == 2.0 and isinstance(POSITIVE.check("eta", 2), float)
    many = Setting(float, "", shape=SCALAR_OR_LIST, low=0, low_open=True)
    assert many.check("sigma", [0.5, 1]) == (0.5, 1.0)
    assert many.parse("--sigma", "0.5") == 0.5 and many.parse("--sigma", "0.5,1") == [0.5, 1.0]
    counts = Setting(int, "", low=1, shape=LIST)
    with pytest.raises(InputError, match="empty list"):
        counts.check("latent_dims", [])
    with pytest.raises(InputError, match="an integer ≥ 1"):
        counts.check("latent_dims", [3, 0])
    with pytest.raises(InputError, match="takes an integer"):
        counts.parse("--latent-dims", "3,x")
    share = Setting(float, "", low=0, high=1, high_open=True)
    assert share.check("delta", 0.0) == 0.0
    with pytest.raises(InputError, match="< 1"):
        share.check("delta", 1.0)


def test_the_api_checks_every_declared_field() -> None:
    with pytest.raises(InputError, match="eta_enc must be a finite number > 0; got nan"):
        VAEConfig(data_dim=4, latent_dim=2, eta_enc=math.nan)
    with pytest.raises(InputError, match="betas must be a list"):
        MHVAEConfig(data_dim=4, latent_dim=2, betas=(1.0, math.inf))
    with pytest.raises(InputError, match="samples must be an integer ≥ 1"):
        TrainConfig(samples=0)
    with pytest.raises(InputError, match="digits must be a list"):
        DataSpec(dataset="digits", digits=(-1,))
    assert MHVAEConfig(data_dim=4, latent_dim=2, latent_dims=[3, 2]).latent_dims == (3, 2)


def test_a_sigma_makes_the_variance_fixed_unless_the_variance_is_given() -> None:
    assert VAEConfig(data_dim=4, latent_dim=2, sigma=0.5).encoder_variance == "fixed"
    assert VAEConfig(data_dim=4, latent_dim=2).encoder_variance == "amortized"
    both = MHVAEConfig(data_dim=4, latent_dim=2, sigmas=(0.5, None))
    assert both.levels == 2 and both.level_variances() == ("fixed", "amortized")
    with pytest.raises(InputError, match="level z2 has a fixed encoder variance but no std"):
        MHVAEConfig(data_dim=4, latent_dim=2, encoder_variances=("shared", "fixed"))


def test_every_train_flag_is_a_declared_setting_and_every_setting_a_flag() -> None:
    flags = {p.name for p in train_command.params} - {"config_file"}
    declared_names = {name for cls in SECTIONS for name in declared(cls)}
    assert flags == declared_names


def test_configuration_files_use_the_same_names_and_domains(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("dataset: digits\nlatent-dims: [3, 2]\nsigmas: [0.5, null]\nbeta: 2\n")
    assert read_settings_file(path, *SECTIONS) == {
        "dataset": "digits",
        "latent_dims": (3, 2),
        "sigmas": (0.5, None),
        "beta": 2.0,
    }


def test_settings_document_is_current() -> None:
    text = (REPO_ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert text == settings_document(), "regenerate: python -m vaecollapse.cli.settings_doc"


def test_names_of_torchs_classes_are_taken_in_any_case(run_cli, tmp_path: Path) -> None:
    config = TrainConfig(
        optimizer="adam", lr_scheduler="steplr", lr_scheduler_args={"step_size": 2}
    )
    assert (config.optimizer, config.lr_scheduler) == ("Adam", "StepLR")
    assert TrainConfig(optimizer="ADAMW").optimizer == "AdamW"
    with pytest.raises(InputError, match="optimizer must be one of"):
        TrainConfig(optimizer="adamm")
    out = tmp_path / "run"
    done = run_cli(
        "train", "--dataset", "digits", "--latent-dim", "2", "--epochs", "1", "--optimizer",
        "adam", "--out", str(out),
    )  # fmt: skip
    assert done.code == 0, done.err
    assert json.loads((out / "config.json").read_text())["train"]["optimizer"] == "Adam"
