"""C kernels: built once under a name that changes with their source; a clear error without a compiler."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

from engine import native


def test_a_kernel_is_built_once_and_rebuilt_under_a_new_name_when_its_source_changes(tmp_path: Path) -> None:
    source = tmp_path / "twice.c"
    source.write_text("long twice(long x) { return 2 * x; }\n")
    built = native.build(source)
    assert built == native.library_path(source) and built.name.startswith("_twice-")
    stamp = built.stat().st_mtime_ns
    assert native.build(source) == built and built.stat().st_mtime_ns == stamp  # not compiled again
    library = ctypes.CDLL(str(built))
    library.twice.restype, library.twice.argtypes = ctypes.c_long, [ctypes.c_long]
    assert library.twice(21) == 42
    source.write_text("long twice(long x) { return x + x; }\n")
    assert native.library_path(source) != built


def test_without_a_compiler_the_error_says_what_to_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "kernel.c"
    source.write_text("int one(void) { return 1; }\n")
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    with pytest.raises(RuntimeError, match=r"_kernel-.*\.so is not built and there is no C compiler"):
        native.build(source)
    source.write_text("this is not C\n")
    monkeypatch.setenv("CC", "cc")
    with pytest.raises(RuntimeError, match=r"building kernel\.c failed"):
        native.build(source)
