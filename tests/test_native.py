"""C kernels are rebuilt when their source or flags change, and a missing compiler says what to install."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

from engine import native


def answer(source: Path, defines: dict[str, int] | None = None) -> int:
    return native.load(source, {"answer": (ctypes.c_int, [])}, defines).answer()


def test_an_edited_kernel_is_rebuilt_not_loaded_stale(tmp_path: Path) -> None:
    source = tmp_path / "kernel.c"
    source.write_text("int answer(void) { return 41; }\n")
    first = native.library_path(source)
    assert answer(source) == 41 and first.exists()

    source.write_text("int answer(void) { return 42; }\n")
    assert native.library_path(source) != first
    assert answer(source) == 42
    assert list(tmp_path.glob("*.so")) == [native.library_path(source)]  # the stale build is cleared


def test_other_compile_time_constants_are_another_library(tmp_path: Path) -> None:
    source = tmp_path / "kernel.c"
    source.write_text("int answer(void) { return VALUE; }\n")
    assert native.library_path(source, {"VALUE": 1}) != native.library_path(source, {"VALUE": 2})
    assert (answer(source, {"VALUE": 1}), answer(source, {"VALUE": 2})) == (1, 2)


def test_without_a_compiler_the_error_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "kernel.c"
    source.write_text("int answer(void) { return 0; }\n")
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    with pytest.raises(RuntimeError, match="install gcc"):
        native.build(source)
    assert not list(tmp_path.glob("*.so"))  # nothing half-built left behind


def test_a_compile_error_is_reported_with_the_compilers_message(tmp_path: Path) -> None:
    source = tmp_path / "kernel.c"
    source.write_text("int answer(void) { return }\n")
    with pytest.raises(RuntimeError, match=r"building kernel\.c failed"):
        native.build(source)
