"""Shared fixtures. MNIST and Fashion-MNIST come from $VAECOLLAPSE_DATA (CI sets
../shared/data); a test that needs them fails, never skips, when they are missing."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from vaecollapse.cli import main
from vaecollapse.core.data import RELEASES

REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # each of the `-n N` workers (pyproject.toml) takes one thread: N on N cores, none
        # oversubscribed; the tests' margins hold under one thread as under two
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


def shared_release(name: str, label: str) -> Path:
    """The folder of release ``name`` under $VAECOLLAPSE_DATA, with every file present; the
    test fails (never skips) otherwise."""
    root = os.environ.get("VAECOLLAPSE_DATA")
    if not root:
        pytest.fail(f"VAECOLLAPSE_DATA is not set; {label} tests need it (CI uses ../shared/data).")
    directory = Path(root).resolve() / name
    missing = [n for n in RELEASES[name].file_names if not (directory / n).is_file()]
    if missing:
        pytest.fail(f"{label} files {missing} are missing from {directory}.")
    return directory


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return shared_release("mnist", "MNIST")


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    return shared_release("fashion-mnist", "Fashion-MNIST")


@pytest.fixture
def mnist_copy(mnist_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the MNIST folder, as ``<tmp>/mnist``, to damage in tests."""
    target = tmp_path / "mnist"
    shutil.copytree(mnist_dir, target)
    for path in target.iterdir():
        path.chmod(0o644)
    return target


@pytest.fixture
def isolated_data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No $VAECOLLAPSE_DATA, an empty cache, downloads disabled: nothing can be found."""
    monkeypatch.delenv("VAECOLLAPSE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("VAECOLLAPSE_OFFLINE", "1")
    return tmp_path


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):
    """Run the CLI in-process, exactly as the console script does; returns code, stdout, stderr."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main(list(args))
        captured = capsys.readouterr()
        return CliResult(int(exited.value.code), captured.out, captured.err)

    return run
