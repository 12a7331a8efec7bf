"""Run directories and other output directories: who may write into them, and reading back what
they hold without trusting it.

A directory vaecollapse writes into belongs to one process at a time (an exclusive ``flock`` on
``.vaecollapse.lock``, released by the kernel when the process ends, however it ends), and a
directory that holds someone else's files is never written into. Each output folder names its
kind (a run, a sweep, a phase diagram, a bench, the demo, reproductions, records) in
``.vaecollapse-folder.json``, and no command writes into another kind's folder; a lock or marker
that is a link is refused, never followed. Everything read back is validated: JSON must be the
objects we wrote, and checkpoints are loaded with ``weights_only=True`` (tensors and plain
containers only), so a crafted pickle can never run code.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import json
import os
import socket
import stat
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaecollapse.core.data import Dataset, DataSpec
from vaecollapse.core.errors import InputError, first_line
from vaecollapse.core.fileio import (
    WriteError,
    check_name_lengths,
    make_directory,
    os_reason,
    read_regular_file,
    replace_atomically,
    write_text_atomic,
)

LOCK_NAME = ".vaecollapse.lock"
RUN_FORMAT = "vaecollapse-run/1"
# Training settings that do not change the trained model: they may change on resume.
UNDEFINING_SETTINGS = ("epochs", "checkpoint_every", "record_every")
# Every folder vaecollapse writes names its kind in this marker, and only that kind of output
# is written into it: (what the folder holds, the command that makes it).
OWNER_NAME = ".vaecollapse-folder.json"
OWNER_FORMAT = "vaecollapse-folder/1"
FOLDER_KINDS = {
    "run": ("a training run", "vaecollapse train"),
    "sweep": ("a sweep", "vaecollapse sweep"),
    "phase": ("a phase diagram", "vaecollapse phase"),
    "bench": ("a remedy bench", "vaecollapse remedies"),
    "codebook-bench": ("a codebook remedy bench", "vaecollapse codebook-remedies"),
    "demo": ("the demo's output", "vaecollapse demo"),
    "reproduction": ("reproductions of the papers", "vaecollapse reproduce"),
    "records": ("records of full reproductions", "vaecollapse reproduce --collect --record"),
}
# The file each kind writes first, by which a folder written before the marker is known.
DEFINITION_FILES = {"sweep": "sweep.json", "phase": "phase.json", "bench": "remedies.md"}
ENTRY_OUTCOME = "result.json"  # a reproduced entry's folder (vaecollapse reproduce) holds one
EMBEDDED_DATA = "data.npz"  # generated data kept beside the run that was trained on it
CHECKPOINT_KEYS = ("epoch", "model", "optimizer", "torch_rng", "generator", "history")


class RunDirectoryBusyError(InputError):
    """Another process holds the directory's lock."""


def output_path(out: str | os.PathLike | None, option: str = "--out") -> Path:
    """``out`` as a path, refusing an empty name, a name too long for the file system and an
    existing file."""
    if out is None or str(out).strip() == "":
        raise InputError(
            f"{option} is empty; name a directory (it is created if it does not exist)."
        )
    check_name_lengths(out, option)
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path} is a file, not a directory; choose a directory.")
    return path


def is_run_directory(path: Path) -> bool:
    """Whether ``path`` holds a ``config.json`` written by ``vaecollapse train`` (marked by its
    ``format``, or, for runs written before the marker existed, by its train and model tables)."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return False
    try:
        stored = json.loads(config.read_text(encoding="utf-8"))
    except (ValueError, OSError, RecursionError):
        return True  # a damaged run: reading it says so
    return isinstance(stored, dict) and (
        stored.get("format") == RUN_FORMAT or {"train", "model"} <= set(stored)
    )


def _unmarked_kinds(path: Path, entries: list[Path]) -> set[str]:
    """The kinds an unmarked folder of ``entries`` may be, from the files each kind writes (the
    folders written before the ownership marker existed)."""
    names = {p.name for p in entries}
    kinds = set()
    if is_run_directory(path):
        kinds.add("run")
    for kind, definition in DEFINITION_FILES.items():
        if definition in names:
            kinds.add(kind)
    if not kinds and "summary.json" in names:
        kinds.add("demo")
    if "shared-runs" in names or any(
        (p / ENTRY_OUTCOME).is_file() for p in entries if p.is_dir() and not p.is_symlink()
    ):
        kinds |= {"reproduction", "records"}
    return kinds


def check_owner(path: Path, kind: str, option: str) -> None:
    """Refuse (InputError) a folder ``path`` that may not receive output of ``kind``: it holds
    someone else's files, or output another command made."""
    refusal = _owner_refusal(path, kind, option)
    if refusal is not None:
        raise InputError(refusal)


