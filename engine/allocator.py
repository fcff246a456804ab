"""Arrow's allocator for the engine's processes: jemalloc on Linux, not pyarrow's default mimalloc.

mimalloc commits its arenas eagerly: a consumer that lands half a million rows spends 0.2–0.8 s
more in the kernel, faulting in fresh memory, and peaks some 70 MB higher than with jemalloc,
for the same work (docs/BENCHMARKS.md, issue 14). Arrow reads its choice from
``ARROW_DEFAULT_MEMORY_POOL`` once, when it first allocates, so this runs before anything
imports pyarrow (``python -m engine`` does it first; its worker processes inherit it). A value
already set is an operator's choice and wins. x86_64 Linux only: pyarrow's x86_64 Linux
wheels carry jemalloc, while its arm64 wheels (the Fargate image's platform) have been built
without it since Arrow 18 (apache/arrow#44380), and asking a build without it prints a
warning on every start before falling back to mimalloc.
"""

from __future__ import annotations

import os
import platform
import sys


def prefer_jemalloc() -> None:
    """Ask Arrow for jemalloc, unless the environment already names an allocator."""
    if sys.platform == "linux" and platform.machine() == "x86_64":
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
