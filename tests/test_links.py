"""No command writes through a link: for each command, a link planted in place of every file it
writes (to a file outside its folder, or to no file) leaves everything outside the folder as it
was; the command replaces the link with its own file, or refuses with exit code 2."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from .fault_cases import (
    LOCK,
    PHASE_FLAGS,
    TINY,
    Result,
    invoke,
    reproduced,
    sweep_file,
    trained,
)

MARKER = ".vaecollapse-folder.json"
OUTSIDE_TEXT = b"the user's own file\n"


@dataclass(frozen=True)
class Command:
    """``args(work)``: the command line, its outputs under the folder ``work``; ``prepare``:
    what must be in ``work`` before it runs (another command's output)."""

    name: str
    args: Callable[[Path], tuple]
    prepare: Callable[[Path], object] = lambda work: None


def _sweep(work: Path, *extra: str) -> tuple:
    return ("sweep", sweep_file(work.parent), "--out", work / "out", "--device", "cpu", *extra)


COMMANDS = [
    Command("train", lambda work: ("train", *TINY, "--epochs", "1", "--out", work / "out")),
    Command(
        "diagnose", lambda work: ("diagnose", work / "out"), lambda work: trained(work / "out")
    ),
    Command("sweep", _sweep),
    Command(
        "sweep --collect",
        lambda work: _sweep(work, "--collect"),
        lambda work: invoke(*_sweep(work)),
    ),
    Command("sweep --run", lambda work: _sweep(work, "--run", "0")),
    Command("phase", lambda work: ("phase", *PHASE_FLAGS, "--out", work / "out")),
    Command(
        "remedies",
        lambda work: (
            "remedies",
            "--remedies",
            "none",
            "--seeds",
            "0",
            "--epochs",
            "1",
            "--iwae-k",
            "2",
            "--out",
            work / "out",
        ),
    ),
    Command("demo", lambda work: ("demo", "--out", work / "out")),
    Command("reproduce", lambda work: ("reproduce", "fig2a", "--quick", "--out", work / "out")),
    Command(
        "reproduce --collect --record",
        lambda work: (
            "reproduce",
            "--collect",
            "--out",
            work / "reproductions",
            "--record",
            work / "records",
        ),
        lambda work: reproduced(work, mode="full"),
    ),
]


def tree(root: Path) -> dict[str, tuple[bytes, int] | str]:
    """Every file and link under ``root``, links not followed: a file's bytes and inode (a file
    written again with the same bytes is a new inode), a link's target."""
    found: dict[str, tuple[bytes, int] | str] = {}
    for folder, dirs, files in os.walk(root):
        for name in files + [d for d in dirs if Path(folder, d).is_symlink()]:
            path = Path(folder, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = os.readlink(path)
            else:
                found[rel] = (path.read_bytes(), path.stat().st_ino)
    return found


def ran(result: Result) -> None:
    """A run ends as promised: success or a refusal, never a bug or a traceback."""
    assert result.code in (0, 2), (result.code, result.err)
    assert "Traceback" not in result.err and "This is a bug" not in result.err, result.err


def first_run(tmp: Path, command: Command) -> tuple[dict, dict]:
    """The command run once on a fresh folder: (what the folder held before, after)."""
    work = tmp / "first"
    work.mkdir()
    command.prepare(work)
    before = tree(work)
    result = invoke(*command.args(work))
    assert result.code == 0, result.err
    return before, tree(work)


def planted(
    tmp: Path, command: Command, before: dict, after: dict, links: dict[str, Path],
    copied: tuple[str, ...] = (MARKER,),
) -> Path:  # fmt: skip
    """A fresh folder prepared as for the first run, holding the first run's files named in
    ``copied`` and a link in place of each file of ``links`` (relative path -> target)."""
    work = tmp / "planted"
    work.mkdir()
    command.prepare(work)
    for rel, content in after.items():
        path = work / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel in links:
            path.unlink(missing_ok=True)
            path.symlink_to(links[rel])
        elif Path(rel).name in copied and rel not in before and isinstance(content, tuple):
            path.write_bytes(content[0])
    return work


def written(before: dict, after: dict) -> list[str]:
    """The files a run wrote (new or changed), its lock files and markers left out."""
    return sorted(
        rel
        for rel, content in after.items()
        if before.get(rel) != content and Path(rel).name not in (LOCK, MARKER)
    )


def outside_files(tmp: Path, names: list[str], existing: bool) -> dict[str, Path]:
    outside = tmp / "outside"
    outside.mkdir(exist_ok=True)
    targets = {}
    for number, rel in enumerate(names):
        target = outside / f"file{number}"
        if existing:
            target.write_bytes(OUTSIDE_TEXT)
        targets[rel] = target
    return targets


def assert_outside_unchanged(tmp: Path, targets: dict[str, Path], existing: bool) -> None:
    outside = sorted(p.name for p in (tmp / "outside").iterdir())
    assert outside == (sorted(t.name for t in targets.values()) if existing else []), outside
    if existing:
        changed = [rel for rel, t in targets.items() if t.read_bytes() != OUTSIDE_TEXT]
        assert not changed, f"written through the link: {changed}"


@pytest.fixture(scope="module", params=COMMANDS, ids=[c.name for c in COMMANDS])
def first(request, tmp_path_factory):
    """Each command's first run, shared by the plantings below."""
    tmp = tmp_path_factory.mktemp(request.param.name.replace(" ", "_"))
    cwd = os.getcwd()
    try:
        yield request.param, *first_run(tmp, request.param)
    finally:
        os.chdir(cwd)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.parametrize("existing", [False, True], ids=["links to no file", "links to files"])
def test_a_link_in_place_of_each_written_file(first, tmp_path, existing) -> None:
    command, before, after = first
    names = written(before, after)
    assert names, "the command wrote nothing"
    targets = outside_files(tmp_path, names, existing)
    work = planted(tmp_path, command, before, after, targets)
    result = invoke(*command.args(work))
    ran(result)
    assert_outside_unchanged(tmp_path, targets, existing)
    if not existing:  # nothing to read through the links: the run goes as the first one did
        assert result.code == 0, result.err
        still = [rel for rel in names if (work / rel).is_symlink()]
        assert not still, f"links left in place of the command's files: {still}"


@pytest.mark.parametrize("which", ["lock", "marker"])
def test_a_link_in_place_of_a_lock_or_marker(first, tmp_path, which) -> None:
    """The first lock the command takes (its own folder's) and its marker, each as a link: the
    command refuses, and the links' targets are unchanged and uncreated."""
    command, before, after = first
    name = LOCK if which == "lock" else MARKER
    places = sorted((rel for rel in after if Path(rel).name == name), key=lambda r: r.count("/"))
    assert places, f"the command left no {name}"
    chosen = places[0]
    for existing in (True, False):
        tmp = tmp_path / str(existing)
        tmp.mkdir()
        targets = outside_files(tmp, [chosen], existing)
        work = planted(tmp, command, before, after, targets, copied=(MARKER,) if name == LOCK
                       else ())  # fmt: skip
        result = invoke(*command.args(work))
        assert result.code == 2, (chosen, result.code, result.err)
        ran(result)
        assert_outside_unchanged(tmp, targets, existing)
