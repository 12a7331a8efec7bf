"""What fits in this machine's memory: sizes a user's file or settings imply, refused with a
message naming them before anything that large is allocated (an allocator's failure part-way
would name neither)."""

from __future__ import annotations

import os

from vaecollapse.core.errors import InputError


def available_memory() -> int:
    """Bytes of memory free for this process now: Linux's MemAvailable, else the physical total."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 1 << 62  # nothing to go by: refuse nothing


def readable_size(size: float) -> str:
    """``size`` bytes in words, e.g. ``4.0 GB``."""
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if size < 1000 or unit == "PB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def check_fits(size: int, what: str, fix: str) -> None:
    """Refuse ``size`` bytes (``what`` needs them, e.g. "the model's weights and optimizer
    state") when the machine has less memory free; ``fix`` says what to change."""
    free = available_memory()
    if size > free:
        raise InputError(
            f"{what} would need {readable_size(size)} of memory; this machine has "
            f"{readable_size(free)} free. {fix}"
        )