def _owner_refusal(path: Path, kind: str, option: str) -> str | None:
    try:
        entries = [p for p in path.iterdir() if p.name not in (LOCK_NAME, OWNER_NAME)]
    except OSError as exc:
        return f"cannot read {option} {path}: {os_reason(exc)}."
    marker = path / OWNER_NAME
    if os.path.lexists(marker):
        found = _read_marker(marker)
        if found is None:
            return (
                f"{marker} is not a vaecollapse ownership marker (a link, or damaged), so "
                f"vaecollapse does not know whose files {path} holds and writes nothing there. "
                "Choose a new or empty directory."
            )
        if found == kind:
            return None
        return _other_kind(path, found, kind, option)
    if not entries:
        return None
    kinds = _unmarked_kinds(path, entries)
    if kind in kinds:
        return None
    if kinds:
        return _other_kind(path, sorted(kinds)[0], kind, option)
    return (
        f"{option} {path} already holds files that are not {FOLDER_KINDS[kind][0]}; "
        "vaecollapse never writes over them. Choose a new or empty directory."
    )


def _other_kind(path: Path, found: str, kind: str, option: str) -> str:
    what, command = FOLDER_KINDS[found]
    wanted, writer = FOLDER_KINDS[kind]
    return (
        f"{option} {path} holds {what} (the folder `{command}` writes); `{writer}` writes "
        f"{wanted} and never into another kind of folder. Choose a new or empty directory."
    )


def _read_marker(marker: Path) -> str | None:
    """The kind an ownership marker names; None for a link, a damaged file or an unknown kind."""
    try:
        stored = json.loads(read_regular_file(marker).decode("utf-8"))
    except (InputError, OSError, ValueError, RecursionError):
        return None
    if not isinstance(stored, dict) or stored.get("format") != OWNER_FORMAT:
        return None
    kind = stored.get("kind")
    return kind if kind in FOLDER_KINDS else None


def mark_directory(path: Path, kind: str) -> None:
    """Write ``path``'s ownership marker (once; it never changes afterwards)."""
    marker = path / OWNER_NAME
    if not os.path.lexists(marker):
        record = {"format": OWNER_FORMAT, "kind": kind, "command": FOLDER_KINDS[kind][1]}
        write_text_atomic(marker, json.dumps(record) + "\n")


def usable_directory(
    out: str | os.PathLike | None, kind: str = "run", option: str = "--out"
) -> Path:
    """``out`` as a path that may receive output of ``kind`` (a key of ``FOLDER_KINDS``): absent,
    empty, or a folder of that kind. Creates nothing."""
    if kind not in FOLDER_KINDS:
        raise ValueError(f"unknown output kind {kind!r}; one of {', '.join(FOLDER_KINDS)}")
    path = output_path(out, option)
    if path.is_dir():
        check_owner(path, kind, option)
    return path


@contextmanager
def claimed_directory(
    out: str | os.PathLike, kind: str = "run", option: str = "--out"
) -> Iterator[Path]:
    """Create ``out`` if needed, hold its exclusive lock for the ``with`` block and mark it as a
    folder of ``kind``; a folder holding someone else's files, or another kind of output, is
    refused before anything is written."""
    path = usable_directory(out, kind, option)
    make_directory(path)
    with directory_lock(path):
        check_owner(path, kind, option)  # again, now that no one else writes
        mark_directory(path, kind)
        yield path


