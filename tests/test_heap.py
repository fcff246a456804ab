"""A worker's C heap keeps freed memory for its next batch (see engine.heap)."""

from __future__ import annotations

import ctypes.util
import platform

import pytest

from engine.heap import keep_freed_memory


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="mallopt is glibc's")
def test_glibc_takes_the_heap_limits() -> None:
    assert ctypes.util.find_library("c") is not None
    assert keep_freed_memory() is True
