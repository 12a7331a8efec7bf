"""Fault and bad-input cases: each sets up a situation a user can get into, runs the command line
on it and checks what must hold afterwards (the exit code, the message, the files left).

``tests/test_faults.py`` runs every case; ``python -m tests.fault_cases`` runs them all and writes
``docs/reliability.md``, the table of outcomes, so the document shows what the code does.
"""

from __future__ import annotations

import argparse
import errno
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from vaecollapse.cli import main

REPO_ROOT = Path(__file__).resolve().parent.parent
INTERRUPTED_EPOCHS = 400
TINY = ["--dataset", "digits", "--latent-dim", "2", "--batch-size", "512", "--device", "cpu"]
ERROR_STARTS = ("error", "interrupted")


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def message(self) -> str:
        """The error message (from its first line to the end of stderr), else the last line."""
        lines = (self.err.strip() or self.out.strip()).splitlines()
        starts = [i for i, line in enumerate(lines) if line.lower().startswith(ERROR_STARTS)]
        return " ".join(" ".join(lines[starts[-1] if starts else -1 :]).split())


@dataclass
class Case:
    group: str
    name: str
    what: str
    expect_code: int
    expect_text: str
    run: Callable[[Path], tuple[Result, str]]


@dataclass
class Outcome:
    case: Case
    code: int | None = None
    message: str = ""
    checked: str = ""
    failure: str | None = None
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def as_expected(self) -> bool:
        return self.failure is None


CASES: list[Case] = []


def case(group: str, what: str, code: int, text: str):
    """Register ``run(tmp) -> (Result, what was checked beyond code and message)``."""

    def add(run: Callable[[Path], tuple[Result, str]]) -> Callable:
        CASES.append(Case(group, run.__name__, what, code, text, run))
        return run

    return add


def invoke(*args: str) -> Result:
    """The console entry point, in this process, with its output captured."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    return Result(code, out.getvalue(), err.getvalue())


def train(out: Path, *extra: str, epochs: int = 1) -> Result:
    return invoke("train", *TINY, "--epochs", str(epochs), "--out", out, *extra)


def trained(out: Path, epochs: int = 1, *extra: str) -> Path:
    result = train(out, *extra, epochs=epochs)
    assert result.code == 0, result.err
    return out


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` with its bytes, to show nothing changed (the lock file
    only records who held the directory last, and is left out)."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in directory.rglob("*")
        if p.is_file() and p.name != ".vaecollapse.lock"
    }


def refused_resume(run: Path, *extra: str) -> tuple[Result, str]:
    """Train ``run`` to two epochs (with ``extra`` flags) where that must be refused: nothing in
    the run directory may change."""
    before = snapshot(run)
    result = train(run, *extra, epochs=2)
    assert snapshot(run) == before, "the run directory changed"
    return result, "the run directory is unchanged"


def user_folder(tmp: Path) -> Path:
    """A folder of the user's own files, two of them named as a run's files are."""
    folder = tmp / "mine"
    folder.mkdir()
    (folder / "config.json").write_text('{"my": "settings"}\n')
    (folder / "model.pt").write_bytes(b"my weights")
    (folder / "notes.txt").write_text("thesis notes\n")
    return folder


class Payload:
    """Unpickling this runs a shell command that leaves a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def child_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))
    env.pop("VAECOLLAPSE_DEBUG", None)
    return env


