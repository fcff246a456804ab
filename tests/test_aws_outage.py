"""The consumer rides out an AWS outage: the network to every AWS service is cut for 20 s
in the middle of consuming (a TCP proxy in front of the moto server resets every connection),
and the consumer process still drains the stream, lands every row exactly once and exits 0.
Errors that do not go away by themselves still end it, with a non-zero exit.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.backend import Backend, open_backend
from engine.backends.aws import AwsNames
from engine.config import Settings
from engine.consumer import Consumer, ConsumerOptions
from engine.errors import BackendError, TransientError
from engine.outage import MAX_BACKOFF_SECONDS, Outage
from engine.producer import Producer, ReplayOptions
from engine.readers import discover
from engine.schema import WELL_DATA_TABLE
from tests.backends import MotoServer, aws_account, aws_client, aws_environment
from tests.polling import wait_for
from tests.tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[1]
OUTAGE_SECONDS = 20.0


@pytest.fixture
def names() -> Iterator[AwsNames]:
    with aws_account() as names:
        yield names


def _landed(backend: Backend) -> tuple[int, int]:
    frame = backend.sql.query("SELECT count(*) AS n, count(DISTINCT concat(well_id, CAST(event_time AS varchar))) "
                              "AS d FROM well_data")
    return int(frame.iloc[0]["n"]), int(frame.iloc[0]["d"])


def _checkpointed(names: AwsNames) -> int:
    items = aws_client("dynamodb").scan(TableName=names.lease_table)["Items"]
    return sum(1 for item in items if "checkpoint" in item)


def test_a_20_second_network_cut_mid_consume_loses_and_duplicates_nothing(
        names: AwsNames, tmp_path: Path, demo_dir: Path) -> None:
    backend = open_backend(Settings(backend="aws", home=tmp_path))
    files = discover([demo_dir])
    replay = ReplayOptions(speed=0, rows_per_record=150)
    first = Producer(backend, files, ReplayOptions(speed=0, max_rows=3_000, rows_per_record=150)).run(threading.Event())
    proxy = TcpProxy(MotoServer.url())
    environment = os.environ | aws_environment(names) | {"AWS_ENDPOINT_URL": proxy.url,
                                                          "PETROSTREAM_HOME": str(tmp_path / "consumer")}
    consumer = subprocess.Popen([sys.executable, "-m", "engine", "consume", "--exit-when-idle", "4"], cwd=ROOT,
                                env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _checkpointed(names) > 0, seconds=60)  # consuming has begun
        proxy.cut()
        cut_at = time.monotonic()
        # The producer keeps sending (it reaches AWS by another path) while the consumer is cut off.
        second = Producer(backend, files, replay).run(threading.Event())
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut_at)))
        assert consumer.poll() is None, "the consumer died in the outage"
        proxy.restore()
        output = consumer.communicate(timeout=60 + MAX_BACKOFF_SECONDS)[0].decode()
    finally:
        if consumer.poll() is None:
            consumer.kill()
        proxy.close()
    assert consumer.returncode == 0, output[-3000:]
    assert proxy.refused > 0, f"the consumer never noticed the cut: {output[-3000:]}"
    sent = second.sent_rows  # the second run resumed the first: its count is the replay's total
    assert first.sent_rows < sent == second.total_rows
    assert _landed(backend) == (sent, sent)
    outage_lines = [line for line in output.splitlines() if "petrostream.outage" in line]
    assert len(outage_lines) == 2, outage_lines  # one when it starts, one when it ends: not one per call
    assert "backend available again after" in outage_lines[1]


def test_while_s3_is_unreachable_the_consumer_waits_and_checkpoints_nothing(
        names: AwsNames, tmp_path: Path, demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    healthy = open_backend(Settings(backend="aws", home=tmp_path, lease_seconds=1.0))
    sent = Producer(healthy, discover([demo_dir]), ReplayOptions(speed=0, max_rows=2_000)).run(
        threading.Event()).sent_rows
    proxy = TcpProxy(MotoServer.url())
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    proxy.cut()
    cut_off = open_backend(Settings(backend="aws", home=tmp_path, lease_seconds=1.0))
    consumer = Consumer(cut_off, ConsumerOptions(idle_exit_seconds=1.0))
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,))
    thread.start()
    try:
        wait_for(lambda: consumer.stats.outage_since is not None and proxy.refused >= 2)
        assert thread.is_alive()
        assert [lease.checkpoint for lease in healthy.leases.leases() if lease.checkpoint] == []
    finally:
        stop.set()
        thread.join(30)
        proxy.close()
    assert not thread.is_alive(), "a stop request must end the back-off"
    assert healthy.lake.row_count(WELL_DATA_TABLE) == 0
    Consumer(healthy, ConsumerOptions(idle_exit_seconds=1.5, poll_seconds=0.05)).run(threading.Event())
    assert _landed(healthy) == (sent, sent)


def test_a_missing_resource_still_ends_the_consumer_with_a_non_zero_exit(names: AwsNames, tmp_path: Path) -> None:
    aws_client("kinesis").delete_stream(StreamName=names.stream_name)
    environment = os.environ | aws_environment(names) | {"PETROSTREAM_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "engine", "consume", "--exit-when-idle", "30"], cwd=ROOT,
                          env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Kinesis stream 'petrostream-ingest' does not exist" in done.stderr


def test_outage_backs_off_exponentially_with_jitter_up_to_the_cap_and_logs_once_each_way(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = iter(range(1000))
    outage = Outage("worker w", clock=lambda: float(next(clock)))
    stop = threading.Event()
    stop.set()  # no real waiting in a unit test
    delays = []
    with caplog.at_level(logging.INFO, logger="petrostream.outage"):
        for _ in range(12):
            delays.append(min(10.0, 0.5 * 2 ** outage.failures))
            assert 0 <= outage.delay() <= delays[-1]
            outage.failed(TransientError("Kinesis stream 'x': connection reset"), stop)
        outage.succeeded()
        outage.succeeded()
    assert delays[-1] == MAX_BACKOFF_SECONDS and delays[:3] == [0.5, 1.0, 2.0]
    assert [r.getMessage().split(":")[1].strip() for r in caplog.records] == [
        "backend unavailable, retrying with back-off until it answers",
        "backend available again after 1.0 s and 12 failed attempts"]
    assert outage.count == 1 and not outage.active


@pytest.mark.parametrize(("code", "status", "transient"), [
    ("ProvisionedThroughputExceededException", 400, True), ("ThrottlingException", 400, True),
    ("InternalFailure", 500, True), ("ServiceUnavailable", 503, True), ("ExpiredIteratorException", 400, True),
    ("SomethingNew", 502, True), ("AccessDeniedException", 400, False), ("ResourceNotFoundException", 400, False),
])
def test_aws_errors_are_classed_transient_only_when_a_retry_can_succeed(code: str, status: int,
                                                                         transient: bool) -> None:
    from botocore.exceptions import ClientError

    from engine.backends.aws._errors import Resource, translated

    error = ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                        "GetRecords")
    with pytest.raises(BackendError) as raised, translated(Resource("Kinesis stream", "s", "PETROSTREAM_STREAM_NAME")):
        raise error
    assert isinstance(raised.value, TransientError) is transient
