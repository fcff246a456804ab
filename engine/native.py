"""Small C kernels next to their Python callers: built with the system compiler, loaded with ``ctypes``.

One place for what every kernel needs: the library is named by a hash of its source and
compiler flags, so an edited kernel is rebuilt instead of a stale one loaded; it is built into
a scratch directory and renamed into place, so processes building at once (``pytest -n 2``,
workers) never load half a file; and a machine without a compiler gets one line saying what to
install. The image builds every kernel in its build stage (``python -m engine.native``), as its
runtime has neither a compiler nor a writable code directory.

The flags keep floating point exact (``-ffp-contract=off``, no fast math): a kernel that
replaces numpy code has to round as numpy's element-wise operations do.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

FLAGS = ("-O2", "-std=c11", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math")
#: Modules that load a kernel at import; ``python -m engine.native`` builds each of them.
KERNEL_MODULES = ("engine.feature_kernel", "engine.tree_walk")


def library_path(source: Path, defines: Mapping[str, int] | None = None) -> Path:
    """Where ``source``'s library lives: beside it, named by a hash of the source and flags."""
    flags = _flags(defines)
    digest = hashlib.sha256(source.read_bytes() + " ".join(flags).encode()).hexdigest()[:16]
    return source.with_name(f"_{source.stem}-{digest}.so")


def build(source: Path, defines: Mapping[str, int] | None = None) -> Path:
    """Compile ``source`` (``$CC``, else ``cc``) unless its library for these flags exists; its path."""
    path = library_path(source, defines)
    if path.exists():
        return path
    compiler = os.environ.get("CC", "cc")
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        built = Path(scratch) / path.name
        try:
            subprocess.run([compiler, *_flags(defines), "-o", str(built), str(source), "-lm"],
                           check=True, capture_output=True, text=True)
        except FileNotFoundError as error:
            raise RuntimeError(f"no C compiler ({compiler}) to build {source.name}: install gcc and libc6-dev "
                               "(Debian: `make system-deps`), or set CC") from error
        except subprocess.CalledProcessError as error:
            raise RuntimeError(f"building {source.name} failed:\n{error.stderr}") from error
        os.replace(built, path)
    for stale in path.parent.glob(f"_{source.stem}-*.so"):  # builds of earlier versions (a process
        if stale != path:                                   # still using one keeps its mapping)
            with contextlib.suppress(OSError):
                stale.unlink()
    return path


def load(source: Path, signatures: Mapping[str, tuple[object, list[object]]],
         defines: Mapping[str, int] | None = None) -> ctypes.CDLL:
    """The built library of ``source``, each function in ``signatures`` given its ``(restype, argtypes)``."""
    library = ctypes.CDLL(str(build(source, defines)))
    for name, (result, arguments) in signatures.items():
        function = getattr(library, name)
        function.restype, function.argtypes = result, arguments
    return library


def _flags(defines: Mapping[str, int] | None) -> list[str]:
    return [*FLAGS, *(f"-D{name}={value}" for name, value in (defines or {}).items())]


if __name__ == "__main__":  # the image's build step: every kernel, where a compiler is
    for module in KERNEL_MODULES:
        importlib.import_module(module)
    sys.stdout.write("built: " + ", ".join(sorted(p.name for p in Path(__file__).parent.glob("_*.so"))) + "\n")
