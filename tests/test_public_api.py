"""The public API: every name a user needs imports from ``vaecollapse`` itself, stays what it
is whatever else was imported, and the wheel carries the ``py.typed`` marker."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import vaecollapse

from .conftest import REPO_ROOT

PUBLIC = (
    "diagnose", "predict", "train", "TrainConfig", "VAEConfig", "CVAEConfig", "MHVAEConfig",
    "CollapseMonitor", "as_latent_model", "load_dataset", "InputError", "DataNotFoundError",
    "CorruptDataError", "MisreadingWarning", "KLSchedule", "free_bits", "aggressive_steps",
)  # fmt: skip


def test_every_public_name_imports_from_the_top() -> None:
    assert set(PUBLIC) <= set(vaecollapse.__all__)
    for name in vaecollapse.__all__:
        assert getattr(vaecollapse, name) is not None, name
    from vaecollapse.training import trainer  # importing the module leaves the function alone

    assert vaecollapse.train is trainer.train and callable(vaecollapse.train)
    assert vaecollapse.diagnose.__module__ == "vaecollapse.core.diagnostics.entry"


def test_a_name_that_is_not_public_is_an_attribute_error() -> None:
    try:
        vaecollapse.no_such_name  # noqa: B018
    except AttributeError as reason:
        assert "no_such_name" in str(reason)
    else:
        raise AssertionError("an unknown name was found")


def test_the_wheel_ships_py_typed(tmp_path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO_ROOT), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(tmp_path)],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("vaecollapse-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "vaecollapse/py.typed" in names
    assert "vaecollapse/core/diagnostics/entry.py" in names


def test_every_public_name_says_what_it_is() -> None:
    undocumented = [
        name
        for name in vaecollapse.__all__
        if callable(getattr(vaecollapse, name))
        and not (getattr(vaecollapse, name).__doc__ or "").strip()
    ]
    assert undocumented == []
