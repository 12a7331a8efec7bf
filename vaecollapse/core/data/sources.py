"""Where data set files come from: known checksums, search order, verified download into the cache.

Search order for a data set ``name`` (first folder holding every file wins):

1. an explicit directory (``data_dir`` / ``--data-dir``): the files themselves or ``<dir>/<name>/``;
2. ``$VAECOLLAPSE_DATA/<name>/``;
3. the user cache ``~/.cache/vaecollapse/<name>/`` (``$XDG_CACHE_HOME`` honoured);
4. system folders (Debian's ``/usr/share/datasets/fashion-mnist/`` for Fashion-MNIST);
5. a download from the canonical mirrors into the cache, each file md5-verified before it is kept.

Set ``VAECOLLAPSE_OFFLINE=1`` to never download.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from vaecollapse.core.errors import DataNotFoundError
from vaecollapse.core.fileio import replace_atomically

DOWNLOAD_TIMEOUT_S = 30


@dataclass(frozen=True)
class KnownFile:
    """One file of an official release.

    ``md5`` is the checksum of the distributed file; ``payload_md5`` (gzip files only) is the
    checksum of its decompressed content, so that re-compressed copies (Debian re-packs
    Fashion-MNIST) verify too.
    """

    name: str
    md5: str
    payload_md5: str | None = None


@dataclass(frozen=True)
class Release:
    """The files of one data set and where to find or fetch them."""

    name: str
    files: tuple[KnownFile, ...]
    mirrors: tuple[str, ...]
    system_dirs: tuple[Path, ...] = ()
    # Releases shipped as one archive (CIFAR-10): fetched whole, then unpacked into the cache.
    archive: KnownFile | None = None
    archive_member_dir: str | None = None
    file_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "file_names", tuple(f.name for f in self.files))

    def known(self, file_name: str) -> KnownFile:
        return next(f for f in self.files if f.name == file_name)


RELEASES: dict[str, Release] = {
    "mnist": Release(
        name="mnist",
        files=(
            KnownFile(
                "train-images-idx3-ubyte.gz",
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "6bbc9ace898e44ae57da46a324031adb",
            ),
            KnownFile(
                "train-labels-idx1-ubyte.gz",
                "d53e105ee54ea40749a09fcbcd1e9432",
                "a25bea736e30d166cdddb491f175f624",
            ),
            KnownFile(
                "t10k-images-idx3-ubyte.gz",
                "9fb629c4189551a2d022fa330f9573f3",
                "2646ac647ad5339dbf082846283269ea",
            ),
            KnownFile(
                "t10k-labels-idx1-ubyte.gz",
                "ec29112dd5afa0611ce80d1b7f02629c",
                "27ae3e4e09519cfbb04c329615203637",
            ),
        ),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
    ),
    "fashion-mnist": Release(
        name="fashion-mnist",
        files=(
            KnownFile(
                "train-images-idx3-ubyte.gz",
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            ),
            KnownFile(
                "train-labels-idx1-ubyte.gz",
                "25c81989df183df01b3e8a0aad5dffbe",
                "9018921c3c673c538a1fc5bad174d6f9",
            ),
            KnownFile(
                "t10k-images-idx3-ubyte.gz",
                "bef4ecab320f06d8554ea6380940ec79",
                "8181f5470baa50b63fa0f6fddb340f0a",
            ),
            KnownFile(
                "t10k-labels-idx1-ubyte.gz",
                "bb300cfdad3c16e7a12a480ee83cd310",
                "15d484375f8d13e6eb1aabb0c3f46965",
            ),
        ),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
    ),
    "cifar-10-batches-py": Release(
        name="cifar-10-batches-py",
        files=(
            KnownFile("data_batch_1", "c99cafc152244af753f735de768cd75f"),
            KnownFile("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
            KnownFile("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
            KnownFile("data_batch_4", "634d18415352ddfa80567beed471001a"),
            KnownFile("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
            KnownFile("test_batch", "40351d587109b95175f43aff81a1287e"),
        ),
        mirrors=("https://www.cs.toronto.edu/~kriz/",),
        archive=KnownFile("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
        archive_member_dir="cifar-10-batches-py",
    ),
}


def md5_of_bytes(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def md5_of_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vaecollapse"


def candidate_dirs(release: Release, data_dir: str | os.PathLike | None) -> list[tuple[Path, str]]:
    """Folders to search, in order, each with a label saying why it was searched."""
    found: list[tuple[Path, str]] = []
    if data_dir is not None:
        root = Path(data_dir).expanduser().resolve()
        found += [(root / release.name, "--data-dir"), (root, "--data-dir")]
    env_root = os.environ.get("VAECOLLAPSE_DATA")
    if env_root:
        found.append((Path(env_root).expanduser().resolve() / release.name, "$VAECOLLAPSE_DATA"))
    found.append((cache_root() / release.name, "user cache"))
    found += [(path, "system data set package") for path in release.system_dirs]
    return found


@dataclass(frozen=True)
class Located:
    directory: Path
    found_via: str  # e.g. "$VAECOLLAPSE_DATA", "download"


def locate(release: Release, data_dir: str | os.PathLike | None = None) -> Located:
    """Find the folder holding every file of ``release``, downloading into the cache if needed."""
    searched = candidate_dirs(release, data_dir)
    for directory, why in searched:
        if all((directory / name).is_file() for name in release.file_names):
            return Located(directory, why)
    target = cache_root() / release.name
    if os.environ.get("VAECOLLAPSE_OFFLINE", "") not in ("", "0"):
        raise _not_found(release, searched, "downloads are disabled by VAECOLLAPSE_OFFLINE")
    try:
        download(release, target)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise _not_found(release, searched, f"the download failed ({_reason(exc)})") from None
    return Located(target, "download")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        return f"no network: {exc.reason}"
    return str(exc)


def _not_found(release: Release, searched: list[tuple[Path, str]], why: str) -> DataNotFoundError:
    places = "; ".join(f"{path} ({label})" for path, label in searched)
    if release.archive:
        names = f"the files of {release.archive.name} ({', '.join(release.file_names)})"
    else:
        names = ", ".join(release.file_names)
    return DataNotFoundError(
        f"Data set '{release.name}' was not found and {why}. Looked in: {places}. "
        f"To supply it, put {names} into one of those folders: for example set "
        f"VAECOLLAPSE_DATA=/path/to/data with the files under /path/to/data/{release.name}/, or "
        f"pass --data-dir DIR. Official copies are at {release.mirrors[0]}; each file is checked "
        "against its known md5 on first use."
    )


def download(release: Release, target: Path) -> None:
    """Fetch ``release`` into ``target`` from the first mirror that answers; atomic per file."""
    target.mkdir(parents=True, exist_ok=True)
    if release.archive is not None:
        archive_path = _fetch_verified(release.archive, release.mirrors, target.parent)
        _unpack(archive_path, release, target)
        archive_path.unlink()
        return
    for known in release.files:
        if not (target / known.name).is_file():
            _fetch_verified(known, release.mirrors, target)


def _fetch_verified(known: KnownFile, mirrors: tuple[str, ...], directory: Path) -> Path:
    errors = []
    for mirror in mirrors:
        url = mirror + known.name
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                payload = response.read()
        except (OSError, urllib.error.URLError) as exc:
            errors.append(f"{url}: {_reason(exc)}")
            continue
        if md5_of_bytes(payload) != known.md5:
            errors.append(f"{url}: md5 mismatch")
            continue
        final = directory / known.name
        replace_atomically(final, lambda tmp, data=payload: Path(tmp).write_bytes(data))
        return final
    raise OSError("; ".join(errors))


def _unpack(archive_path: Path, release: Release, target: Path) -> None:
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".unpack-"))
    try:
        with tarfile.open(archive_path, "r:gz") as archive:
            archive.extractall(staging, filter="data")
        unpacked = staging / (release.archive_member_dir or "")
        for name in release.file_names:
            os.replace(unpacked / name, target / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