def start_training(out: Path, epochs: int) -> subprocess.Popen:
    """``vaecollapse train`` in a child process whose Ctrl-C behaves as in a terminal."""
    command = ["train", *TINY, "--epochs", str(epochs), "--out", str(out)]
    return subprocess.Popen(
        [sys.executable, "-m", "vaecollapse", *command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def child_run(*args: str) -> Result:
    done = subprocess.run(
        [sys.executable, "-m", "vaecollapse", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=300,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def wait_for_epochs(out: Path, process: subprocess.Popen, at_least: int = 1) -> None:
    """Block until the child has checkpointed ``at_least`` epochs."""
    deadline = time.monotonic() + 120
    metrics = out / "metrics.jsonl"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the trainer ended early: {process.stderr.read()}")
        if metrics.exists() and len(metrics.read_text().splitlines()) >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError("the trainer wrote no epoch within 120 s")


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


# --- Trust: nothing found on disk runs code ---------------------------------------------------


def _crafted_pickle(file_name: str, command: str, drop_weights: bool = False):
    """A run whose ``file_name`` unpickles a shell command, then ``command`` (train or diagnose)
    on it: the command must never run the payload."""

    def run_case(tmp: Path) -> tuple[Result, str]:
        run = trained(tmp / "run")
        if drop_weights:
            (run / "model.pt").unlink()
        marker = tmp / "pwned"
        torch.save({"epoch": 1, "model": Payload(marker), "history": [{}]}, run / file_name)
        before = snapshot(run)
        if command == "train":
            result = train(run, epochs=2)
        else:
            result = invoke("diagnose", run, *command.split()[1:])
        assert not marker.exists(), "the payload ran"
        if result.code != 0:
            assert snapshot(run) == before, "the run directory changed"
            return result, "the payload did not run; the run directory is unchanged"
        report = next(line for line in result.out.splitlines() if line.startswith("IWAE"))
        return Result(result.code, result.out, report), (
            "the payload did not run; the estimate was made afresh and replaced the file"
        )

    run_case.__name__ = f"crafted {file_name} then {command}"
    return run_case


for _file, _command, _drop, _code, _text, _what in (
    ("checkpoint.pt", "diagnose", True, 2, "never loads",
     "diagnose a run whose checkpoint.pt (no model.pt) unpickles a shell command"),
    ("checkpoint.pt", "train", False, 2, "never loads",
     "resume training from a checkpoint.pt that unpickles a shell command"),
    ("model.pt", "diagnose", False, 2, "never loads",
     "diagnose a run whose model.pt unpickles a shell command"),
    ("iwae-test-k5.pt", "diagnose --iwae-k 5", False, 0, "IWAE log-likelihood",
     "diagnose --iwae-k 5 with a stored IWAE estimate that unpickles a shell command"),
):  # fmt: skip
    case("code on disk", _what, _code, _text)(_crafted_pickle(_file, _command, _drop))


# --- Run directories: one process at a time, nothing of the user's overwritten ---------------


def _refused_out(command: list[str], out: str) -> Result:
    return invoke(*command, "--out", out)


for _command in (["train", *TINY], ["demo"], ["reproduce", "fig2a", "--quick"]):

    def _empty(tmp: Path, command=_command) -> tuple[Result, str]:
        os.chdir(tmp)
        result = _refused_out(command, "")
        assert not any(tmp.iterdir()), "something was written into the current directory"
        return result, "nothing was written into the current directory"

    def _file(tmp: Path, command=_command) -> tuple[Result, str]:
        target = tmp / "results.txt"
        target.write_text("keep me\n")
        result = _refused_out(command, str(target))
        assert target.read_text() == "keep me\n"
        return result, "the file is unchanged"

    def _foreign(tmp: Path, command=_command) -> tuple[Result, str]:
        folder = user_folder(tmp)
        before = snapshot(folder)
        result = _refused_out(command, str(folder))
        assert snapshot(folder) == before, "the user's files changed or a file was added"
        assert not (folder / ".vaecollapse.lock").exists(), "a lock file was added"
        return result, "the user's files are unchanged and nothing was added"

    _word = _command[0]
    _empty.__name__, _file.__name__, _foreign.__name__ = (
        f"{_word}_out_empty",
        f"{_word}_out_is_a_file",
        f"{_word}_out_holds_user_files",
    )
    case("run directories", f"{_word} --out ''", 2, "--out is empty")(_empty)
    case("run directories", f"{_word} --out naming an existing file", 2, "is a file")(_file)
    case(
        "run directories",
        f"{_word} --out naming a folder of the user's files (config.json, model.pt, notes.txt)",
        2,
        "never writes over them",
    )(_foreign)


@case("run directories", "a second trainer on a run directory another process is training", 2,
      "is in use by pid")  # fmt: skip
def concurrent_trainers(tmp: Path) -> tuple[Result, str]:
    run = tmp / "run"
    first = start_training(run, epochs=100_000)
    try:
        wait_for_epochs(run, first)
        before = (run / "config.json").read_bytes()
        result = train(run, "--lr", "0.01", epochs=5)
        assert (run / "config.json").read_bytes() == before, "config.json changed"
        assert f"pid {first.pid}" in result.err, "the holder is not named"
    finally:
        first.kill()
        first.communicate()
    again = train(run, epochs=first_epochs(run) + 1)
    assert again.code == 0, f"the lock outlived its killed holder: {again.err}"
    return result, "the holder's pid is named; after the holder is killed the run resumes"


def first_epochs(run: Path) -> int:
    return len((run / "metrics.jsonl").read_text().splitlines())


@case("run directories", "train a finished 3-epoch run again with --epochs 2", 2,
      "more than the 2 asked for")  # fmt: skip
def fewer_epochs(tmp: Path) -> tuple[Result, str]:
    return refused_resume(trained(tmp / "run", epochs=3))


@case("run directories", "resume a run with another learning rate", 2, "different configuration")
def changed_configuration(tmp: Path) -> tuple[Result, str]:
    return refused_resume(trained(tmp / "run"), "--lr", "0.01")


def _damaged_config(content: bytes, command: str):
    def run_case(tmp: Path) -> tuple[Result, str]:
        run = trained(tmp / "run")
        (run / "config.json").write_bytes(content)
        before = snapshot(run)
        result = train(run, epochs=2) if command == "train" else invoke("diagnose", run)
        assert snapshot(run) == before, "the run directory changed"
        return result, "the run directory is unchanged"

    return run_case


for _content, _label, _texts in (
    (b'{"format": "vaecollapse-run/1", "train": {', "truncated", ("is damaged", "is damaged")),
    (b"[1, 2, 3]\n", "a JSON list, not an object,", ("not a run config", "not a run config")),
    (b'{"format": "vaecollapse-run/1", "\xff\xfe": 1}', "not UTF-8", ("damaged", "damaged")),
    (b"[" * 200_000 + b"]" * 200_000, "nested 200,000 deep",
     ("config.json is damaged (nested too deeply",) * 2),
):  # fmt: skip
    for _command, _text in zip(("train", "diagnose"), _texts, strict=True):
        _fn = _damaged_config(_content, _command)
        _fn.__name__ = f"{_command}_config_{_label.split(',')[0].replace(' ', '_')}"
        case("damaged runs", f"{_command} a run whose config.json is {_label}", 2, _text)(_fn)


@case("damaged runs", "resume from a checkpoint.pt that lacks the optimizer state", 2,
      "lacks optimizer")  # fmt: skip
def checkpoint_missing_keys(tmp: Path) -> tuple[Result, str]:
    run = trained(tmp / "run")
    state = weights(run / "checkpoint.pt")
    del state["optimizer"]
    torch.save(state, run / "checkpoint.pt")
    return refused_resume(run)


@case("damaged runs", "resume from a checkpoint.pt of another architecture (latent 5, not 2)", 2,
      "weights of another model")  # fmt: skip
def checkpoint_other_architecture(tmp: Path) -> tuple[Result, str]:
    run = trained(tmp / "run")
    other = trained(tmp / "other", 1, "--latent-dim", "5")
    (run / "checkpoint.pt").write_bytes((other / "checkpoint.pt").read_bytes())
    return refused_resume(run)


@case("damaged runs", "diagnose a run with model.pt removed and checkpoint.pt truncated", 2,
      "truncated or not a PyTorch file")  # fmt: skip
def checkpoint_truncated(tmp: Path) -> tuple[Result, str]:
    run = trained(tmp / "run")
    (run / "model.pt").unlink()
    data = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    return invoke("diagnose", run), ""


@case("damaged runs", "reproduce --collect over a finished run whose metrics.jsonl is garbage", 2,
      "is not an epoch record")  # fmt: skip
def garbage_metrics(tmp: Path) -> tuple[Result, str]:
    out = tmp / "reproductions"
    run = trained(out / "shared-runs" / "quick" / "group" / "run", epochs=2)
    (run / "metrics.jsonl").write_text("epoch one went fine\n")
    return invoke("reproduce", "--collect", "--out", out), ""


@case("damaged runs", "diagnose a folder that is not a run", 2, "has no config.json")
def diagnose_not_a_run(tmp: Path) -> tuple[Result, str]:
    return invoke("diagnose", user_folder(tmp).parent), ""


@case("run directories", "train with umask 027", 0, "trained 1 epochs")
def files_follow_umask(tmp: Path) -> tuple[Result, str]:
    old = os.umask(0o027)
    try:
        run = tmp / "run"
        result = train(run)
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in run.iterdir()}
    assert set(modes.values()) == {0o640}, modes
    return Result(result.code, result.out, result.out), "every file is mode 0640"


@case("signals", "kill -9 a trainer mid-run, then run the same command with two more epochs", 0,
      "trained")  # fmt: skip
def kill_and_resume(tmp: Path) -> tuple[Result, str]:
    run = tmp / "run"
    first = start_training(run, epochs=100_000)
    wait_for_epochs(run, first, at_least=2)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    epochs = str(weights(run / "checkpoint.pt")["epoch"] + 2)
    resumed = child_run("train", *TINY, "--epochs", epochs, "--out", str(run))
    straight = tmp / "straight"
    child_run("train", *TINY, "--epochs", epochs, "--out", str(straight))
    a, b = weights(run / "model.pt"), weights(straight / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ"
    return resumed, f"after {epochs} epochs the weights equal an uninterrupted run's bit for bit"


@case("signals", "Ctrl-C (SIGINT) during training, then the same command again", 130,
      "interrupted at epoch")  # fmt: skip
def interrupt_and_resume(tmp: Path) -> tuple[Result, str]:
    run = tmp / "run"
    child = start_training(run, epochs=INTERRUPTED_EPOCHS)
    wait_for_epochs(run, child)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    result = Result(child.returncode, out, err)
    assert "Traceback" not in err
    again = child_run("train", *TINY, "--epochs", str(INTERRUPTED_EPOCHS), "--out", str(run))
    assert again.code == 0 and first_epochs(run) == INTERRUPTED_EPOCHS, again.err
    return result, "the same command then finished the run"


# --- One schema, checked before anything is created -----------------------------------------


def _bad_flag(*flags: str, command: tuple[str, ...] = ("train", *TINY)):
    def run_case(tmp: Path) -> tuple[Result, str]:
        out = tmp / "run"
        extra = ("--out", out) if command[0] == "train" else ()
        result = invoke(*command, *flags, *extra)
        assert not out.exists(), "the run directory was created"
        return result, "no directory was created" if extra else ""

    return run_case


for _flags, _text in (
    (("--eta-enc", "nan"), "--eta-enc must be a finite number > 0; got nan"),
    (("--eta-enc", "-1"), "--eta-enc must be a finite number > 0"),
    (("--eta-enc", "inf"), "--eta-enc must be a finite number > 0; got inf"),
    (("--beta", "inf"), "--beta must be a finite number > 0"),
    (("--eta-dec", "0"), "--eta-dec must be a finite number > 0"),
    (("--sigma", "0"), "--sigma must be a finite number > 0"),
    (("--lr", "-0.1"), "--lr must be a finite number > 0"),
    (("--epochs", "0"), "--epochs must be an integer ≥ 1"),
    (("--model", "mhvae", "--betas", "1,nan"), "--betas must be a list"),
    (("--betas", "1,2"), "do not apply to --model vae"),
    (("--encoder-variance", "fixed"), "needs sigma"),
    (("--digits", "one"), "--digits takes an integer"),
):
    _fn = _bad_flag(*_flags)
    _fn.__name__ = "train " + " ".join(_flags)
    case("settings", f"train {' '.join(_flags)}", 2, _text)(_fn)

for _command, _flags, _text in (
    (("theory", "--model", "vae", "--dataset", "digits", "--latent-dim", "2"),
     ("--eta-enc", "inf"), "--eta-enc must be a finite number > 0"),
    (("diagnose", "."), ("--epsilon", "-1"), "--epsilon must be a finite number > 0"),
    (("reproduce", "fig2a"), ("--jobs", "0"), "Invalid value for '--jobs'"),
):  # fmt: skip
    _fn = _bad_flag(*_flags, command=_command)
    _fn.__name__ = f"{_command[0]} {' '.join(_flags)}"
    case("settings", f"{_command[0]} {' '.join(_flags)}", 2, _text)(_fn)


def _bad_config(suffix: str, content: bytes):
    def run_case(tmp: Path) -> tuple[Result, str]:
        config = tmp / f"settings{suffix}"
        config.write_bytes(content)
        out = tmp / "run"
        result = invoke("train", "--config", config, "--out", out)
        assert not out.exists(), "the run directory was created"
        return result, "no directory was created"

    return run_case


for _suffix, _content, _label, _text in (
    (".toml", b'dataset = "digits"\nlatent_dim = 0\n', "latent_dim = 0", "an integer ≥ 1"),
    (".toml", b'dataset = "digits"\nlatent_dim = 2\nlearning_rate = 1\n', "an unknown key",
     "unknown setting 'learning_rate'"),
    (".toml", b'dataset = "digits"\nlatent_dim = "two"\n', "a string for an integer",
     "must be an integer"),
    (".toml", b'dataset = "digits"\nlatent_dim = 2\neta_enc = nan\n', "eta_enc = nan",
     "must be a finite number > 0"),
    (".toml", b'dataset = "d\xe9gits"\n', "Latin-1 bytes (not UTF-8)", "is not UTF-8"),
    (".yaml", b"- dataset\n- digits\n", "a YAML list", "a table of settings"),
    (".ini", b"[x]\n", "an unknown file type", "must be .toml, .yaml or .yml"),
):  # fmt: skip
    _fn = _bad_config(_suffix, _content)
    _fn.__name__ = f"config {_label}"
    case("settings", f"train --config a {_suffix} file with {_label}", 2, _text)(_fn)


# --- Remedies ---------------------------------------------------------------------------------


def _senseless_remedy(command: str, args: tuple[str, ...]):
    def run_case(tmp: Path) -> tuple[Result, str]:
        out = tmp / "run"
        extra = (
            (*TINY, "--epochs", "1") if command == "train" else ("--epochs", "1", "--seeds", "0")
        )
        result = invoke(command, *extra, *args, "--out", out)
        assert not out.exists(), "the output directory was created"
        return result, "no directory was created"

    return run_case


for _command, _args, _label, _text in (
    ("train", ("--deterministic", "--free-bits", "0.5"), "free bits on a deterministic autoencoder",
     "a deterministic autoencoder has none"),
    ("train", ("--kl-schedule", "cyclical", "--kl-cycle-epochs", "5"),
     "a KL cycle longer than the run", "longer than the run's 1 epochs"),
    ("train", ("--kl-schedule", "cyclical"), "a cyclical schedule without a cycle length",
     "needs kl_cycle_epochs"),
    ("train", ("--free-bits", "-1"), "a negative free-bits target", "must be a finite number > 0"),
    ("train", ("--kl-cycle-ratio", "1.5"), "a cycle ratio above 1", "≤ 1"),
    ("train", ("--model", "mhvae", "--mean-batchnorm", "0.5"), "BN-VAE means on an MHVAE",
     "lower levels have learned priors"),
    ("train", ("--sigma", "0.5", "--delta-rate", "0.1"), "δ-VAE's rate with a fixed Σ",
     "fixed by sigma"),
    ("remedies", ("--remedies", "free-bits"), "a remedy bench without its baseline",
     "must include none"),
    ("remedies", ("--model", "mhvae", "--remedies", "none,delta-vae"), "δ-VAE in an MHVAE bench",
     "leave them out of --remedies"),
):  # fmt: skip
    _fn = _senseless_remedy(_command, _args)
    _fn.__name__ = f"remedy {_label}"
    case("remedies", f"{_command} with {_label}", 2, _text)(_fn)


# --- Data -------------------------------------------------------------------------------------


def _user_data(name: str, array: np.ndarray, text: str, what: str):
    def run_case(tmp: Path) -> tuple[Result, str]:
        path = tmp / name
        if name.endswith(".npz"):
            np.savez(path, **{"x": array, "extra": array})
        else:
            np.save(path, array)
        return invoke("train", "--dataset", path, "--latent-dim", "2", "--out", tmp / "r"), ""

    run_case.__name__ = f"data {what}"
    case("data", f"train on a {name} holding {what}", 2, text)(run_case)


_user_data("big.npy", np.full((4, 3), 1e300), "beyond float32's range", "float64 values of 1e300")
_user_data("nan.npy", np.array([[0.0, np.nan], [1.0, 2.0]]), "NaN or infinite", "a NaN")
_user_data("img.npy", np.zeros((4, 2, 2)), "2-D array", "a 3-D array")
_user_data("extra.npz", np.zeros((4, 3)), "does not use", "an unknown array 'extra'")


@case("data", "train on MNIST from an empty --data-dir, offline", 2, "not found")
def mnist_missing(tmp: Path) -> tuple[Result, str]:
    (tmp / "empty").mkdir()
    with mock.patch.dict(os.environ, {"VAECOLLAPSE_OFFLINE": "1", "XDG_CACHE_HOME": str(tmp)}):
        os.environ.pop("VAECOLLAPSE_DATA", None)
        result = invoke(
            "train", "--dataset", "mnist", "--data-dir", tmp / "empty", "--latent-dim", "2",
            "--out", tmp / "r",
        )  # fmt: skip
    return result, ""


@case("data", "train on MNIST whose train-images file is garbage", 2, "truncated or corrupt")
def mnist_corrupt(tmp: Path) -> tuple[Result, str]:
    folder = tmp / "mnist"
    folder.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):  # fmt: skip
        (folder / name).write_bytes(b"\x1f\x8b not really gzip")
    return invoke(
        "train", "--dataset", "mnist", "--data-dir", folder, "--latent-dim", "2", "--out",
        tmp / "r",
    ), ""  # fmt: skip


@case("data", "diagnose a CVAE run on a digit subset of the quadrant task (as fig3a writes)", 0,
      "verdict")  # fmt: skip
def diagnose_digit_subset_run(tmp: Path) -> tuple[Result, str]:
    from vaecollapse.core.data import load_dataset
    from vaecollapse.training.config import TrainConfig
    from vaecollapse.training.runs import train_run

    dataset = load_dataset("digits-quadrant", digits=1)
    train_run(tmp / "run", "cvae", dataset, {"latent_dim": 2}, TrainConfig(epochs=1), device="cpu")
    result = invoke("diagnose", tmp / "run", "--json")
    report = json.loads(result.out)
    stored = json.loads((tmp / "run" / "config.json").read_text())["data"]
    assert stored["digits"] == [1] and stored["dataset"] == "digits-quadrant", stored
    return Result(result.code, "", "verdict: " + report["verdict"]["summary"]), (
        "config.json stores dataset digits-quadrant with digits [1]"
    )


@case("data", "diagnose a run trained on generated data (as the synthetic entries write)", 0,
      "verdict")  # fmt: skip
def diagnose_synthetic_run(tmp: Path) -> tuple[Result, str]:
    from vaecollapse.core.data import correlated_pairs, synthetic_dataset
    from vaecollapse.training.config import TrainConfig
    from vaecollapse.training.runs import train_run

    x, y = correlated_pairs(0.5, n=200, dim=4, seed=0)
    dataset = synthetic_dataset("pairs", x, y)
    train_run(tmp / "run", "cvae", dataset, {"latent_dim": 2}, TrainConfig(epochs=1), device="cpu")
    moved = tmp / "moved"
    (tmp / "run").rename(moved)
    result = invoke("diagnose", moved)
    verdict = next(line for line in result.out.splitlines() if line.startswith("verdict"))
    return Result(result.code, "", verdict), (
        "the data set is kept in the run directory (data.npz) and found after the folder moved"
    )


# --- The operating system says no ------------------------------------------------------------


def _failing_save(fail_on_call: int, error: BaseException):
    real = torch.save
    calls = {"n": 0}

    def save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == fail_on_call:
            with open(f, "wb") as handle:
                handle.write(b"partial")
            raise error
        return real(obj, f, *args, **kwargs)

    return save


TORCH_WRITE_FAILURE = "[enforce fail at inline_container.cc:783] . unexpected pos 3904 vs 3792"


def _disk_full(name: str, fail_on_call: int, error: BaseException, expect_kept: int | None):
    def run_case(tmp: Path) -> tuple[Result, str]:
        run = tmp / "run"
        with mock.patch("torch.save", _failing_save(fail_on_call, error)):
            result = train(run, epochs=3)
        leftovers = [p.name for p in run.iterdir() if p.name.endswith(".part")]
        assert not leftovers, f"temporary files left: {leftovers}"
        if expect_kept is None:
            assert not (run / "checkpoint.pt").exists()
            return result, "no temporary file is left"
        assert weights(run / "checkpoint.pt")["epoch"] == expect_kept
        resumed = train(run, epochs=3)
        assert resumed.code == 0, resumed.err
        return result, f"the epoch-{expect_kept} checkpoint is intact and the run then resumes"

    run_case.__name__ = name
    return run_case


case("operating system", "disk full (ENOSPC) while writing the epoch-2 checkpoint", 2,
     "no space left on device; the checkpoint of epoch 1 is kept")(
    _disk_full("disk_full_at_epoch_2", 2, OSError(errno.ENOSPC, "No space left on device"), 1)
)  # fmt: skip
case("operating system", "disk full while writing the first checkpoint", 2,
     "no checkpoint had been written yet")(
    _disk_full("disk_full_at_epoch_1", 1, OSError(errno.ENOSPC, "No space left on device"), None)
)  # fmt: skip
case("operating system", "torch's own write failure ('unexpected pos') at epoch 3", 2,
     "the write failed part-way (disk full?); the checkpoint of epoch 2 is kept")(
    _disk_full("torch_write_failure", 3, RuntimeError(TORCH_WRITE_FAILURE), 2)
)  # fmt: skip


@case("operating system", "--out on a read-only file system", 2, "Read-only file system")
def read_only_output(tmp: Path) -> tuple[Result, str]:
    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    with mock.patch("pathlib.Path.mkdir", refuse):
        result = train(tmp / "run")
    return result, ""


@case("operating system", "--out in a folder where creating files is not permitted", 2,
      "Permission denied")  # fmt: skip
def permission_denied(tmp: Path) -> tuple[Result, str]:
    (tmp / "run").mkdir()
    real_open = os.open

    def guarded(file, *args, **kwargs):
        if str(file).startswith(str(tmp / "run")):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(file, *args, **kwargs)

    with mock.patch("os.open", guarded):
        result = train(tmp / "run")
    return result, ""


@case("operating system", "diagnose a run on a read-only file system", 2,
      "cannot write")  # fmt: skip
def diagnose_read_only(tmp: Path) -> tuple[Result, str]:
    run = trained(tmp / "run")
    before = snapshot(run)

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    with mock.patch("tempfile.mkstemp", refuse):
        result = invoke("diagnose", run)
    assert snapshot(run) == before
    assert "verdict" in result.out, "the report was not printed"
    return result, "the report is printed before the refusal; the run is unchanged"


# --- Links: nothing is written or embedded through a link ------------------------------------

SWEEP_FILE = """dataset = "digits"
latent_dim = 2
epochs = 1
batch_size = 512

[grid]
beta = [0.5, 1]
"""
PHASE_FLAGS = ("--grid", "2", "--epochs", "2", "--device", "cpu")
LOCK = ".vaecollapse.lock"


def sweep_file(tmp: Path) -> Path:
    path = tmp / "sweep.toml"
    path.write_text(SWEEP_FILE)
    return path


def swept(tmp: Path) -> Path:
    out = tmp / "sweep"
    result = invoke("sweep", sweep_file(tmp), "--out", out, "--device", "cpu")
    assert result.code == 0, result.err
    return out


def phased(tmp: Path) -> Path:
    out = tmp / "phase"
    result = invoke("phase", *PHASE_FLAGS, "--out", out)
    assert result.code == 0, result.err
    return out


def reproduced(tmp: Path, mode: str = "quick") -> Path:
    """A reproduction folder as `reproduce fig2a` writes it (in ``mode``), without training: one
    entry's outcome, comparison, rows and figure."""
    from vaecollapse.core.rundir import mark_directory

    out = tmp / "reproductions"
    entry = out / "fig2a"
    entry.mkdir(parents=True)
    mark_directory(out, "reproduction")
    outcome = {"mode": mode, "claim_holds": True, "seconds": 1.0, "train_seconds": 0.5}
    (entry / "result.json").write_text(json.dumps(outcome))
    (entry / "comparison.md").write_text("# fig2a: the entry\n\nClaim: holds.\n")
    (entry / "results.csv").write_text("beta,active\n1,2\n")
    (entry / "fig2a.png").write_bytes(_png())
    return out


def _png() -> bytes:
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(1, 1))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def outside_file(tmp: Path, name: str = "thesis.txt") -> Path:
    path = tmp / name
    path.write_text("the user's own file\n")
    return path


def _linked_lock(make: Callable[[Path], Path], command: Callable[[Path], Result], dangling: bool):
    def run_case(tmp: Path) -> tuple[Result, str]:
        folder = make(tmp)
        target = tmp / "nowhere.txt" if dangling else outside_file(tmp)
        (folder / LOCK).unlink(missing_ok=True)
        (folder / LOCK).symlink_to(target)
        before = snapshot(folder)
        result = command(folder)
        assert snapshot(folder) == before, "the folder changed"
        if dangling:
            assert not target.exists(), "the link's target was created"
            return result, "the link's target was not created; the folder is unchanged"
        assert target.read_text() == "the user's own file\n", "the linked file changed"
        return result, "the linked file and the folder are unchanged"

    return run_case


for _name, _what, _make, _command, _dangling in (
    ("train_lock_links_to_a_file", "train a run whose lock is a link to the user's file",
     trained, lambda run: train(run, epochs=2), False),
    ("sweep_collect_lock_links_to_a_file",
     "sweep --collect a sweep whose lock is a link to the user's file", swept,
     lambda out: invoke("sweep", out.parent / "sweep.toml", "--collect", "--out", out), False),
    ("diagnose_lock_is_a_dangling_link", "diagnose a run whose lock is a link to no file",
     trained, lambda run: invoke("diagnose", run), True),
    ("phase_lock_is_a_dangling_link", "phase over a diagram whose lock is a link to no file",
     phased, lambda out: invoke("phase", *PHASE_FLAGS, "--out", out), True),
):  # fmt: skip
    _fn = _linked_lock(_make, _command, _dangling)
    _fn.__name__ = _name
    case("links", _what, 2, "is a symbolic link")(_fn)


def _linked_input(name: str, record: bool):
    """``reproduce --collect`` (with ``--record``) over an entry whose ``name`` is a link to a
    file outside the folder: it must be neither embedded nor copied."""

    def run_case(tmp: Path) -> tuple[Result, str]:
        out = reproduced(tmp)
        secret = outside_file(tmp, "secret.png")
        (out / "fig2a" / name).unlink(missing_ok=True)
        (out / "fig2a" / name).symlink_to(secret)
        records = tmp / "records"
        extra = ("--record", records) if record else ()
        result = invoke("reproduce", "--collect", "--out", out, *extra)
        assert not (out / "report.html").exists(), "a report was written"
        copied = [p for p in records.rglob("*") if p.is_file()] if records.exists() else []
        assert not any(b"the user's own file" in p.read_bytes() for p in copied), "copied"
        return result, "no report was written and nothing was copied"

    return run_case


case("links", "reproduce --collect where an entry's figure is a link to a file outside --out", 2,
     "is a symbolic link")(_linked_input("fig2a.png", record=False))  # fmt: skip
case("links", "reproduce --collect --record where comparison.md is a link to a file outside", 2,
     "is a symbolic link")(_linked_input("comparison.md", record=True))  # fmt: skip


# --- Ownership: a folder takes only the kind of output that made it --------------------------


@case("ownership", "train --out a user's folder holding a stray empty lock and their "
      "metrics.jsonl", 2, "not a training run")  # fmt: skip
def stray_lock(tmp: Path) -> tuple[Result, str]:
    folder = tmp / "mine"
    folder.mkdir()
    (folder / LOCK).write_text("")
    (folder / "metrics.jsonl").write_text('{"my": "numbers"}\n')
    before = snapshot(folder)
    result = train(folder)
    assert snapshot(folder) == before, "the user's files changed"
    return result, "the user's metrics.jsonl is unchanged"


def _other_kind(make: Callable[[Path], Path], command: Callable[[Path], Result]):
    def run_case(tmp: Path) -> tuple[Result, str]:
        folder = make(tmp)
        before = snapshot(folder)
        result = command(folder)
        assert snapshot(folder) == before, "the folder changed"
        return result, "the folder is unchanged"

    return run_case


def _sweep_into(out: Path) -> Result:
    return invoke("sweep", sweep_file(out.parent), "--out", out, "--device", "cpu")


def _remedies_into(out: Path) -> Result:
    return invoke("remedies", "--remedies", "none", "--seeds", "0", "--epochs", "1", "--out", out)


for _what, _text, _make, _command in (
    ("sweep --out a finished phase diagram", "holds a phase diagram", phased, _sweep_into),
    ("phase --out a finished sweep", "holds a sweep", swept,
     lambda out: invoke("phase", *PHASE_FLAGS, "--out", out)),
    ("remedies --out a finished sweep", "holds a sweep", swept, _remedies_into),
    ("train --out a finished sweep", "holds a sweep", swept, lambda out: train(out)),
    ("phase --out a run directory", "holds a training run", trained,
     lambda run: invoke("phase", *PHASE_FLAGS, "--out", run)),
    ("demo --out a run directory", "holds a training run", trained,
     lambda run: invoke("demo", "--out", run)),
    ("reproduce --out a finished sweep", "holds a sweep", swept,
     lambda out: invoke("reproduce", "fig2a", "--quick", "--out", out)),
    ("reproduce --collect --record into a run directory", "holds a training run",
     lambda tmp: (reproduced(tmp), trained(tmp / "run"))[1],
     lambda run: invoke("reproduce", "--collect", "--out", run.parent / "reproductions",
                        "--record", run)),
    ("sweep --run 0 --out a run directory", "holds a training run", trained,
     lambda run: invoke("sweep", sweep_file(run.parent), "--run", "0", "--out", run)),
):  # fmt: skip
    _fn = _other_kind(_make, _command)
    _fn.__name__ = _what.replace(" ", "_").replace("--", "")
    case("ownership", _what, 2, _text)(_fn)


@case("ownership", "train a run whose ownership marker is damaged", 2,
      "not a vaecollapse ownership marker")  # fmt: skip
def damaged_marker(tmp: Path) -> tuple[Result, str]:
    run = trained(tmp / "run")
    (run / ".vaecollapse-folder.json").write_text("{not json")
    return refused_resume(run)


@case("ownership", "resume a run written before folders were marked (no marker)", 0,
      "trained 2 epochs")  # fmt: skip
def unmarked_run(tmp: Path) -> tuple[Result, str]:
    run = trained(tmp / "run")
    (run / ".vaecollapse-folder.json").unlink()
    result = train(run, epochs=2)
    marker = json.loads((run / ".vaecollapse-folder.json").read_text())
    assert marker["kind"] == "run", marker
    return Result(result.code, result.out, result.out), "the run resumed and is now marked"


# --- Settings files that would not fit in memory, or are not what they say ------------------


def _yaml_bomb(key: str) -> str:
    """Nine levels of nine aliases under ``key``: 9**9 values once expanded."""
    value = "&a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"
    for level in range(1, 9):
        value = f"&a{level} [{', '.join([value] + [f'*a{level - 1}'] * 8)}]"
    value = f"[{', '.join([value] + ['*a8'] * 8)}]"
    if key == "optimizer_args":
        value = "{momentum: " + value + "}"
    return f"dataset: digits\nlatent_dim: 2\n{key}: {value}\n"


def _never_built(*args, **kwargs):
    raise AssertionError("the YAML document was built")


def _bounded_config(suffix: str, content: str):
    def run_case(tmp: Path) -> tuple[Result, str]:
        import yaml

        config = tmp / f"settings{suffix}"
        config.write_text(content)
        with mock.patch.object(yaml.SafeLoader, "construct_document", _never_built):
            result = invoke("train", "--config", config, "--out", tmp / "run")
        assert len(result.err) < 1000, "the error quotes too much"
        assert "YAML" not in result.err or suffix != ".toml", "a TOML file reported as YAML"
        assert not (tmp / "run").exists(), "the run directory was created"
        return result, "refused before the document was built, quoting little; nothing created"

    return run_case


for _label, _suffix, _content, _text in (
    ("a YAML alias bomb under beta", ".yaml", _yaml_bomb("beta"), "expand it past"),
    ("a YAML alias bomb under optimizer_args", ".yaml", _yaml_bomb("optimizer_args"),
     "expand it past"),
    ("a YAML alias inside its own anchor", ".yaml",
     "dataset: digits\nlatent_dim: 2\nbeta: &loop [1, *loop]\n", "expand it past"),
    ("TOML arrays nested 100,000 deep", ".toml",
     'dataset = "digits"\nbeta = ' + "[" * 100_000 + "]" * 100_000 + "\n", "not valid TOML"),
):  # fmt: skip
    _fn = _bounded_config(_suffix, _content)
    _fn.__name__ = f"config {_label}"
    case("settings", f"train --config a {_suffix} file with {_label}", 2, _text)(_fn)


# --- Data files that are not what their size says --------------------------------------------


@case("data", "train on a 4 MB .npz whose array inflates to 4 GB", 2, "decompression bomb")
def npz_bomb(tmp: Path) -> tuple[Result, str]:
    path = tmp / "bomb.npz"
    np.savez_compressed(path, x=np.zeros((1000, 500_000)))
    assert path.stat().st_size < 5_000_000
    with mock.patch("numpy.load", _never_built):
        result = invoke("train", "--dataset", path, "--latent-dim", "2", "--out", tmp / "r")
    return result, "refused by the header's shape, before numpy read the array"


@case("data", "train on a .npy whose header claims 4 TB", 2, "truncated or forged")
def forged_npy(tmp: Path) -> tuple[Result, str]:
    path = tmp / "forged.npy"
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)}
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
    with mock.patch("numpy.load", _never_built):
        result = invoke("train", "--dataset", path, "--latent-dim", "2", "--out", tmp / "r")
    return result, "refused by the header's shape, before numpy read the array"


