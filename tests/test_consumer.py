"""The consumer in-process on the local backend: poison records, the crash window, model swaps."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pytest

from engine import codec
from engine.backend import Backend, open_backend
from engine.backends.local import _stream as local_stream
from engine.config import Settings
from engine.consumer import Consumer, ConsumerOptions, batch_key, is_final
from engine.leases import LeaseStore
from engine.producer import Producer, ReplayOptions, count_rows
from engine.readers import discover, read_instance
from engine.schema import DEAD_LETTERS_TABLE, WELL_DATA_TABLE
from engine.stream import OutgoingRecord
from ml.train_model import train
from tests.polling import wait_for
from tests.test_codec import broken_frame

DRAIN = ConsumerOptions(idle_exit_seconds=0.5, poll_seconds=0.05, records_per_read=3)


@pytest.fixture(scope="module")
def model_artifact(demo_dir: Path) -> tuple[bytes, dict[str, object]]:
    return train([demo_dir])


@pytest.fixture
def local(tmp_path: Path, model_artifact: tuple[bytes, dict[str, object]]) -> Backend:
    backend = open_backend(Settings(home=tmp_path, shard_count=2))
    backend.models.publish(*model_artifact)
    return backend


def replay(backend: Backend, data: Path, max_rows: int | None = None) -> int:
    return Producer(backend, discover([data]), ReplayOptions(speed=0, max_rows=max_rows,
                                                             rows_per_record=1000)).run(threading.Event()).sent_rows


def distinct_and_total(backend: Backend) -> tuple[int, int]:
    frame = backend.sql.query("SELECT count(*) AS n, count(DISTINCT concat(well_id, CAST(event_time AS varchar))) "
                              "AS d FROM well_data")
    return int(frame.iloc[0]["d"]), int(frame.iloc[0]["n"])


def test_a_poison_record_goes_to_dead_letters_and_the_rest_flows(local: Backend, demo_dir: Path) -> None:
    sent = replay(local, demo_dir)
    local.stream.put_records([OutgoingRecord("WELL-00001", b"\x01not parquet at all")])
    local.stream.put_records([OutgoingRecord("WELL-00002", b"\x07unknown format")])
    stats = Consumer(local, DRAIN).run(threading.Event())
    assert stats.dead_letters == 2
    assert distinct_and_total(local) == (sent, sent)
    letters = local.sql.query("SELECT partition_key, reason FROM dead_letters ORDER BY partition_key")
    assert letters["partition_key"].tolist() == ["WELL-00001", "WELL-00002"]
    assert "corrupt record" in letters["reason"][0] and "format version" in letters["reason"][1]


def test_a_crash_between_lake_write_and_checkpoint_is_redone_exactly_once(
        local: Backend, demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = replay(local, demo_dir)
    real_checkpoint = LeaseStore.checkpoint
    calls = {"n": 0}

    def crash_on_third(self: LeaseStore, *args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 3:
            raise SystemExit("simulated crash after the lake write, before the checkpoint")
        return real_checkpoint(self, *args, **kwargs)

    monkeypatch.setattr(LeaseStore, "checkpoint", crash_on_third)
    with pytest.raises(SystemExit):
        Consumer(local, DRAIN, worker_id="crashing").run(threading.Event())
    monkeypatch.setattr(LeaseStore, "checkpoint", real_checkpoint)
    assert 0 < local.lake.row_count(WELL_DATA_TABLE) < sent
    Consumer(local, DRAIN, worker_id="restarted").run(threading.Event())
    assert distinct_and_total(local) == (sent, sent)


def test_rows_sent_twice_by_the_producer_land_once(local: Backend, demo_dir: Path) -> None:
    sent = replay(local, demo_dir)
    local.replays.save(replace(local.replays.latest(), watermarks={}, sent_rows=0))
    assert replay(local, demo_dir) == sent  # the producer forgot its progress and sent everything again
    stats = Consumer(local, DRAIN).run(threading.Event())
    assert stats.duplicates_dropped == sent
    assert distinct_and_total(local) == (sent, sent)


def test_a_new_model_version_is_picked_up_without_restart_and_a_tampered_one_refused(
        local: Backend, demo_dir: Path, model_artifact: tuple[bytes, dict[str, object]]) -> None:
    first = local.models.active_version()
    options = ConsumerOptions(poll_seconds=0.05, model_poll_seconds=0.1)
    consumer = Consumer(local, options)
    stop = threading.Event()
    worker = threading.Thread(target=consumer.run, args=(stop,))
    worker.start()
    try:
        replay(local, demo_dir, max_rows=5000)
        wait_for(lambda: local.lake.row_count(WELL_DATA_TABLE) == 5000)
        time.sleep(1.1)  # versions are stamped to the second
        second = local.models.publish(*model_artifact)
        wait_for(lambda: consumer.stats.model_version == second)
        time.sleep(1.1)
        third = local.models.publish(*model_artifact, activate=False)
        (local.settings.home / "models" / third / "model.joblib").write_bytes(b"tampered")
        local.models.activate(third)
        time.sleep(0.5)
        assert consumer.stats.model_version == second  # the tampered version was refused
        total = count_rows(discover([demo_dir]))
        replay(local, demo_dir)
        wait_for(lambda: local.lake.row_count(WELL_DATA_TABLE) == total)
    finally:
        stop.set()
        worker.join(timeout=30)
    versions = local.sql.query("SELECT model_version, count(*) AS n FROM well_data GROUP BY model_version")
    assert set(versions["model_version"]) == {first, second}


def test_batches_are_final_once_checkpointed() -> None:
    checkpoints = {"shardId-000000000000": "120", "shardId-000000000001": None}
    assert is_final(batch_key("shardId-000000000000", "120"), checkpoints)
    assert not is_final(batch_key("shardId-000000000000", "121"), checkpoints)
    assert not is_final(batch_key("shardId-000000000001", "1"), checkpoints)


def run_in_thread(consumer: Consumer) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    worker = threading.Thread(target=consumer.run, args=(stop,))
    worker.start()
    return worker, stop


def test_a_batch_gathers_for_the_batch_time_and_a_clean_stop_commits_it(local: Backend, demo_dir: Path) -> None:
    sent = replay(local, demo_dir, max_rows=3000)
    shards_with_data = sum(1 for shard in local.stream.shard_ids() if local.stream.backlog(shard, None))
    consumer = Consumer(local, ConsumerOptions(batch_seconds=3600, poll_seconds=0.05, records_per_read=1))
    worker, stop = run_in_thread(consumer)
    try:
        time.sleep(1.0)  # many reads of one record each, none committed
        assert consumer.stats.batches == 0 and local.lake.row_count(WELL_DATA_TABLE) == 0
    finally:
        stop.set()
        worker.join(timeout=30)
    assert local.lake.row_count(WELL_DATA_TABLE) == sent  # the stop committed what had gathered,
    assert consumer.stats.batches == shards_with_data  # as one batch per shard


def test_a_batch_is_committed_as_soon_as_it_reaches_the_byte_budget(local: Backend, demo_dir: Path) -> None:
    replay(local, demo_dir, max_rows=6000)
    options = ConsumerOptions(batch_seconds=3600, batch_bytes=1, poll_seconds=0.05, records_per_read=2)
    consumer = Consumer(local, options)
    worker, stop = run_in_thread(consumer)
    try:
        wait_for(lambda: local.lake.row_count(WELL_DATA_TABLE) == 6000)  # long before the hour is up
        assert consumer.stats.batches >= 3  # at most two 1,000-row records a batch
    finally:
        stop.set()
        worker.join(timeout=30)


def test_a_home_whose_leases_held_the_state_inline_is_upgraded(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "stream.sqlite") as old:  # the leases table before states moved out
        old.execute("CREATE TABLE leases (application TEXT NOT NULL, shard_id TEXT NOT NULL, owner TEXT, "
                    "counter INTEGER NOT NULL, expires_at REAL NOT NULL, checkpoint TEXT, state BLOB, "
                    "PRIMARY KEY (application, shard_id))")
        old.execute("INSERT INTO leases VALUES ('petrostream-consumer', 'shard-0', NULL, 3, 0, '42', ?)",
                    (b'{"WELL-1": {}}',))
    backend = open_backend(Settings(home=tmp_path, shard_count=1))
    (lease,) = backend.leases.leases()
    assert (lease.checkpoint, backend.leases.state(lease)) == ("42", b'{"WELL-1": {}}')
    updated = backend.leases.checkpoint(backend.leases.balance("w", ["shard-0"])[0], "43", b"{}")
    assert backend.leases.state(updated) == b"{}"


def test_housekeeping_passes_over_a_table_the_worker_landed_nothing_in_until_every_table_is_due(
        local: Backend, demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pass costs a lock and listings per table on S3 even with nothing to merge: an idle table
    (no dead letters here) is passed over, except by the first, the hourly and the last pass."""
    compacted: list[str] = []
    compact = local.lake.compact
    monkeypatch.setattr(local.lake, "compact", lambda table, final: compacted.append(table) or compact(table, final))
    replay(local, demo_dir, max_rows=5000)
    Consumer(local, replace(DRAIN, records_per_read=1, housekeeping_every_seconds=0.0)).run(threading.Event())
    assert compacted.count(WELL_DATA_TABLE) >= 5  # a pass after every iteration that landed rows (5 records)...
    assert compacted.count(DEAD_LETTERS_TABLE) == 2  # ...but the idle table only at start and at shutdown


