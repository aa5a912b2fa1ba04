"""Giving the memory a finished job freed back to the operating system.

glibc's allocator keeps the heap pages a job has freed for later reuse, so a bot's resident
size stays near the peak of its biggest job all week. ``malloc_trim`` returns the wholly free
pages: after the weekly job over ten thousand learners and a million contributions, resident
memory measured 176–182 MB with it against 198 MB without (the rest is libraries, connection
caches and partly used pages). Where there is no glibc (macOS, musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import sys

log = logging.getLogger(__name__)


@functools.cache
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        log.debug("malloc_trim is not available; freed memory stays with the process")
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """Hand freed heap pages back to the OS; False where that is not possible.

    Safe from any thread (glibc locks each arena while trimming it), and ctypes lets go of
    the GIL for the call, so callers run it in a worker thread.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
