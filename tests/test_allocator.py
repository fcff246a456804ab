"""The engine's processes allocate Arrow memory from jemalloc, unless the environment says otherwise."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

SHOW_POOL = ("from engine.allocator import prefer_jemalloc; prefer_jemalloc(); "
             "import pyarrow as pa; print(pa.default_memory_pool().backend_name)")


def _pool(**environment: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"} | environment
    return subprocess.run([sys.executable, "-c", SHOW_POOL], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64",
                    reason="jemalloc is asked for on x86_64 Linux only (pyarrow's arm64 wheels lack it)")
def test_a_process_allocates_from_jemalloc_unless_the_environment_names_another_pool() -> None:
    assert _pool() == "jemalloc"
    assert _pool(ARROW_DEFAULT_MEMORY_POOL="system") == "system"
