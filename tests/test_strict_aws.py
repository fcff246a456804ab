"""The strict AWS layer refuses what AWS refuses, with AWS's error, and the engine copes.

Every aws test runs under it (tests/backends.py installs it); these tests prove each limit
is enforced, and that the engine stays inside the limits it should respect or turns a limit
it hits into a clear message.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pyarrow as pa
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.athena.models import athena_backends

from engine.backend import Backend, open_backend
from engine.backends.aws import AwsNames
from engine.config import Settings
from engine.consumer import Consumer, ConsumerOptions
from engine.errors import InputError
from engine.producer import Producer, ReplayOptions
from engine.readers import discover
from engine.schema import OBSERVATION_SCHEMA, WELL_DATA_TABLE
from engine.scoring import score_observations
from engine.stream import OutgoingRecord
from tests import strict_aws
from tests.backends import ACCOUNT, ATHENA_CUTOFF_BYTES, REGION, MotoServer, aws_account, aws_client
from tests.infra.terraform_model import Terraform


@pytest.fixture
def names() -> Iterator[AwsNames]:
    with aws_account(shard_count=1) as names:
        yield names


@pytest.fixture
def backend(names: AwsNames, tmp_path: Path) -> Backend:
    return open_backend(Settings(backend="aws", home=tmp_path, shard_count=1))


def _error(call: object) -> dict[str, str]:
    with pytest.raises(ClientError) as raised:
        call()  # type: ignore[operator]
    return raised.value.response["Error"]


def test_a_sixth_get_records_within_a_second_is_throttled_as_kinesis_does(
        names: AwsNames, monkeypatch: pytest.MonkeyPatch) -> None:
    kinesis = boto3.client("kinesis", region_name=REGION, endpoint_url=MotoServer.url(),
                           config=Config(retries={"total_max_attempts": 1}))  # see the throttle, not a retry
    shard = kinesis.list_shards(StreamName=names.stream_name)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=names.stream_name, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    now = [1_000.0]
    monkeypatch.setattr(strict_aws, "clock", lambda: now[0])  # all six calls within one second
    for _ in range(5):
        kinesis.get_records(ShardIterator=iterator)
    error = _error(lambda: kinesis.get_records(ShardIterator=iterator))
    assert error["Code"] == "ProvisionedThroughputExceededException"
    assert f"Rate exceeded for shard {shard}" in error["Message"]
    now[0] += 1.0  # a second later the shard serves reads again
    kinesis.get_records(ShardIterator=iterator)


def test_a_record_over_one_mib_is_refused_by_put_record_too(names: AwsNames) -> None:
    kinesis = aws_client("kinesis")
    key = "WELL-1"
    fits = b"x" * (strict_aws.MAX_RECORD_BYTES - len(key))
    kinesis.put_record(StreamName=names.stream_name, PartitionKey=key, Data=fits)
    error = _error(lambda: kinesis.put_record(StreamName=names.stream_name, PartitionKey=key, Data=fits + b"x"))
    assert error["Code"] == "ValidationException" and "1048576" in error["Message"]


def test_the_engine_refuses_an_oversized_record_before_kinesis_does(backend: Backend) -> None:
    with pytest.raises(InputError, match="Kinesis takes at most 1,048,576"):
        backend.stream.put_records([OutgoingRecord("WELL-1", b"x" * strict_aws.MAX_RECORD_BYTES)])


def test_dynamodb_items_over_400_kb_are_refused(names: AwsNames) -> None:
    dynamodb = aws_client("dynamodb")
    dynamodb.put_item(TableName=names.lease_table, Item={"lease_key": {"S": "big"}, "text": {"S": "x" * 300_000}})
    error = _error(lambda: dynamodb.put_item(TableName=names.lease_table, Item={
        "lease_key": {"S": "big"}, "text": {"S": "x" * 410_000}}))
    assert error["Code"] == "ValidationException" and "maximum allowed size" in error["Message"]


def test_two_consumers_of_one_shard_stay_correct_when_kinesis_throttles_them(
        backend: Backend, names: AwsNames, demo_dir: Path, tmp_path: Path) -> None:
    """Default pacing (one read a second each) plus a status poller: throttled calls are retried."""
    sent = Producer(backend, discover([demo_dir]), ReplayOptions(speed=0, max_rows=3_000,
                                                                rows_per_record=100)).run(threading.Event()).sent_rows
    second = open_backend(Settings(backend="aws", home=tmp_path / "second", shard_count=1))
    options = ConsumerOptions(idle_exit_seconds=2.0, poll_seconds=0.01, records_per_read=5)
    threads = [threading.Thread(target=Consumer(b, options).run, args=(threading.Event(),)) for b in (backend, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert backend.lake.row_count(WELL_DATA_TABLE) == sent


def _lake_with_bytes(backend: Backend, days: int, rows_per_day: int) -> None:
    """One batch of one well per day, so each day's partition holds one object."""
    for day in range(days):
        start = 1_700_000_000_000 + day * 86_400_000
        columns = {field.name: pa.nulls(rows_per_day, field.type) for field in OBSERVATION_SCHEMA}
        columns["well_id"] = pa.array(["WELL-1"] * rows_per_day)
        columns["event_time"] = pa.array(range(start, start + rows_per_day), pa.timestamp("ms", tz="UTC"))
        table = pa.table(columns, schema=OBSERVATION_SCHEMA)
        backend.lake.write(WELL_DATA_TABLE, f"shard@{day:030d}", score_observations(table, {}, None))


def test_a_query_over_the_workgroup_cutoff_is_cancelled_and_the_engine_says_why(
        backend: Backend, names: AwsNames) -> None:
    _lake_with_bytes(backend, days=3, rows_per_day=2_000)
    day = backend.sql.query('SELECT min("date") AS d FROM well_data')["d"][0]
    catalog = strict_aws.catalog_sizes(aws_client("glue"), aws_client("s3"), names.glue_database)
    sizes = sorted(size for _, size in catalog[WELL_DATA_TABLE])
    everything = strict_aws.scan_estimate("SELECT count(*) FROM well_data", catalog)
    assert everything == sum(sizes) > 0
    one_day = strict_aws.scan_estimate(f"SELECT count(*) FROM well_data WHERE \"date\" = '{day}'", catalog)
    assert one_day == min(sizes) or one_day in sizes
    assert strict_aws.scan_estimate(f"SELECT * FROM well_data WHERE \"date\" > '{day}' AND well_id = 'x'", catalog) \
        == everything - one_day

    # A test's lake is kilobytes, below Athena's 10 MB minimum cutoff: scale the limit down in the
    # server's state (the API would refuse the value), keeping the rule the same.
    athena_backends[ACCOUNT][REGION].work_groups[names.athena_workgroup].configuration[
        "BytesScannedCutoffPerQuery"] = one_day + 1
    assert backend.sql.query(f"SELECT count(*) AS n FROM well_data WHERE \"date\" = '{day}'")["n"][0] == 2_000
    with pytest.raises(InputError, match="would scan more than the workgroup's per-query limit"):
        backend.sql.query("SELECT count(*) AS n FROM well_data")
    execution = aws_client("athena").list_query_executions(WorkGroup=names.athena_workgroup)["QueryExecutionIds"]
    states = {aws_client("athena").get_query_execution(QueryExecutionId=e)["QueryExecution"]["Status"]["State"]
              for e in execution}
    assert "CANCELLED" in states


def test_the_emulated_cutoff_is_terraforms_default() -> None:
    assert Terraform.load().default("athena_bytes_scanned_cutoff") == ATHENA_CUTOFF_BYTES