@contextmanager
def directory_lock(path: Path, shared: bool = False) -> Iterator[None]:
    """Hold ``path``'s lock: exclusive (to write) or ``shared`` (to read while no one writes).
    Refused at once, naming the holder, when another process holds it. The lock file is opened
    without following a link (a link there could point at anyone's file). A shared lock on a
    directory we may not write to is skipped: nothing there can change through us."""
    lock_path = Path(path) / LOCK_NAME
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        descriptor = os.open(lock_path, flags, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(_not_regular(lock_path, "a symbolic link")) from None
        if shared and exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            yield
            return
        raise WriteError(lock_path, os_reason(exc)) from None
    handle = os.fdopen(descriptor, "r+", encoding="utf-8")
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise InputError(_not_regular(lock_path, "not a regular file"))
        try:
            fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read(500).strip() or "another process"
            raise RunDirectoryBusyError(
                f"{path} is in use by {holder}. A directory belongs to one run at a time: wait "
                "for that process to finish (or stop it), or use another directory."
            ) from None
        if not shared:
            handle.seek(0)
            handle.truncate()
            command = " ".join(
                Path(sys.argv[0]).name if i == 0 else a for i, a in enumerate(sys.argv)
            )
            handle.write(
                f"pid {os.getpid()} on {socket.gethostname()} since "
                f"{time.strftime('%Y-%m-%d %H:%M:%S')} ({command})\n"
            )
            handle.flush()
        yield
    finally:
        handle.close()  # releases the lock


def _not_regular(path: Path, what: str) -> str:
    return (
        f"{path} is {what}; vaecollapse writes its lock only as a plain file of its own, so it "
        "changes nothing here. Remove it (it holds nothing of the run), or use another directory."
    )


def read_json_object(path: Path, what: str, fix: str) -> dict[str, Any]:
    """The JSON object in ``path``; a truncated, non-UTF-8 or non-object file is an InputError
    saying ``what`` it should have been and ``fix``."""
    try:
        stored = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {os_reason(exc)}.") from None
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply to read" if isinstance(exc, RecursionError) else str(exc)
        raise InputError(f"{path} is damaged ({reason}); it should hold {what}. {fix}") from None
    if not isinstance(stored, dict):
        raise InputError(f"{path} holds a JSON {type(stored).__name__}, not {what}. {fix}")
    return stored


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """A run's ``config.json``, checked to have the train, model and data tables."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise InputError(f"{run_dir} is not a run directory: it has no config.json.")
    fix = "Re-create the run with `vaecollapse train`, or restore config.json from a copy."
    stored = read_json_object(path, "a run configuration", fix)
    for table in ("train", "model"):
        if not isinstance(stored.get(table), dict):
            raise InputError(f"{path} has no '{table}' table, so it is not a usable run. {fix}")
    if "data" in stored and not isinstance(stored["data"], dict):
        raise InputError(f"{path}: its 'data' entry must be a table. {fix}")
    return stored


def data_record(dataset: Dataset) -> dict[str, Any]:
    """What a run stores of its data: the specification that loads it again, or, for generated
    data, a pointer to the copy :func:`embed_data` keeps in the run directory."""
    if dataset.spec is not None:
        return dataset.spec.to_json()
    return DataSpec(dataset=EMBEDDED_DATA).to_json()


def embed_data(dataset: Dataset, path: Path) -> None:
    """Keep a generated data set's arrays beside the run, as a ``.npz`` user file."""
    arrays = {}
    for suffix, split in (("", dataset.train), ("_test", dataset.test)):
        for key in ("x", "y", "labels"):
            value = None if split is None else getattr(split, key)
            if value is not None:
                arrays[key + suffix] = value.detach().cpu().numpy()

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    replace_atomically(path, write)


def stored_data_spec(run_dir: Path, stored: dict[str, Any]) -> DataSpec:
    """The data specification a run stored; a data set kept in the run directory is found
    there wherever the directory has moved."""
    record = stored.get("data")
    if not isinstance(record, dict) or not ("dataset" in record or "source" in record):
        raise InputError(
            f"{Path(run_dir) / 'config.json'} does not say which data set the run used; give "
            "the data set explicitly (e.g. diagnose_run(..., dataset=load_dataset(NAME)))."
        )
    spec = DataSpec.from_json(record)
    if spec.dataset == EMBEDDED_DATA:
        spec = replace(spec, dataset=str(Path(run_dir) / EMBEDDED_DATA))
    return spec


def guard_definition(path: Path, definition: dict[str, Any], what: str) -> None:
    """Write ``definition`` (JSON) to ``path``, or refuse, changing nothing, when ``path`` holds
    another one (``what`` names it, e.g. "another sweep"). What may change between two calls
    (the epochs) is left out of ``definition`` by the caller."""
    wanted = json.loads(json.dumps(definition))
    if path.exists():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            stored = None
        if stored != wanted:
            raise InputError(
                f"{path.parent} holds {what} ({path}); only the epochs may change when it is run "
                "again. Use another --out."
            )
    write_text_atomic(path, json.dumps(wanted, indent=2) + "\n")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Every epoch record of a ``metrics.jsonl``; a damaged line is an InputError naming it."""
    records = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}.") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("seconds"), (int, float)):
            raise InputError(
                f"{path}, line {number}, is not an epoch record. The file is rewritten from "
                "the run's checkpoint when the run is trained again (run the same command), or "
                "remove the run directory."
            )
        records.append(record)
    return records


def load_tensors(path: Path, what: str) -> Any:
    """``torch.load`` of tensors and plain containers only: a file holding other Python objects
    (which unpickling would run) is refused with an InputError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR):
            raise InputError(f"cannot read {path}: {os_reason(exc)}.") from None
        failure: Exception = exc  # torch reports a damaged archive as an OSError too
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError ...
        failure = exc
    text = str(failure).strip()
    if "weights_only" in text or "Unsupported global" in text:
        reason = (
            "it holds Python objects other than tensors, which vaecollapse never loads because "
            "unpickling them could run code"
        )
    else:
        detail = first_line(failure)
        reason = f"it is truncated or not a PyTorch file ({detail})"
    raise InputError(
        f"{path} is not a usable {what}: {reason}. Delete it and run the training command again "
        "(it resumes from the last good checkpoint, or starts afresh), or use another directory."
    )


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A training checkpoint, checked to hold every entry resume needs."""
    state = load_tensors(path, "checkpoint")
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise InputError(
            f"{path} lacks {', '.join(missing)}, so training cannot resume from it. Remove it "
            "to restart the run, or use another directory."
        )
    epoch, history = state["epoch"], state["history"]
    if not (isinstance(epoch, int) and epoch >= 1 and isinstance(history, list)):
        raise InputError(f"{path} has an invalid epoch count or history; remove it to restart.")
    recorded = [r.get("epoch") if isinstance(r, dict) else None for r in history]
    increasing = all(isinstance(e, int) and e >= 1 for e in recorded) and all(
        a < b for a, b in itertools.pairwise(recorded)
    )
    if not (increasing and recorded and recorded[-1] == epoch):
        raise InputError(
            f"{path} records {epoch} epochs but its history does not end there; remove it to "
            "restart."
        )
    return state


def save_tensors(obj: Any, path: Path) -> None:
    """``torch.save`` of tensors and plain containers, atomically (the old file or the new)."""
    replace_atomically(path, lambda tmp: torch.save(obj, tmp))


def write_metrics(path: Path, records: list[dict[str, Any]]) -> None:
    """A ``metrics.jsonl``: one JSON object per record, atomically."""
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in records))


def run_record(train: Any, device: str, run_config: dict | None, dataset: Dataset) -> dict:
    """What a run's ``config.json`` holds: its training settings (a dataclass) and device, what
    else defines the run (``run_config``: the model's settings) and its data (``data_record``)."""
    return {
        "format": RUN_FORMAT,
        "train": asdict(train) | {"device": device},
        **(run_config or {}),
        "data": data_record(dataset),
    }


def begin_run(
    directory: Path,
    resolved: dict,
    dataset: Dataset,
    epochs: int,
    restore: Callable[[dict[str, Any]], None],
) -> dict[str, Any] | None:
    """Check a claimed run directory against the run about to train in it (``resolved``, a
    ``run_record``), hand its checkpoint to ``restore`` (which loads it, and raises where it does
    not fit) and return it (None for a new run). A run of another configuration (anything but
    the ``UNDEFINING_SETTINGS``, the format marker and where the data files are found), a
    checkpoint that does not fit, or a run already past ``epochs`` is refused before anything
    changes; otherwise ``config.json`` (and a generated data set's copy) is written where it
    changed."""
    wanted = json.loads(json.dumps(resolved, default=str))
    stored = read_run_config(directory) if (directory / "config.json").exists() else None
    if stored is not None and _defining(wanted) != _defining(stored):
        raise InputError(
            f"{directory} holds a run with a different configuration; only --epochs may change "
            "on resume. Use another --out directory."
        )
    checkpoint = directory / "checkpoint.pt"
    state = load_checkpoint(checkpoint) if checkpoint.exists() else None
    done = 0 if state is None else state["epoch"]
    if state is not None:
        restore(state)
    if done > epochs:
        raise InputError(
            f"{directory} holds a run trained {done} epochs, more than the {epochs} asked for; "
            f"nothing was changed. Ask for at least {done} epochs, or use another directory."
        )
    if stored != wanted:
        if resolved["data"]["dataset"] == EMBEDDED_DATA:
            embed_data(dataset, directory / EMBEDDED_DATA)
        write_text_atomic(
            directory / "config.json", json.dumps(resolved, indent=2, default=str) + "\n"
        )
    return state


def _defining(config: dict[str, Any]) -> dict[str, Any]:
    """What of a run's configuration must not change on resume."""
    data = {k: v for k, v in config.get("data", {}).items() if k not in ("data_dir", "verify")}
    train = {k: v for k, v in config["train"].items() if k not in UNDEFINING_SETTINGS}
    return {**{k: v for k, v in config.items() if k != "format"}, "train": train, "data": data}


def completed_epochs(run_dir: Path) -> int:
    """How many epochs the run in ``run_dir`` has completed (0 when it has no checkpoint)."""
    path = Path(run_dir) / "checkpoint.pt"
    return load_checkpoint(path)["epoch"] if path.exists() else 0


def load_state_into(module: torch.nn.Module, state: Any, path: Path) -> None:
    """``module.load_state_dict(state)``, with a mismatch reported as a file from another model."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError, KeyError, AttributeError) as exc:
        detail = first_line(exc)
        raise InputError(
            f"{path} holds the weights of another model ({detail}); it does not belong to this "
            "run's configuration. Remove it or use another directory."
        ) from None
