"""2,000 wells on one Kinesis shard through the aws backend on moto: the per-well state no
longer rides in the DynamoDB lease item, so the item stays small whatever the shard carries.

Every well sends three rows (few rows keep it fast; the state's size depends on wells, not
rows), some wells twice (a producer that lost its progress), and the first consumer dies
between a lake write and its checkpoint. Every row must land exactly once, and every lease
item the consumers write — takes, renewals, checkpoints — must fit one DynamoDB write unit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from moto.dynamodb.models import DynamoDBBackend

from engine import codec
from engine.backend import Backend, open_backend
from engine.backends.aws import _kinesis
from engine.config import Settings
from engine.consumer import Consumer, ConsumerOptions
from engine.features import decode_states
from engine.leases import LeaseStore
from engine.schema import OBSERVATION_SCHEMA, SENSOR_COLUMNS, WELL_DATA_TABLE
from engine.stream import OutgoingRecord
from tests.backends import aws_account, fast_kinesis_reads

WELLS = 2_000
ROWS_PER_WELL = 3
START_MS = 1_709_251_200_000  # 2024-03-01 00:00 UTC
#: DynamoDB bills a write unit per KB of item (attribute names and values, rounded up).
WRITE_UNIT_BYTES = 1_024


@pytest.fixture
def backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    fast_kinesis_reads(monkeypatch)
    monkeypatch.setattr(_kinesis, "SHARD_RECORDS_PER_SECOND", 100_000)  # moto has no write limit either
    monkeypatch.setattr(_kinesis, "SHARD_BYTES_PER_SECOND", 1 << 30)
    with aws_account(shard_count=1):
        yield open_backend(Settings(backend="aws", home=tmp_path, shard_count=1))


def well_record(index: int, start_ms: int = START_MS) -> OutgoingRecord:
    well = f"WELL-{index:05d}"
    times = pa.array(start_ms + 1000 * np.arange(ROWS_PER_WELL), pa.int64()).cast(OBSERVATION_SCHEMA.field(
        "event_time").type)
    columns: dict[str, Any] = {"well_id": pa.array([well] * ROWS_PER_WELL), "event_time": times}
    for column in SENSOR_COLUMNS:
        columns[column] = pa.array(np.full(ROWS_PER_WELL, index % 97, np.float32))
    columns["class"] = columns["state"] = pa.nulls(ROWS_PER_WELL, pa.int16())
    return OutgoingRecord(well, codec.encode(pa.table(columns).cast(OBSERVATION_SCHEMA)))


def item_bytes(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it: names plus values (numbers counted as their digits, an upper bound)."""
    return sum(len(name.encode()) + sum(len(str(v).encode()) for v in value.values()) for name, value in item.items())


def test_two_thousand_wells_on_one_shard_land_once_with_a_small_constant_lease_item(
        backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    lease_writes: list[int] = []
    original_put = DynamoDBBackend.put_item

    def recording_put(self: DynamoDBBackend, table_name: str, item_attrs: dict[str, Any], *args: Any,
                      **kwargs: Any) -> Any:
        if item_attrs["lease_key"]["S"].startswith("lease#"):
            lease_writes.append(item_bytes(item_attrs))
        return original_put(self, table_name, item_attrs, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "put_item", recording_put)
    backend.stream.put_records([well_record(i) for i in range(WELLS)])
    backend.stream.put_records([well_record(i) for i in range(0, WELLS, 40)])  # 50 wells sent twice

    real_checkpoint, calls = LeaseStore.checkpoint, {"n": 0}

    def crash_on_third(self: LeaseStore, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise SystemExit("killed after the lake write, before the checkpoint")
        return real_checkpoint(self, *args, **kwargs)

    options = ConsumerOptions(idle_exit_seconds=1.0, poll_seconds=0.05, records_per_read=250)
    monkeypatch.setattr(LeaseStore, "checkpoint", crash_on_third)
    with pytest.raises(SystemExit):
        Consumer(backend, options, worker_id="killed").run(threading.Event())
    monkeypatch.setattr(LeaseStore, "checkpoint", real_checkpoint)
    stats = Consumer(backend, options, worker_id="restarted").run(threading.Event())

    total = WELLS * ROWS_PER_WELL
    counted = backend.sql.query("SELECT count(*) AS n, count(DISTINCT concat(well_id, CAST(event_time AS varchar)))"
                                " AS d FROM well_data")
    assert (int(counted["n"][0]), int(counted["d"][0])) == (total, total)
    assert backend.lake.row_count(WELL_DATA_TABLE) == total
    assert stats.duplicates_dropped == WELLS // 40 * ROWS_PER_WELL
    (lease,) = backend.leases.leases()

    assert len(decode_states(backend.leases.state(lease))) == WELLS  # all 2,000 wells' state, outside the item
    assert len(lease_writes) > 5 and max(lease_writes) <= WRITE_UNIT_BYTES  # takes, renewals, checkpoints alike
    # what varies is the pointer, the sequence number and the pending lake attempt's name (its batch
    # key and, per table, the date partitions it wrote): bounded, whatever the wells
    assert max(lease_writes) - min(lease_writes) < 400
    assert len(lease.pending or "") < 300


def test_wells_idle_longer_than_the_retention_are_forgotten(backend: Backend) -> None:
    options = ConsumerOptions(idle_exit_seconds=0.5, poll_seconds=0.05)
    backend.stream.put_records([well_record(1)])
    Consumer(backend, options).run(threading.Event())
    assert set(decode_states(backend.leases.state(backend.leases.leases()[0]))) == {"WELL-00001"}
    backend.stream.put_records([well_record(2, START_MS + 25 * 3_600_000)])
    Consumer(backend, options).run(threading.Event())
    states = decode_states(backend.leases.state(backend.leases.leases()[0]))
    assert set(states) == {"WELL-00002"}  # WELL-00001's last row is 25 h behind the shard's newest (retention 24 h)