def test_each_malformed_record_of_a_batch_is_quarantined_alone_with_its_reason(
        tmp_path: Path, demo_dir: Path, model_artifact: tuple[bytes, dict[str, object]]) -> None:
    """The records of a batch are checked together; each one the check rejects keeps its own reason."""
    backend = open_backend(Settings(home=tmp_path, shard_count=1))  # one shard: one batch holds them all
    backend.models.publish(*model_artifact)
    well = read_instance(discover([demo_dir])[0].path).slice(0, 30)
    name = well["well_id"][0].as_py()
    times = well.schema.get_field_index("event_time")
    no_time = well.slice(0, 3).set_column(times, well.schema.field(times), pa.nulls(3, well.schema.field(times).type))
    two_wells = pa.concat_tables([well.slice(0, 2), well.slice(2, 2).set_column(
        0, well.schema.field(0), pa.array(["OTHER-WELL"] * 2))])
    backend.stream.put_records([
        OutgoingRecord(name, codec.encode(well.slice(0, 10))),
        OutgoingRecord("NOT-" + name, codec.encode(well.slice(10, 5))),  # rows of another well
        OutgoingRecord(name, codec.encode(no_time)),
        OutgoingRecord(name, b"\x02corrupt"),
        OutgoingRecord(name, codec.encode(well.slice(0, 0))),
        OutgoingRecord(name, broken_frame(codec.encode(well.slice(0, 10)))),  # fails the records' joint decode
        OutgoingRecord(name, codec.encode(two_wells)),
        OutgoingRecord(name, codec.encode(well.slice(10, 20))),
    ])
    stats = Consumer(backend, replace(DRAIN, records_per_read=100)).run(threading.Event())
    assert stats.batches == 1 and stats.dead_letters == 6
    assert distinct_and_total(backend) == (30, 30)  # the well-formed records' rows, all of them
    letters = backend.sql.query("SELECT partition_key, reason FROM dead_letters ORDER BY sequence_number")
    assert letters["partition_key"].tolist() == ["NOT-" + name] + [name] * 5
    reasons = letters["reason"].tolist()
    assert reasons[0] == f"record for partition key {'NOT-' + name!r} holds wells [{name!r}]"
    assert reasons[1] == "record has observations without event_time"
    assert reasons[2].startswith("corrupt record")
    assert reasons[3] == "record holds no observations"
    assert reasons[4].startswith("corrupt record: ZSTD decompression failed")
    assert reasons[5] == f"record for partition key {name!r} holds wells [{name!r}, 'OTHER-WELL']"


