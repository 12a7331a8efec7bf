"""How this process's C allocator treats large blocks: kept for reuse rather than handed back.

A training step on a CPU allocates its activations and gradients anew (tens of MB for a batch
of MLPs) and frees them at its end. glibc's malloc maps blocks above a threshold (128 KiB at
first, adapting up to 32 MiB) as fresh pages and unmaps them when freed, so every step pays the
kernel to fault in and zero them again. Raising the mapping and trimming thresholds serves such
blocks from the heap and keeps freed memory for the next step, at the cost of holding the
process's peak memory until it exits; benchmarks/freed_memory.py measures what that saves
(docs/benchmarks/freed-memory.md).
"""

from __future__ import annotations

import ctypes
import os
import sys

# mallopt's parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_KEEP_BYTES = 1 << 30  # blocks up to 1 GiB come from the heap; up to 1 GiB of free heap is kept
# a user's own allocator settings win: glibc's tunables, or another allocator preloaded
_USER_SETTINGS = (
    "GLIBC_TUNABLES",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "LD_PRELOAD",
)


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep large freed blocks for reuse (see the module's docstring).
    Returns whether it applied: not off Linux, not where glibc is absent, and not where the
    environment already sets allocator tunables or preloads another allocator. The command line
    and its worker processes call it; a Python program training on the CPU may call it once."""
    if not sys.platform.startswith("linux") or any(os.environ.get(v) for v in _USER_SETTINGS):
        return False
    try:  # the process's own symbols: the C library it runs on, without a search at start-up
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # C libraries without mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES)
    )
