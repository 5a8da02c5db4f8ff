"""Allocator tuning for the codec's large temporary arrays.

glibc serves allocations above 128 KiB with fresh mmap()s and returns freed heap tops to
the kernel at once, so every numpy temporary of a batch costs page faults (measured:
about a quarter of the encoder's CPU time). Raising both thresholds keeps those pages
in the process for reuse. Memory stays bounded by the largest batch the codecs make.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's maximum on 64-bit
TRIM_THRESHOLD = 64 << 20


def tune_allocator() -> bool:
    """Apply the thresholds; False where the C library has no mallopt (not glibc)."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    return mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