_user_data("one.npy", np.zeros((1, 4)), "at least two", "one row")


@case("data", "diagnose a run whose .npy was replaced by a wider one after training", 2,
      "the data changed since training")  # fmt: skip
def wider_data(tmp: Path) -> tuple[Result, str]:
    path = tmp / "rows.npy"
    np.save(path, np.random.default_rng(0).random((40, 4)))
    run = tmp / "run"
    assert invoke("train", "--dataset", path, "--latent-dim", "2", "--out", run).code == 0
    np.save(path, np.random.default_rng(0).random((40, 6)))
    before = snapshot(run)
    result = invoke("diagnose", run)
    assert snapshot(run) == before, "the run directory changed"
    return result, "the run directory is unchanged"


# --- Sizes and values beyond what the machine or the generators take -------------------------

for _flags, _text in (
    (("--latent-dim", "1000000000"), "latent_dim 1000000000"),
    (("--backbone", "mlp", "--hidden", "1000000000"), "hidden 1000000000"),
    (("--seed", str(10**20)), "--seed must be an integer ≥ 0 and ≤ 4294967295"),
    (("--device", "meta"), "device 'meta' cannot train"),
    (("--lr-scheduler", "StepLR", "--lr-scheduler-args", "step_size=-1"),
     "step_size must be an integer ≥ 1"),
    (("--data-dir", ""), "data_dir is empty"),
    (("--config", ""), "--config is empty"),
):  # fmt: skip
    _fn = _bad_flag(*_flags)
    _fn.__name__ = "train " + " ".join(_flags)
    _shown = " ".join(flag or "''" for flag in _flags)
    case("settings", f"train {_shown}", 2, _text)(_fn)


