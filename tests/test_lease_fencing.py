"""Exactly once across lease steals, on every backend: a worker that stalls mid-batch while
another takes its shard and commits never lands its batch when it resumes (the checkpoint's
conditional write fences it), and a batch whose checkpoint succeeded is published once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from engine import codec
from engine.backend import Backend, open_backend
from engine.consumer import Consumer, ConsumerOptions
from engine.readers import to_observations
from engine.schema import WELL_DATA_TABLE
from engine.stream import OutgoingRecord

RECORDS, ROWS_PER_RECORD = 12, 30
ROWS = RECORDS * ROWS_PER_RECORD
LEASE_SECONDS = 0.5
START = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def fill(backend: Backend) -> None:
    """One well's rows, one second apart, in records of 30."""
    times = pd.date_range(START, periods=ROWS, freq="s", tz="UTC")
    for i in range(RECORDS):
        rows = slice(i * ROWS_PER_RECORD, (i + 1) * ROWS_PER_RECORD)
        frame = pd.DataFrame({"well_id": "WELL-00001", "event_time": times[rows],
                              "p_tpt": 1.5e7 + np.arange(ROWS)[rows], "t_tpt": 80.0})
        backend.stream.put_records([OutgoingRecord("WELL-00001", codec.encode(to_observations(frame)))])


def worker(backend: Backend, name: str, records_per_read: int) -> Consumer:
    backend.leases.lease_seconds = LEASE_SECONDS
    return Consumer(backend, ConsumerOptions(records_per_read=records_per_read, poll_seconds=0.05,
                                             idle_exit_seconds=0.3), worker_id=name)


def stall_once(monkeypatch: pytest.MonkeyPatch, target: object, method: str, before: bool,
               meanwhile: Callable[[], object]) -> list[bool]:
    """Make ``target.method`` stall once, before or after doing its work, past the lease time,
    while ``meanwhile`` runs (another worker taking over)."""
    real = getattr(target, method)
    stalled: list[bool] = []

    def stalling(*args: Any, **kwargs: Any) -> Any:
        if not stalled and before:
            stalled.append(True)
            time.sleep(LEASE_SECONDS * 1.2)
            meanwhile()
        result = real(*args, **kwargs)
        if not stalled:
            stalled.append(True)
            time.sleep(LEASE_SECONDS * 1.2)
            meanwhile()
        return result

    monkeypatch.setattr(target, method, stalling)
    return stalled


@pytest.mark.parametrize("stall", ["staged, before its checkpoint", "checkpointed, before publishing"])
def test_a_stalled_owner_resuming_after_a_steal_lands_every_row_once(
        backend: Backend, monkeypatch: pytest.MonkeyPatch, stall: str) -> None:
    fill(backend)
    # Owner a reads 4 records a batch, its successor b 1: their batches from the same checkpoint
    # differ, so a's batch landing after b's would duplicate rows or hide some. b commits 12 batches
    # (enough for a compaction at its shutdown) and releases the shard.
    a = worker(backend, "a", records_per_read=4)
    b = worker(open_backend(backend.settings), "b", records_per_read=1)
    if stall.startswith("staged"):
        stalled = stall_once(monkeypatch, backend.lake, "stage", False, lambda: b.run(threading.Event()))
    else:
        stalled = stall_once(monkeypatch, backend.lake, "publish", True, lambda: b.run(threading.Event()))
    a.run(threading.Event())  # resumes, then finishes the (drained) stream with the released lease
    assert stalled and b.stats.batches >= RECORDS - 4
    counts = backend.sql.query("SELECT count(*) AS n, count(DISTINCT event_time) AS d FROM well_data")
    assert counts.iloc[0].tolist() == [ROWS, ROWS]
    assert backend.lake.row_count(WELL_DATA_TABLE) == ROWS
    (lease,) = [lease for lease in backend.leases.leases() if lease.checkpoint]
    assert backend.stream.backlog(lease.shard_id, lease.checkpoint) == 0
