"""Small C kernels built with the system C compiler and loaded through ``ctypes``.

A consumer's hot loops that numpy cannot express (walking trees, for one) are a few dozen lines
of C. ``ctypes`` loads them in milliseconds, where numba's import and cached-code load took
about a second and 140 MB of LLVM in every consumer, and nothing is compiled at run time in a
read-only image: its build stage runs ``python -m engine.<kernel module>`` where a compiler is
and ships only the library. The library's file name carries a hash of the source and flags, so
an edited kernel is rebuilt rather than a stale one loaded.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

#: No fused multiply-adds, no fast math: every operation rounds as numpy's would, in the source's order.
EXACT_FLAGS = ("-O2", "-std=c11", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math")


def library_path(source: Path, flags: Sequence[str] = EXACT_FLAGS) -> Path:
    """Where ``source``'s library lives: beside it, named by a hash of the source and flags."""
    digest = hashlib.sha256(source.read_bytes() + " ".join(flags).encode()).hexdigest()[:16]
    return source.with_name(f"_{source.stem}-{digest}.so")


def build(source: Path, flags: Sequence[str] = EXACT_FLAGS) -> Path:
    """Compile ``source`` (``$CC``, else ``cc``) unless it is built; atomic, so concurrent builds are safe."""
    path = library_path(source, flags)
    if path.exists():
        return path
    compiler = os.environ.get("CC", "cc")
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        built = Path(scratch) / path.name
        try:
            subprocess.run([compiler, *flags, "-o", str(built), str(source), "-lm"],
                           check=True, capture_output=True, text=True)
        except FileNotFoundError as error:
            raise RuntimeError(f"{path.name} is not built and there is no C compiler ({compiler}); "
                               f"build it where there is one (the image's build stage does)") from error
        except subprocess.CalledProcessError as error:
            raise RuntimeError(f"building {source.name} failed:\n{error.stderr}") from error
        os.replace(built, path)
    return path