def test_a_read_of_small_records_asks_for_as_many_as_a_read_of_large_ones_carries(
        tmp_path: Path, demo_dir: Path, model_artifact: tuple[bytes, dict[str, object]]) -> None:
    """Batches cost the same per observation whether records are large or small (3W's short instances)."""
    backend = open_backend(Settings(home=tmp_path, shard_count=1))
    backend.models.publish(*model_artifact)
    sent = Producer(backend, discover([demo_dir]), ReplayOptions(speed=0, max_rows=6000, rows_per_record=20)).run(
        threading.Event()).sent_rows
    (shard,) = backend.stream.shard_ids()
    records = backend.stream.backlog(shard, None)
    options = ConsumerOptions(idle_exit_seconds=0.5, poll_seconds=0.05, read_bytes=records * 10_000)
    stats = Consumer(backend, options).run(threading.Event())
    assert stats.rows_landed == sent and records >= 300
    # the first read asks for what records of 2,000 observations would fill; the next one for all the rest
    assert stats.batches == 2
    capped = open_backend(Settings(home=tmp_path / "capped", shard_count=1))
    capped.models.publish(*model_artifact)
    few = Consumer(capped, replace(options, records_per_read=40))
    Producer(capped, discover([demo_dir]), ReplayOptions(speed=0, max_rows=6000, rows_per_record=20)).run(
        threading.Event())
    assert few.run(threading.Event()).batches >= records // 40  # never more than records_per_read a read


def test_a_local_read_returns_at_most_its_byte_limit_and_always_a_record(
        local: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    local.stream.put_records([OutgoingRecord("WELL-1", bytes(1000)) for _ in range(5)])
    shard = next(shard for shard in local.stream.shard_ids() if local.stream.backlog(shard, None))
    monkeypatch.setattr(local_stream, "MAX_BYTES_PER_READ", 2500)
    assert len(local.stream.get_records(shard, None, 100)) == 2
    monkeypatch.setattr(local_stream, "MAX_BYTES_PER_READ", 10)
    (only,) = local.stream.get_records(shard, None, 100)
    assert local.stream.get_records(shard, only.sequence_number, 100)[0].sequence_number > only.sequence_number


def test_a_read_of_empty_records_only_sizes_the_next_read_without_failing(local: Backend) -> None:
    local.stream.put_records([OutgoingRecord("WELL-1", b"") for _ in range(3)])
    stats = Consumer(local, replace(DRAIN, records_per_read=1000)).run(threading.Event())
    assert stats.dead_letters == 3 and stats.rows_landed == 0