@case("settings", "train with latent_dim = 2**63 - 1 in a config file", 2, "cannot be built")
def huge_latent_config(tmp: Path) -> tuple[Result, str]:
    config = tmp / "settings.toml"
    config.write_text(f'dataset = "digits"\nlatent_dim = {2**63 - 1}\n')
    result = invoke("train", "--config", config, "--out", tmp / "run")
    assert not (tmp / "run").exists(), "the run directory was created"
    return result, "no directory was created"


@case("data", "train with --data-dir naming a file", 2, "is a file")
def data_dir_file(tmp: Path) -> tuple[Result, str]:
    target = outside_file(tmp)
    result = invoke("train", *TINY, "--data-dir", target, "--out", tmp / "run")
    assert not (tmp / "run").exists(), "the run directory was created"
    return result, "no directory was created"


LONG_NAME = "n" * 300


for _what, _args in (
    ("train --out", lambda tmp: ("train", *TINY, "--out", tmp / LONG_NAME)),
    ("train --dataset", lambda tmp: ("train", "--dataset", tmp / f"{LONG_NAME}.npy",
                                     "--latent-dim", "2", "--out", tmp / "run")),
    ("diagnose", lambda tmp: ("diagnose", tmp / LONG_NAME)),
    ("demo --out", lambda tmp: ("demo", "--out", tmp / LONG_NAME)),
):  # fmt: skip

    def _long(tmp: Path, args=_args) -> tuple[Result, str]:
        result = invoke(*args(tmp))
        assert not (tmp / "run").exists(), "a run directory was created"
        return result, "names the option or argument"

    _long.__name__ = f"{_what} long name"
    case(
        "operating system",
        f"{_what} with a path component of 300 bytes",
        2,
        "the file system allows at most",
    )(_long)


