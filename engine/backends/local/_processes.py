"""Detached engine processes (producer, consumers) of the local backend, tracked in SQLite.

The portal starts ``python -m engine replay`` and ``python -m engine consume`` in sessions of
their own, so they outlive a page reload or a portal restart and ignore the portal's Ctrl-C.
Each is recorded with its pid and creation time: a pid alone could be reused by an unrelated
process after a reboot, the pair cannot. Liveness is asked of the OS (psutil), never assumed,
and rows of processes that died are dropped as they are found. The same database keeps the few
control values (desired consumers, scaling policy) as JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from engine.backends.local._sqlite import Database, transaction
from engine.config import Settings

SCHEMA = """
CREATE TABLE IF NOT EXISTS processes (
    pid INTEGER NOT NULL,
    create_time REAL NOT NULL,
    role TEXT NOT NULL,
    started_at REAL NOT NULL,
    log TEXT NOT NULL,
    cpu_seconds REAL,
    sampled_at REAL,
    cpu_percent REAL,
    PRIMARY KEY (pid, create_time)
);
CREATE TABLE IF NOT EXISTS controls (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
#: The working directory of started processes, where ``python -m engine`` is importable.
_PACKAGE_ROOT = Path(__file__).resolve().parents[3]
#: Shortest window CPU use is measured over.
CPU_WINDOW_SECONDS = 2.0


@dataclass(frozen=True)
class ProcessRecord:
    """One started process: identity (pid + creation time), role, start and its log file."""

    pid: int
    create_time: float
    role: str
    started_at: float
    log: str


class ProcessTable:
    """Start, find and stop the backend's detached processes."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings

    # -- processes ----------------------------------------------------------------------------
    def spawn(self, role: str, arguments: list[str]) -> ProcessRecord:
        """Start ``python -m engine ARGUMENTS`` detached, with output to a log under the home."""
        logs = self._settings.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{role}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}.log"
        with log.open("ab") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "engine", *arguments], stdin=subprocess.DEVNULL, stdout=output,
                stderr=subprocess.STDOUT, cwd=_PACKAGE_ROOT, env=self._environment(), start_new_session=True)
        record = ProcessRecord(process.pid, psutil.Process(process.pid).create_time(), role, time.time(), str(log))
        with transaction(self._db):
            self._db.execute("INSERT INTO processes (pid, create_time, role, started_at, log) VALUES (?, ?, ?, ?, ?)",
                             (record.pid, record.create_time, role, record.started_at, record.log))
        self.put_control(f"{role}.last_log", record.log)
        return record

    def alive(self, role: str) -> list[ProcessRecord]:
        """The role's processes that still run, oldest first; rows of dead ones are dropped."""
        rows = self._db.execute("SELECT pid, create_time, role, started_at, log FROM processes WHERE role = ? "
                                "ORDER BY started_at", (role,)).fetchall()
        records = [ProcessRecord(*row) for row in rows]
        living = [r for r in records if _process(r) is not None]
        self._forget([r for r in records if r not in living])
        return living

    def terminate(self, records: list[ProcessRecord], timeout: float) -> None:
        """SIGTERM (each finishes its step and saves progress), SIGKILL after ``timeout`` seconds."""
        processes = [p for r in records if (p := _process(r)) is not None]
        for process in processes:
            _quietly(process.send_signal, signal.SIGTERM)
        _, stubborn = psutil.wait_procs(processes, timeout=timeout)
        for process in stubborn:
            _quietly(process.kill)
        psutil.wait_procs(stubborn, timeout=5)
        self._forget(records)

    def cpu_percent(self, record: ProcessRecord) -> float | None:
        """CPU use (100 = one core) over the last sampling window of at least :data:`CPU_WINDOW_SECONDS`.

        The first call measures since the process started. Calls closer together than the window
        return the last measurement, so two pages refreshing at once do not read noise.
        """
        process = _process(record)
        if process is None:
            return None
        try:
            times = process.cpu_times()
        except psutil.Error:
            return None
        used, now = times.user + times.system, time.time()
        base_used, base_time, last = self._db.execute(
            "SELECT cpu_seconds, sampled_at, cpu_percent FROM processes WHERE pid = ? AND create_time = ?",
            (record.pid, record.create_time)).fetchone() or (None, None, None)
        if base_time is None:
            base_used, base_time = 0.0, record.create_time
        elapsed = now - base_time
        if elapsed < CPU_WINDOW_SECONDS:
            return last
        percent = 100.0 * max(0.0, used - base_used) / elapsed
        with transaction(self._db):
            self._db.execute("UPDATE processes SET cpu_seconds = ?, sampled_at = ?, cpu_percent = ? "
                             "WHERE pid = ? AND create_time = ?", (used, now, percent, record.pid, record.create_time))
        return percent

    # -- control values ---------------------------------------------------------------------------
    def get_control(self, key: str) -> object | None:
        row = self._db.execute("SELECT value FROM controls WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_control(self, key: str, value: object) -> None:
        with transaction(self._db):
            self._db.execute("INSERT OR REPLACE INTO controls VALUES (?, ?)", (key, json.dumps(value)))

    # -- helpers ------------------------------------------------------------------------------------
    def _forget(self, records: list[ProcessRecord]) -> None:
        if records:
            with transaction(self._db):
                self._db.executemany("DELETE FROM processes WHERE pid = ? AND create_time = ?",
                                     [(r.pid, r.create_time) for r in records])

    def _environment(self) -> dict[str, str]:
        """This process's environment, pointed at the same backend home, stream and consumer group."""
        settings = self._settings
        return {**os.environ, "PETROSTREAM_BACKEND": "local",
                "PETROSTREAM_HOME": str(settings.home), "PETROSTREAM_SHARDS": str(settings.shard_count),
                "PETROSTREAM_APPLICATION": settings.application}


def _process(record: ProcessRecord) -> psutil.Process | None:
    """The live process a record names, or None (gone, reused pid, or a zombie, which is reaped)."""
    try:
        process = psutil.Process(record.pid)
        if abs(process.create_time() - record.create_time) > 0.05:
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            _reap(record.pid)
            return None
        return process
    except psutil.Error:
        return None


def _reap(pid: int) -> None:
    """Collect the exit status of a child of this process (the portal that started it)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _quietly(action: Callable[..., object], *args: object) -> None:
    """Signal a process that may have exited meanwhile."""
    with contextlib.suppress(psutil.Error):
        action(*args)
