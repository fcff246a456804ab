"""The C heap of a long-running worker: freed memory kept for the next batch, not returned at once.

Every micro-batch allocates the same few megabytes of NumPy arrays (a slice's sensor values,
deviations, features, leaf sums) and frees them again. With glibc's defaults an allocation of
more than 128 KiB (up to a threshold that adapts to about 32 MiB) is a fresh ``mmap`` and the
top of the heap is handed back to the system once more than twice that is free, so the next
batch pays a page fault and the kernel's zeroing for every 4 KiB page it touches again: some
40,000 faults over half a million rows, a tenth of the time spent scoring them. With both limits
fixed above a batch's arrays, the pages stay in the process and are reused. The peak is
unchanged (the same arrays are alive at once); the process merely keeps up to
:data:`TRIM_BYTES` it could have returned between batches.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("petrostream.heap")

#: ``mallopt`` parameters (glibc's ``malloc.h``).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Allocations up to this size come from the heap, whose freed pages are reused: well above a
#: slice's largest array (8,192 rows x 27 deviations x 8 bytes, 1.7 MiB) and a batch's columns.
MMAP_BYTES = 32 * 2**20
#: Free bytes at the top of the heap kept rather than handed back to the system.
TRIM_BYTES = 64 * 2**20


def keep_freed_memory() -> bool:
    """Set the C heap's limits for a worker (glibc only: elsewhere nothing changes); whether they were set."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_BYTES))
    if not done:
        log.debug("the C library refused the heap limits; keeping its defaults")
    return done