# --- Reproductions whose files are not what they should be -----------------------------------


def _damaged_outcome(change: Callable[[Path], None]):
    def run_case(tmp: Path) -> tuple[Result, str]:
        out = reproduced(tmp)
        change(out / "fig2a")
        before = snapshot(out)
        result = invoke("reproduce", "--collect", "--out", out)
        assert snapshot(out) == before, "the folder changed"
        return result, "nothing was written"

    return run_case


for _what, _change, _text in (
    ("a result.json that is {}", lambda e: (e / "result.json").write_text("{}"),
     "lacks a valid mode"),
    ("an entry without its comparison.md", lambda e: (e / "comparison.md").unlink(),
     "no comparison.md"),
    ("a result.json whose seconds is a string",
     lambda e: (e / "result.json").write_text(json.dumps(
         {"mode": "quick", "claim_holds": True, "seconds": "fast", "train_seconds": 1})),
     "lacks a valid seconds"),
):  # fmt: skip
    _fn = _damaged_outcome(_change)
    _fn.__name__ = f"collect {_what}"
    case("damaged runs", f"reproduce --collect over {_what}", 2, _text)(_fn)


# --- Phase diagrams on any data set -----------------------------------------------------------


@case("settings", 'phase with dataset = "digits" in a config file', 0, "wrote")
def phase_config_dataset(tmp: Path) -> tuple[Result, str]:
    config = tmp / "phase.toml"
    config.write_text('dataset = "digits"\ngrid = 2\nepochs = 2\n')
    result = invoke("phase", "--config", config, "--out", tmp / "phase", "--device", "cpu")
    stored = json.loads((tmp / "phase" / "phase.json").read_text())
    assert stored["dataset"] == "digits", stored
    return Result(result.code, result.out, result.out), "phase.json stores dataset digits"


