"""The stream's lag is shown without reading the stream: the consumer checkpoints Kinesis's
MillisBehindLatest of its own reads, and the status (Scaling page, Overview, `engine status`)
shows that. A status poll used to read up to 1,000 records per shard, competing with the
consumer and Firehose for the shard's five reads a second."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.backend import Backend, open_backend
from engine.backends.aws import AwsNames
from engine.config import Settings
from engine.consumer import Consumer, ConsumerOptions
from engine.producer import Producer, ReplayOptions
from engine.readers import discover
from engine.status import format_status, pipeline_status
from tests import strict_aws
from tests.backends import aws_account, fast_kinesis_reads
from tests.polling import wait_for


@pytest.fixture
def names() -> Iterator[AwsNames]:
    with aws_account(shard_count=2) as names:
        yield names


@pytest.fixture
def backend(names: AwsNames, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Backend:
    fast_kinesis_reads(monkeypatch)
    return open_backend(Settings(backend="aws", home=tmp_path, shard_count=2))


def test_status_reports_lag_as_time_from_the_checkpoints_and_never_reads_the_stream(
        backend: Backend, names: AwsNames, demo_dir: Path) -> None:
    before = pipeline_status(backend)
    assert [s.lag_text for s in before.shards] == ["not read yet"] * 2
    files = discover([demo_dir])
    Producer(backend, files, ReplayOptions(speed=0, max_rows=4_000, rows_per_record=200)).run(threading.Event())
    # A consumer stopped after a few batches leaves the shards behind, and has said by how much.
    consumer, stop = Consumer(backend, ConsumerOptions(records_per_read=2)), threading.Event()
    worker = threading.Thread(target=consumer.run, args=(stop,))
    worker.start()
    wait_for(lambda: consumer.stats.batches >= 4)  # both shards read
    stop.set()
    worker.join(30)
    reads = strict_aws.get_records_calls[names.stream_name]
    for _ in range(3):
        status = pipeline_status(backend)
    assert strict_aws.get_records_calls[names.stream_name] == reads, "a status poll read the stream"
    assert status.total_lag is None and all(s.lag_records is None for s in status.shards)
    assert all(s.lag_seconds is not None and s.lag_seconds >= 0 for s in status.shards)
    assert "s behind" in format_status(status)

    Consumer(backend, ConsumerOptions(poll_seconds=0.01, idle_exit_seconds=1.0)).run(threading.Event())
    drained = pipeline_status(backend)
    assert drained.max_lag_seconds == 0.0 and drained.lag_text == "0.0 s behind"
    assert drained.to_dict()["max_lag_seconds"] == 0.0


def test_the_local_stream_still_counts_its_backlog(tmp_path: Path, demo_dir: Path) -> None:
    local = open_backend(Settings(home=tmp_path, shard_count=2))
    sent = Producer(local, discover([demo_dir]), ReplayOptions(speed=0, max_rows=1_000, rows_per_record=100)).run(
        threading.Event()).sent_rows
    status = pipeline_status(local)
    assert status.total_lag == sent // 100 and status.lag_text == f"{sent // 100:,} records"
