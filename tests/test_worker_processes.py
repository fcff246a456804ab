"""``consume --workers N``: the parent starts light, and each worker's thread pools get its share of the cores."""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine import cli
from engine.worker_environment import worker_environment

REPO = Path(__file__).resolve().parents[1]


def test_two_workers_on_two_cores_get_one_pool_thread_each() -> None:
    child = worker_environment({"PATH": "/bin", "PETROSTREAM_HEALTH_PORT": "8080"}, workers=2, cores=2)
    assert child == {"PATH": "/bin", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


@pytest.mark.parametrize(("workers", "cores", "threads"),
                         [(2, 8, "4"), (3, 8, "2"), (3, 2, "1"), (1, 4, "4"), (2, None, "1")])
def test_a_worker_gets_its_share_of_the_cores_and_at_least_one(workers: int, cores: int | None, threads: str) -> None:
    child = worker_environment({}, workers=workers, cores=cores)
    assert child["OMP_NUM_THREADS"] == child["OPENBLAS_NUM_THREADS"] == threads


def test_an_operator_setting_wins() -> None:
    child = worker_environment({"OMP_NUM_THREADS": "3"}, workers=2, cores=2)
    assert child["OMP_NUM_THREADS"] == "3"
    assert child["OPENBLAS_NUM_THREADS"] == "1"


def test_arrow_sizes_its_cpu_pool_by_the_variable() -> None:
    """The mechanism itself, on the installed pyarrow: it reads the variable as it loads."""
    environment = worker_environment({"PATH": "/usr/bin:/bin"}, workers=2, cores=2)
    out = subprocess.run([sys.executable, "-c", "import pyarrow; print(pyarrow.cpu_count())"],
                         env=environment, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


def test_the_workers_are_started_with_that_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[dict[str, str]] = []

    class Child:
        def __init__(self, command: list[str], env: dict[str, str]) -> None:
            assert command[-4:] == ["--workers", "1", "--exit-when-idle", "0.5"]
            started.append(env)

        def wait(self) -> int:
            return 0

    monkeypatch.setattr(cli.subprocess, "Popen", Child)
    monkeypatch.setattr(cli.os, "cpu_count", lambda: 2)
    monkeypatch.setenv("PETROSTREAM_HEALTH_PORT", "8080")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(cli, "_stop_on_signals", threading.Event)
    assert cli._run_worker_processes(argparse.Namespace(workers=2, exit_when_idle=0.5)) == 0
    assert len(started) == 2
    assert all(env["OMP_NUM_THREADS"] == "1" and "PETROSTREAM_HEALTH_PORT" not in env for env in started)


def test_the_command_line_loads_without_numpy_or_pyarrow() -> None:
    """The parent of ``consume --workers N`` only starts and waits for its workers: importing the
    array libraries there (0.2 s) delayed every worker's start and took a core from them."""
    code = ("import sys, engine.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'pyarrow', 'pandas', 'duckdb')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