@case("settings", "phase --dataset a user's .npy file", 0, "wrote")
def phase_user_dataset(tmp: Path) -> tuple[Result, str]:
    path = tmp / "rows.npy"
    np.save(path, np.random.default_rng(0).random((60, 6)))
    result = invoke("phase", "--dataset", path, *PHASE_FLAGS, "--latent-dim", "2", "--out",
                    tmp / "phase")  # fmt: skip
    summary = json.loads((tmp / "phase" / "summary.json").read_text())
    assert len(summary["points"]) == 4, summary.keys()
    return Result(result.code, result.out, result.out), "four points on the user's rows"


# --- Running the cases -----------------------------------------------------------------------


def run_case(chosen: Case) -> Outcome:
    """Run one case in a fresh temporary folder (and the current directory restored after)."""
    outcome = Outcome(chosen)
    cwd = os.getcwd()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vaecollapse-fault-") as folder:
        try:
            result, checked = chosen.run(Path(folder))
            outcome.code, outcome.checked = result.code, checked
            outcome.message = result.message.replace(str(Path(folder).resolve()), "<tmp>")
            outcome.message = outcome.message.replace(folder, "<tmp>")
            problems = []
            if result.code != chosen.expect_code:
                problems.append(f"exit code {result.code}, expected {chosen.expect_code}")
            if chosen.expect_text not in " ".join((result.err + result.out).split()):
                problems.append(f"the output lacks {chosen.expect_text!r}")
            if "Traceback" in result.err:
                problems.append("a traceback was printed")
            outcome.failure = "; ".join(problems) or None
        except AssertionError as failed:
            outcome.failure = f"check failed: {failed}"
        finally:
            os.chdir(cwd)
    outcome.seconds = time.perf_counter() - started
    return outcome


