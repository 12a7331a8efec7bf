"""keep_freed_memory: glibc serves large blocks from its heap, unless the user chose otherwise."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from vaecollapse.core.memory import keep_freed_memory

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# in a fresh process (the setting is process-wide): how many bytes of a 64 MiB malloc glibc
# mapped apart from its heap, as mallinfo2 counts them
MAPPED_BYTES = """
import ctypes, sys
from vaecollapse.core.memory import keep_freed_memory
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
applied = keep_freed_memory() if sys.argv[1] == "keep" else False
before = libc.mallinfo2().hblkhd
block = libc.malloc(64 << 20)
print(applied, libc.mallinfo2().hblkhd - before)
"""


def _mapped_bytes(mode: str) -> tuple[str, int]:
    unset = {name: "" for name in ("LD_PRELOAD", "GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_")}
    out = subprocess.run(
        [sys.executable, "-c", MAPPED_BYTES, mode], check=True, capture_output=True, text=True,
        env=os.environ | unset,
    ).stdout.split()  # fmt: skip
    return out[0], int(out[1])


@pytest.mark.skipif(not GLIBC, reason="the setting is glibc's")
def test_a_large_block_comes_from_the_heap_once_freed_memory_is_kept():
    applied, mapped = _mapped_bytes("default")
    assert mapped >= 64 << 20  # glibc's default maps a block this large on its own
    applied, mapped = _mapped_bytes("keep")
    assert applied == "True" and mapped == 0


@pytest.mark.parametrize(
    "variable, value",
    [
        ("LD_PRELOAD", "libjemalloc.so.2"),
        ("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=65536"),
        ("MALLOC_MMAP_THRESHOLD_", "65536"),
        ("MALLOC_TRIM_THRESHOLD_", "65536"),
    ],
)
def test_the_users_own_allocator_settings_are_left_alone(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    assert keep_freed_memory() is False
