"""The backend contract, written once and run against every backend kind (see conftest)."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from engine import codec
from engine.backend import Backend
from engine.errors import InputError, ModelError
from engine.features import FEATURE_NAMES
from engine.leases import LeaseLost
from engine.model import dump
from engine.readers import to_observations
from engine.replay_log import ReplayProgress
from engine.schema import DEAD_LETTERS_TABLE, WELL_DATA_TABLE
from engine.scoring import score_observations
from engine.stream import OutgoingRecord, shard_index

SEED_QUERIES = (
    "SELECT * FROM well_data WHERE anomaly_flag = 1",
    "SELECT well_id, AVG(pressure) FROM well_data GROUP BY well_id",
)


def observations(well: str, start: datetime, rows: int, pressure: float = 1.5e7) -> pa.Table:
    times = pd.date_range(start, periods=rows, freq="s", tz="UTC")
    return to_observations(pd.DataFrame({
        "well_id": well, "event_time": times,
        "p_tpt": pressure + np.arange(rows, dtype=float), "t_tpt": 80.0, "class": 0,
    }))


def lake_rows(well: str, start: datetime, rows: int, flag_every: int = 0) -> pa.Table:
    table = score_observations(observations(well, start, rows), {}, None)
    flags = np.zeros(rows, dtype=np.int8)
    if flag_every:
        flags[::flag_every] = 1
    index = table.schema.get_field_index("anomaly_flag")
    return table.set_column(index, "anomaly_flag", pa.array(flags, pa.int8()))


START = datetime(2024, 3, 1, 23, 0, tzinfo=UTC)


# -- stream ---------------------------------------------------------------------------
def test_records_of_one_well_stay_on_one_shard_in_order(backend: Backend) -> None:
    wells = [f"WELL-{n:05d}" for n in range(12)]
    for round_ in range(3):
        backend.stream.put_records([OutgoingRecord(w, f"{w}:{round_}".encode()) for w in wells])
    shard_ids = backend.stream.shard_ids()
    seen: dict[str, list[str]] = {}
    for index, shard_id in enumerate(shard_ids):
        for record in backend.stream.get_records(shard_id, None, 1000):
            assert shard_index(record.partition_key, len(shard_ids)) == index
            seen.setdefault(record.partition_key, []).append(record.data.decode())
    assert seen == {w: [f"{w}:{r}" for r in range(3)] for w in wells}


def test_reading_after_a_sequence_number_resumes_exactly(backend: Backend) -> None:
    backend.stream.put_records([OutgoingRecord("WELL-00001", bytes([i])) for i in range(10)])
    shard = next(s for s in backend.stream.shard_ids() if backend.stream.backlog(s, None))
    first = backend.stream.get_records(shard, None, 4)
    rest = backend.stream.get_records(shard, first[-1].sequence_number, 100)
    assert [r.data for r in first + rest] == [bytes([i]) for i in range(10)]
    assert backend.stream.backlog(shard, first[-1].sequence_number) == 6
    assert int(rest[0].sequence_number) > int(first[-1].sequence_number)


# -- leases ---------------------------------------------------------------------------
def test_two_workers_split_the_shards_without_overlap(backend: Backend) -> None:
    shards = backend.stream.shard_ids()
    first = backend.leases.balance("worker-a", shards)
    assert {lease.shard_id for lease in first} == set(shards)  # alone, it takes everything
    second = backend.leases.balance("worker-b", shards)  # b steals towards a fair share
    for _ in range(len(shards)):
        first = backend.leases.balance("worker-a", shards)
        second = backend.leases.balance("worker-b", shards)
    a, b = {lease.shard_id for lease in first}, {lease.shard_id for lease in second}
    assert not a & b
    assert a | b == set(shards)
    assert abs(len(a) - len(b)) <= 1


def test_a_new_worker_gets_its_share_in_one_round_and_nothing_moves_back(backend: Backend) -> None:
    shards = [f"shard-{n}" for n in range(8)]

    def owners() -> dict[str, str | None]:
        return {lease.shard_id: lease.owner for lease in backend.leases.leases()}

    assert len(backend.leases.balance("worker-a", shards)) == 8
    assert len(backend.leases.balance("worker-b", shards)) == 4  # its whole share, at once
    split = owners()
    for _ in range(3):  # renewals in turn move nothing: neither is above its share
        for worker in ("worker-a", "worker-b"):
            backend.leases.balance(worker, shards)
    assert owners() == split
    assert len(backend.leases.balance("worker-c", shards)) == 2  # 8 over 3: it takes 2, from a and b
    for _ in range(3):
        for worker in ("worker-a", "worker-b", "worker-c"):
            backend.leases.balance(worker, shards)
    counts = Counter(owners().values())
    assert sorted(counts.values()) == [2, 3, 3] and None not in counts
    settled = owners()
    for worker in ("worker-c", "worker-b", "worker-a"):
        backend.leases.balance(worker, shards)
    assert owners() == settled


def test_a_dead_workers_shards_are_taken_over_with_its_checkpoint(backend: Backend) -> None:
    backend.leases.lease_seconds = 0.5
    shards = backend.stream.shard_ids()
    held = backend.leases.balance("worker-dead", shards)
    backend.leases.checkpoint(held[0], "42", b'{"state": 1}')
    time.sleep(0.7)  # worker-dead stops renewing; its leases expire
    taken = {lease.shard_id: lease for lease in backend.leases.balance("worker-new", shards)}
    assert set(taken) == set(shards)
    assert taken[held[0].shard_id].checkpoint == "42"
    assert backend.leases.state(taken[held[0].shard_id]) == b'{"state": 1}'
    with pytest.raises(LeaseLost):
        backend.leases.checkpoint(held[1], "7", None)  # the old owner can no longer write


def test_released_leases_are_free_at_once(backend: Backend) -> None:
    shards = backend.stream.shard_ids()
    for lease in backend.leases.balance("worker-a", shards):
        backend.leases.release(lease)
    backend.leases.retire("worker-a")
    assert len(backend.leases.balance("worker-b", shards)) == len(shards)


# -- lake and SQL ----------------------------------------------------------------------
def test_rewriting_a_batch_key_replaces_it_even_across_partitions(backend: Backend) -> None:
    two_days = lake_rows("WELL-00001", START, 7200)  # 23:00 -> 01:00 spans two date partitions
    backend.lake.write(WELL_DATA_TABLE, "shard-0@1", two_days)
    backend.lake.write(WELL_DATA_TABLE, "shard-0@1", two_days.slice(0, 1800))  # a shorter retry
    backend.lake.write(WELL_DATA_TABLE, "shard-0@2", two_days.slice(1800))
    counts = backend.sql.query("SELECT count(*) AS n, count(DISTINCT event_time) AS d FROM well_data")
    assert counts.iloc[0].tolist() == [7200, 7200]
    assert backend.lake.row_count(WELL_DATA_TABLE) == 7200


def test_rewriting_a_batch_key_with_no_rows_removes_what_it_wrote(backend: Backend) -> None:
    backend.lake.write(WELL_DATA_TABLE, "shard-0@1", lake_rows("WELL-00001", START, 100))
    backend.lake.write(WELL_DATA_TABLE, "shard-0@2", lake_rows("WELL-00001", START + timedelta(hours=1), 10))
    backend.lake.write(WELL_DATA_TABLE, "shard-0@1", lake_rows("WELL-00001", START, 0))
    assert backend.sql.query("SELECT count(*) FROM well_data").iloc[0, 0] == 10
    backend.lake.write(WELL_DATA_TABLE, "shard-0@3", lake_rows("WELL-00001", START, 0))  # nothing, nothing to do
    assert backend.lake.row_count(WELL_DATA_TABLE) == 10


def test_seed_queries_run_verbatim(backend: Backend) -> None:
    backend.lake.write(WELL_DATA_TABLE, "k1", lake_rows("WELL-00001", START, 100, flag_every=10))
    backend.lake.write(WELL_DATA_TABLE, "k2", lake_rows("WELL-00002", START, 50))
    flagged, averages = (backend.sql.query(sql) for sql in SEED_QUERIES)
    assert len(flagged) == 10 and set(flagged["well_id"]) == {"WELL-00001"}
    assert {"pressure", "temperature", "anomaly_score", "model_version", "ingest_time", "date"} <= set(flagged)
    means = dict(zip(averages.iloc[:, 0], averages.iloc[:, 1], strict=True))
    assert means["WELL-00002"] == pytest.approx(1.5e7 + 24.5, rel=1e-6)


def test_queries_on_an_empty_lake_return_no_rows(backend: Backend) -> None:
    for sql in SEED_QUERIES:
        assert backend.sql.query(sql).empty


def test_query_parameters_are_values_not_sql(backend: Backend) -> None:
    backend.lake.write(WELL_DATA_TABLE, "k1", lake_rows("WELL-00001", START, 10))
    hostile = "WELL-00001' OR '1'='1"
    assert backend.sql.query("SELECT count(*) FROM well_data WHERE well_id = ?", [hostile]).iloc[0, 0] == 0
    assert backend.sql.query("SELECT count(*) FROM well_data WHERE well_id = ?", ["WELL-00001"]).iloc[0, 0] == 10


def test_bad_sql_is_a_clear_error(backend: Backend) -> None:
    with pytest.raises(InputError):
        backend.sql.query("SELEC nonsense FROM")


def test_compaction_merges_final_batches_and_leaves_open_ones_replaceable(backend: Backend) -> None:
    for i in range(9):  # nine final batches of one minute each
        backend.lake.write(WELL_DATA_TABLE, f"shard-0@{i}", lake_rows("WELL-00001", START + timedelta(minutes=i), 60))
    later = START + timedelta(minutes=30)
    backend.lake.write(WELL_DATA_TABLE, "shard-0@9", lake_rows("WELL-00001", later, 120))  # not final yet
    report = backend.lake.compact(WELL_DATA_TABLE, lambda key: key != "shard-0@9")
    assert (report.partitions, report.files_before, report.files_after) == (1, 9, 1)
    assert backend.sql.query("SELECT count(*) FROM well_data").iloc[0, 0] == 9 * 60 + 120
    backend.lake.write(WELL_DATA_TABLE, "shard-0@9", lake_rows("WELL-00001", later, 30))  # still replaceable
    counts = backend.sql.query("SELECT count(*) AS n, count(DISTINCT event_time) AS d FROM well_data")
    assert counts.iloc[0].tolist() == [9 * 60 + 30, 9 * 60 + 30]
    assert backend.lake.compact(WELL_DATA_TABLE, lambda key: True).files_before == 0  # too few files to bother
    for i in range(7):  # with the compacted file, eight final files: but it is not merged again
        backend.lake.write(WELL_DATA_TABLE, f"shard-1@{i}", lake_rows("WELL-00002", START + timedelta(minutes=i), 60))
    assert backend.lake.compact(WELL_DATA_TABLE, lambda key: key != "shard-0@9").files_before == 0
    backend.lake.write(WELL_DATA_TABLE, "shard-1@7", lake_rows("WELL-00002", START + timedelta(minutes=7), 60))
    assert backend.lake.compact(WELL_DATA_TABLE, lambda key: key != "shard-0@9").files_before == 8
    counts = backend.sql.query("SELECT count(*) AS n, count(DISTINCT concat(well_id, CAST(event_time AS varchar)))"
                               " AS d FROM well_data")
    assert counts.iloc[0].tolist() == [17 * 60 + 30, 17 * 60 + 30]


def test_dead_letters_are_queryable(backend: Backend) -> None:
    from engine.schema import DEAD_LETTER_SCHEMA

    letter = {"shard_id": "s", "sequence_number": "1", "partition_key": "WELL-1", "reason": "corrupt record",
              "payload": b"\x00garbage", "failed_at": datetime.now(UTC)}
    backend.lake.write(DEAD_LETTERS_TABLE, "s@1", pa.Table.from_pylist([letter], DEAD_LETTER_SCHEMA))
    rows = backend.sql.query("SELECT reason, partition_key FROM dead_letters")
    assert rows.to_dict("records") == [{"reason": "corrupt record", "partition_key": "WELL-1"}]


# -- model store ----------------------------------------------------------------------
def _artifact(threshold: float) -> tuple[bytes, dict[str, object]]:
    from sklearn.ensemble import IsolationForest

    estimator = IsolationForest(n_estimators=5, random_state=0).fit(np.random.default_rng(0).normal(
        size=(64, len(FEATURE_NAMES))))
    return dump(estimator, threshold, {"training": {"rows": 64}})


def test_publish_activate_and_roll_back(backend: Backend) -> None:
    first = backend.models.publish(*_artifact(0.5))
    time.sleep(1.1)  # versions are stamped to the second
    second = backend.models.publish(*_artifact(0.6))
    assert backend.models.active_version() == second
    assert backend.models.load_active().threshold == 0.6
    assert backend.models.rollback() == first
    assert backend.models.active_version() == first
    backend.models.activate(second)
    assert [v.active for v in backend.models.versions()] == [False, True]


def test_tampered_model_is_refused(backend: Backend) -> None:
    payload, manifest = _artifact(0.5)
    with pytest.raises(ModelError, match="sha256"):
        backend.models.publish(payload + b"tamper", manifest)
    assert backend.models.active_version() is None


def test_roll_back_without_history_is_a_clear_error(backend: Backend) -> None:
    with pytest.raises(ModelError):
        backend.models.rollback()


# -- replay log ------------------------------------------------------------------------
def test_replay_progress_round_trips(backend: Backend) -> None:
    progress = ReplayProgress("r1", ["a.parquet"], 0.0, 100, sent_rows=40, watermarks={"WELL-1": 123},
                              updated_at=time.time())
    backend.replays.save(progress)
    backend.replays.save(replace(progress, sent_rows=60, updated_at=time.time() + 1))
    loaded = backend.replays.load("r1")
    assert loaded.sent_rows == 60 and loaded.watermarks == {"WELL-1": 123}
    assert backend.replays.latest().replay_id == "r1"
    assert backend.replays.load("missing") is None


def test_codec_round_trip_is_lossless_for_float32(backend: Backend) -> None:
    table = observations("WELL-00003", START, 500)
    assert codec.decode(codec.encode(table)).equals(table)
    assert json.dumps(backend.name)  # every backend carries its kind's name
