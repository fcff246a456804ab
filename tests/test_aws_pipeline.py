"""The foundation's end-to-end scenario on the aws backend, in-process against moto.

Demo data is replayed by the producer into Kinesis, consumed into the S3 lake (Glue
partitions, Parquet), and ``well_data`` must then hold every row exactly once per
``(well_id, event_time)`` — after a plain run, a consumer crash between the lake write and
the checkpoint, two consumers sharing the shards, and a shard split in the middle of a replay.
Consumers also pick up a newly activated model from S3 and refuse a tampered artifact.

moto runs no SQL. The lake is therefore counted twice: through the backend's SQL port, whose
Athena calls the test server answers by running the same SQL text on DuckDB over the
partitions registered in Glue and the Parquet objects under them (see ``tests/backends.py``),
and independently by reading every curated Parquet object back from moto's S3 with pyarrow.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.backend import Backend, open_backend
from engine.backends.aws import AwsNames
from engine.config import Settings
from engine.consumer import Consumer, ConsumerOptions
from engine.leases import LeaseStore
from engine.producer import Producer, ReplayOptions
from engine.readers import InstanceFile, discover
from engine.schema import WELL_DATA_TABLE
from engine.status import pipeline_status
from ml.train_model import train
from tests.backends import aws_account, aws_client, curated_rows, fast_kinesis_reads

NEVER = threading.Event()
DRAIN = ConsumerOptions(idle_exit_seconds=1.5, poll_seconds=0.05)


@pytest.fixture(scope="module")
def files(demo_dir: Path) -> list[InstanceFile]:
    return discover([demo_dir])


@pytest.fixture(scope="module")
def model(demo_dir: Path) -> tuple[bytes, dict]:
    return train([demo_dir])


@pytest.fixture(autouse=True)
def fast_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    fast_kinesis_reads(monkeypatch)


@pytest.fixture
def account() -> Iterator[AwsNames]:
    with aws_account(shard_count=4) as names:
        yield names


def open_aws(home: Path, lease_seconds: float = 20.0) -> Backend:
    return open_backend(Settings(backend="aws", home=home, lease_seconds=lease_seconds))


def total_rows(files: list[InstanceFile]) -> int:
    return sum(pq.ParquetFile(f.path).metadata.num_rows for f in files)


def assert_exactly_once(backend: Backend, names: AwsNames, expected: int) -> None:
    counts = backend.sql.query("SELECT count(*) AS n, count(DISTINCT concat(well_id, CAST(event_time AS varchar))) "
                               "AS d FROM well_data")
    assert counts.iloc[0].tolist() == [expected, expected]
    landed = curated_rows(names, WELL_DATA_TABLE)
    keys = pa.table({"w": landed["well_id"], "t": landed["event_time"]}).group_by(["w", "t"]).aggregate([])
    assert (landed.num_rows, keys.num_rows) == (expected, expected)
    assert backend.lake.row_count(WELL_DATA_TABLE) == expected


def test_a_replay_lands_every_row_once_scored_and_leaves_the_raw_archive_to_firehose(
        account: AwsNames, files: list[InstanceFile], model: tuple[bytes, dict], tmp_path: Path) -> None:
    backend = open_aws(tmp_path)
    version = backend.models.publish(*model)
    progress = Producer(backend, files, ReplayOptions(speed=0)).run(NEVER)
    assert progress.status == "finished" and progress.sent_rows == total_rows(files)
    stats = Consumer(backend, DRAIN).run(NEVER)
    assert stats.rows_landed == total_rows(files) and stats.model_version == version
    assert_exactly_once(backend, account, total_rows(files))
    flagged = backend.sql.query("SELECT * FROM well_data WHERE anomaly_flag = 1")
    assert len(flagged) > 0 and set(flagged["model_version"]) == {version}
    averages = backend.sql.query("SELECT well_id, AVG(pressure) FROM well_data GROUP BY well_id")
    assert len(averages) == len({f.well_id for f in files})
    assert "Contents" not in aws_client("s3").list_objects_v2(Bucket=account.raw_bucket)  # Firehose's job
    status = pipeline_status(backend)
    assert (status.backend, status.total_lag, status.lake_rows, status.model_version) == (
        "aws", None, total_rows(files), version)  # Kinesis has no record count: the lag is time
    assert status.max_lag_seconds == 0.0
    assert status.workers == [] and all(shard.owner is None for shard in status.shards)  # released on the way out


def test_a_consumer_picks_up_a_newly_activated_model_and_refuses_a_tampered_one(
        account: AwsNames, files: list[InstanceFile], model: tuple[bytes, dict], tmp_path: Path) -> None:
    backend = open_aws(tmp_path)
    first = backend.models.publish(*model)
    half = total_rows(files) // 2
    Producer(backend, files, ReplayOptions(speed=0, max_rows=half)).run(NEVER)
    Consumer(backend, DRAIN).run(NEVER)
    time.sleep(1.1)  # versions are stamped to the second
    tampered = backend.models.publish(*model, activate=False)
    s3 = aws_client("s3")
    artifact = {"Bucket": account.model_bucket, "Key": f"{tampered}/model.joblib"}
    s3.put_object(**artifact, Body=s3.get_object(**artifact)["Body"].read() + b"tampered")
    backend.models.activate(tampered)
    Producer(backend, files, ReplayOptions(speed=0, max_rows=half // 2)).run(NEVER)
    stats = Consumer(backend, DRAIN).run(NEVER)
    assert stats.model_version is None and stats.rows_landed > 0  # refused; this fresh worker had no model yet
    backend.models.activate(first)
    time.sleep(1.1)
    second = backend.models.publish(*model)
    Producer(backend, files, ReplayOptions(speed=0)).run(NEVER)
    assert Consumer(backend, DRAIN).run(NEVER).model_version == second
    versions = backend.sql.query("SELECT model_version, count(*) AS n FROM well_data GROUP BY 1")
    assert set(versions["model_version"].dropna()) == {first, second}


def test_a_crash_between_the_lake_write_and_the_checkpoint_duplicates_nothing(
        account: AwsNames, files: list[InstanceFile], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = open_aws(tmp_path, lease_seconds=1.0)
    Producer(backend, files, ReplayOptions(speed=0, rows_per_record=500)).run(NEVER)
    small_batches = ConsumerOptions(idle_exit_seconds=1.5, poll_seconds=0.05, records_per_read=4)
    original = LeaseStore.checkpoint
    calls = []

    def crash_on_third(self: LeaseStore, *args: object, **kwargs: object) -> object:
        calls.append(args)
        if len(calls) == 3:
            raise RuntimeError("worker killed after writing its batch, before checkpointing it")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LeaseStore, "checkpoint", crash_on_third)
    with pytest.raises(RuntimeError, match="killed"):
        Consumer(open_aws(tmp_path, lease_seconds=1.0), small_batches).run(NEVER)
    landed_before = backend.lake.row_count(WELL_DATA_TABLE)
    assert 0 < landed_before < total_rows(files)
    monkeypatch.setattr(LeaseStore, "checkpoint", original)
    Consumer(open_aws(tmp_path, lease_seconds=1.0), small_batches).run(NEVER)  # re-reads the batch, same key
    assert_exactly_once(backend, account, total_rows(files))


def test_two_consumers_share_the_shards_and_land_every_row_once(
        files: list[InstanceFile], tmp_path: Path) -> None:
    """Leases split the *shards* evenly, whatever rows they carry (as the KCL does). The demo's three
    wells hash to two of four shards, so two workers could split four shards two each with one
    holding only the empty two when both claimed at the same moment and their conditional takes
    interleaved (forcing that order: 32,400 rows and 0). With two shards, each carrying rows, every
    split gives each worker rows to land."""
    with aws_account(shard_count=2) as names:
        backend = open_aws(tmp_path, lease_seconds=2.0)
        Producer(backend, files, ReplayOptions(speed=0, rows_per_record=500)).run(NEVER)
        assert all(backend.stream.backlog(shard, None) > 0 for shard in backend.stream.shard_ids())
        workers = [Consumer(open_aws(tmp_path, lease_seconds=2.0), ConsumerOptions(
            idle_exit_seconds=4.0, poll_seconds=0.05, records_per_read=5)) for _ in range(2)]
        threads = [threading.Thread(target=worker.run, args=(NEVER,)) for worker in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)  # seconds when the machine is idle; generous for a loaded one
        assert not any(thread.is_alive() for thread in threads), "a worker did not drain the stream and exit"
        landed = [worker.stats.rows_landed for worker in workers]
        assert all(n > 0 for n in landed), landed
        assert sum(landed) == total_rows(files)
        assert_exactly_once(backend, names, total_rows(files))


def test_a_shard_split_in_the_middle_of_a_replay_loses_and_duplicates_nothing(
        files: list[InstanceFile], tmp_path: Path) -> None:
    with aws_account(shard_count=1) as names:
        backend = open_aws(tmp_path)
        first = Producer(backend, files, ReplayOptions(speed=0, max_rows=total_rows(files) // 2)).run(NEVER)
        assert first.status == "stopped at limit"
        (parent,) = backend.stream.shard_ids()
        aws_client("kinesis").split_shard(StreamName=names.stream_name, ShardToSplit=parent,
                                          NewStartingHashKey=str(2 ** 127))
        # The producer lost its progress: it re-sends the first half too, now into the children,
        # which recognise those rows as landed only through the state they inherit from the parent.
        backend.replays.save(replace(backend.replays.load(first.replay_id), watermarks={}, sent_rows=0))
        assert Producer(backend, files, ReplayOptions(speed=0)).run(NEVER).status == "finished"
        Consumer(backend, DRAIN).run(NEVER)
        assert_exactly_once(backend, names, total_rows(files))
        checkpoints = {lease.shard_id: lease.checkpoint for lease in backend.leases.leases()}
        assert checkpoints[parent] is not None and len(checkpoints) == 3  # the parent was read, then its children
        assert any(checkpoints[child] for child in backend.stream.shard_ids()[1:])
