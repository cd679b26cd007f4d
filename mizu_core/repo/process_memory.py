"""This process's memory as Linux reports it: what it maps of a file, giving mapped pages
back (madvise), and its private resident memory (what bounds a publish's batches)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable


def mapped_ranges(path: str) -> list[tuple[int, int]]:
    """The address ranges where this process maps `path` (Linux; none elsewhere)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            spans = [line.split()[0] for line in maps if line.rstrip().endswith(path)]
    except OSError:
        return []
    return [(int(a, 16), int(b, 16)) for a, b in (span.split("-") for span in spans)]


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def private_memory() -> int:
    """This process's resident private memory in bytes, where LMDB keeps the pages a write
    transaction changes until it commits (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            _, resident, shared, *_ = statm.read().split()
    except (OSError, ValueError):
        return 0
    return (int(resident) - int(shared)) * _PAGE


@functools.lru_cache(maxsize=1)
def _madvise() -> Callable[[int, int, int], int]:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return libc.madvise


def release_ranges(ranges: list[tuple[int, int]]) -> None:
    madvise = _madvise()
    for start, end in ranges:
        madvise(start, end - start, 4)  # MADV_DONTNEED
