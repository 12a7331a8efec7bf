"""Shared fixtures. MNIST comes from $VAECOLLAPSE_DATA (CI sets ../shared/data); a test that
needs it fails, never skips, when it is missing."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from vaecollapse.cli import main
from vaecollapse.data import RELEASES

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    root = os.environ.get("VAECOLLAPSE_DATA")
    if not root:
        pytest.fail("VAECOLLAPSE_DATA is not set; MNIST tests need it (CI uses ../shared/data).")
    directory = Path(root).resolve() / "mnist"
    missing = [n for n in RELEASES["mnist"].file_names if not (directory / n).is_file()]
    if missing:
        pytest.fail(f"MNIST files {missing} are missing from {directory}.")
    return directory


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