def markdown(outcomes: list[Outcome]) -> str:
    held = sum(o.as_expected for o in outcomes)
    lines = [
        "# Reliability: fault and bad-input cases",
        "",
        "Generated by `python -m tests.fault_cases --write docs/reliability.md`, which runs every "
        "case below (`tests/test_faults.py` runs the same cases in the test suite). Each case "
        "sets up a situation a user can get into, runs the command line on it and checks the "
        "exit code, the message and what is left on disk. Exit codes: 0 success, 2 bad input "
        "or a refusal (one paragraph on stderr, never a traceback), 130 interrupted.",
        "",
        f"{held} of {len(outcomes)} cases behave as expected.",
        "",
        "## Output folders: whose they are, and links",
        "",
        "Every folder a command writes holds `.vaecollapse-folder.json`, which names its kind "
        "and the command that makes it: a training run (`vaecollapse train`; also the run of "
        "each point of a sweep, a phase diagram, a bench, the demo and a reproduction), a sweep "
        "(`vaecollapse sweep`), a phase diagram (`vaecollapse phase`), a remedy bench "
        "(`vaecollapse remedies`), the demo's output (`vaecollapse demo`), reproductions "
        "(`vaecollapse reproduce`) and records of full reproductions (`vaecollapse reproduce "
        "--collect --record`). A command writes only into an absent or empty folder, or one "
        "of its own kind: a folder of another kind is refused with exit code 2, naming the "
        "kind and the command that writes it; a folder of files vaecollapse did not write, or "
        "whose marker is damaged or a link, is refused the same way, and a stray lock file "
        "does not make a folder vaecollapse's. A folder written before the marker existed is "
        "known by the file its kind writes first (a run's `config.json`, `sweep.json`, "
        "`phase.json`, `remedies.md`, the demo's `summary.json`, a reproduction's entries) "
        "and marked when it is next written. While a command writes, it holds the folder's "
        "`.vaecollapse.lock` (`flock`): one process at a time.",
        "",
        "No file is written through a link: the lock and the marker are opened without "
        "following one (a link there is refused), every other file is written beside its "
        "place and renamed over it, so a link planted there is replaced, never followed, and "
        "what a report embeds or a record copies (figures, `comparison.md`, `result.json`) is "
        "read only as a plain file inside the folder. `tests/test_links.py` plants a link in "
        "place of every file each command writes, to a file outside the folder and to no "
        "file, and checks that nothing outside the folder changes. Links to folders are "
        "followed (a run area may live on another disk).",
        "",
        "## The cases",
        "",
        "| # | group | case | exit | message (the error, else the last line of output) | also "
        "checked | as expected | s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for number, o in enumerate(outcomes, start=1):
        message = textwrap.shorten(o.message, 260, placeholder=" …").replace("|", "\\|")
        verdict = "yes" if o.as_expected else f"**no**: {o.failure}"
        lines.append(
            f"| {number} | {o.case.group} | {o.case.what} | {o.code} | {message} | "
            f"{o.checked} | {verdict} | {o.seconds:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main_script() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="write the markdown table to this file")
    args = parser.parse_args()
    warnings.simplefilter("error")  # as in the test suite: a warning is a defect
    outcomes = []
    for chosen in CASES:
        outcomes.append(run_case(chosen))
        o = outcomes[-1]
        state = "ok" if o.as_expected else f"FAILED ({o.failure})"
        print(f"{len(outcomes):>3} {chosen.name:<45} exit {o.code}  {state}", file=sys.stderr)
    text = markdown(outcomes)
    if args.write:
        args.write.write_text(text, encoding="utf-8")
    else:
        print(text)
    if not all(o.as_expected for o in outcomes):
        sys.exit(1)


if __name__ == "__main__":
    main_script()
