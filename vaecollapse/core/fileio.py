"""Writing files safely: atomic replacement (readers never see a half-written file and a crash keeps
the old one), permissions that follow the user's umask, and the operating system's refusals
(read-only, disk full, permission denied) turned into one-paragraph errors naming the path."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from vaecollapse.core.errors import InputError

_umask_lock = threading.Lock()

# Messages torch's archive writer raises (as RuntimeError) when the disk fills or a write fails.
_TORCH_WRITE_FAILURES = ("PytorchStreamWriter failed", "unexpected pos", "file write failed")


class WriteError(InputError):
    """The operating system refused to write a file (read-only, disk full, no permission)."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"cannot write {self.path}: {reason}.")


def current_umask() -> int:
    """The process's umask (reading it means setting it, so briefly and under a lock)."""
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def os_reason(exc: BaseException) -> str:
    """A short reason for a failed write: the OS's words, or torch's write failure as disk full."""
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            return "no space left on device"
        return exc.strerror or str(exc)
    return "the write failed part-way (disk full?)"


def is_write_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is the operating system refusing a write (directly or through torch)."""
    if isinstance(exc, OSError):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc) for m in _TORCH_WRITE_FAILURES)


def replace_atomically(path: Path, write: Callable[[str], object]) -> None:
    """Write through ``write(temporary_path)`` beside ``path``, then rename it over ``path``. The
    file gets the permissions a plain ``open`` would give (0666 less the umask); a refusal by the
    operating system raises :class:`WriteError` and leaves ``path`` as it was."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as exc:
        raise WriteError(path, os_reason(exc)) from None
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp creates 0600 whatever the umask
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if is_write_failure(exc):
            raise WriteError(path, os_reason(exc)) from None
        raise


def write_text_atomic(path: Path, text: str) -> None:
    replace_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def make_directory(path: Path) -> None:
    """``mkdir -p`` whose refusal names the path and the reason."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"{path} exists and is not a directory; choose another path.") from None
    except OSError as exc:
        raise WriteError(path, os_reason(exc)) from None


def read_regular_file(path: Path, root: Path | None = None) -> bytes:
    """The bytes of ``path``, opened without following a link; a link, a file that is not a plain
    file, or (given ``root``) a file outside ``root`` is an InputError. For what vaecollapse
    copies or embeds from its own folders, where a planted link could reach anyone's file."""
    path = Path(path)
    if path.is_symlink():
        raise InputError(_linked(path, "is a symbolic link"))
    if root is not None and not path.resolve().is_relative_to(Path(root).resolve()):
        raise InputError(_linked(path, f"lies outside {root}"))
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(_linked(path, "is a symbolic link")) from None
        raise InputError(f"cannot read {path}: {os_reason(exc)}.") from None
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise InputError(_linked(path, "is not a regular file"))
        return handle.read()


def _linked(path: Path, what: str) -> str:
    return (
        f"{path} {what}; vaecollapse reads the files it copies or embeds only from its own "
        "folder, never through a link (which could reach files outside it). Replace it with "
        "the file itself, or remove it."
    )


def check_name_lengths(path: str | os.PathLike, what: str) -> None:
    """Refuse a path with a component longer than its file system allows (``what`` names the
    option or argument), before the operating system refuses it part-way."""
    path = Path(path).expanduser()
    anchor = next((p for p in path.absolute().parents if p.exists()), Path("/"))
    try:
        longest = os.pathconf(anchor, "PC_NAME_MAX")
    except (OSError, ValueError):
        longest = 255
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > longest:
            raise InputError(
                f"{what} {shortened(path)} has a name of "
                f"{size} bytes ({part[:24]}…); the file system allows at most {longest}. "
                "Choose a shorter name."
            )


def shortened(text: object, most: int = 120) -> str:
    """``text`` (a path, a message) for quoting: whole, or its start and end around an ellipsis
    when longer than ``most`` characters."""
    text = str(text)
    return text if len(text) <= most else f"{text[: most // 2]}…{text[-most // 3 :]}"
