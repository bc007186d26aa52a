"""Large photos and the C allocator: keep freed memory for reuse.

A 12 MP photo in single precision is 48 MB per plane, and protecting or
inspecting one creates and frees a few hundred such arrays. glibc's malloc
serves every block that large with a fresh ``mmap`` and returns it on ``free``,
so each new array first page-faults through all of its memory: at 12 MP that
costs more than the arithmetic. :func:`keep_freed_memory` tells glibc to serve
large blocks from its heap and keep freed memory there, so the next array
reuses pages already mapped. The process keeps its peak memory until it exits
(``clrnet bench`` reports the peak either way). The command line, the web
server and the batch workers call it; a Python program that handles large
photos may call it once at start. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4

_done = False


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory mapped for reuse (once per process). True if it did."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1))
    return _done
