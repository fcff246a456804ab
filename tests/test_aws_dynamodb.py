"""Leases and replay progress in the DynamoDB table, beyond the shared contract: the item layout."""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterator
from dataclasses import replace

import pytest

from engine.backends.aws import AwsNames
from engine.backends.aws._dynamodb import KEY, DynamoLeaseStore, DynamoReplayLog
from engine.backends.aws._state_objects import STATE_PREFIX, S3StateObjects
from engine.leases import LeaseLost
from engine.replay_log import ReplayProgress
from tests.backends import aws_account, aws_client


@pytest.fixture
def names() -> Iterator[AwsNames]:
    with aws_account() as names:
        yield names


def store(names: AwsNames, application: str) -> DynamoLeaseStore:
    states = S3StateObjects(aws_client("s3"), names.resource("curated_bucket", "S3 bucket"), application)
    return DynamoLeaseStore(aws_client("dynamodb"), names.resource("lease_table", "DynamoDB table"), application,
                            states)


def state_objects(names: AwsNames) -> dict[str, bytes]:
    s3 = aws_client("s3")
    listed = s3.list_objects_v2(Bucket=names.curated_bucket, Prefix=f"{STATE_PREFIX}/").get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=names.curated_bucket, Key=o["Key"])["Body"].read() for o in listed}


def items(names: AwsNames) -> dict[str, dict]:
    scanned = aws_client("dynamodb").scan(TableName=names.lease_table)["Items"]
    return {item[KEY]["S"]: item for item in scanned}


def test_each_consumer_application_keeps_its_own_leases_and_states_outside_them(names: AwsNames) -> None:
    alerts, archive = store(names, "alerts"), store(names, "archive")
    (lease,) = alerts.balance("worker-1", ["shardId-000000000000"])
    state = json.dumps({"WELL-00001": {"sensors": [1.5] * 500}}).encode()
    first = alerts.checkpoint(lease, "49590338271490256608559692538361571095921575989136588898", state)
    assert archive.balance("worker-2", ["shardId-000000000000"])[0].checkpoint is None  # not alerts' progress
    stored = items(names)["lease#alerts#shardId-000000000000"]
    assert "state" not in stored and stored["state_ref"]["S"] == first.state_ref
    (blob,) = state_objects(names).values()  # one object, zlib: the JSON is repetitive
    assert len(blob) < len(state) / 10
    assert alerts.state(alerts.leases()[0]) == state
    second = alerts.checkpoint(first, "49590338271490256608559692538361571095921575989136588899", b"{}")
    assert list(state_objects(names).values()) == [zlib.compress(b"{}")]  # the replaced blob is gone
    with pytest.raises(LeaseLost):
        alerts.state(first)  # a reader holding the old pointer learns the lease moved on
    assert alerts.latest_states() == {"shardId-000000000000": b"{}"} and second.state_ref != first.state_ref
    assert alerts.checkpoints() == {"shardId-000000000000": "49590338271490256608559692538361571095921575989136588899"}
    assert sorted(k for k in items(names) if k.startswith("worker#")) == ["worker#alerts#worker-1",
                                                                         "worker#archive#worker-2"]


def test_a_write_with_a_stale_counter_is_refused_by_the_condition(names: AwsNames) -> None:
    first, second = store(names, "app"), store(names, "app")
    (lease,) = first.balance("worker-1", ["shard-a"])
    first.checkpoint(lease, "1", b"kept")  # the counter moved on
    with pytest.raises(LeaseLost):
        second.checkpoint(lease, "2", b"refused")  # a writer holding the old counter
    assert first.leases()[0].checkpoint == "1"
    assert list(state_objects(names).values()) == [zlib.compress(b"kept")]  # the refused writer's blob is gone


def test_the_latest_replay_pointer_never_goes_back(names: AwsNames) -> None:
    log = DynamoReplayLog(aws_client("dynamodb"), names.resource("lease_table", "DynamoDB table"))
    now = time.time()
    newer = ReplayProgress("new", ["a.parquet"] * 2_000, 1.0, 10, updated_at=now)
    log.save(newer)
    log.save(ReplayProgress("old", ["b.parquet"], 1.0, 10, updated_at=now - 60))  # a late save of an older replay
    assert log.latest().replay_id == "new" and log.load("old").files == ["b.parquet"]
    log.save(replace(newer, sent_rows=5, updated_at=now + 1))
    assert log.latest().sent_rows == 5
    assert len(items(names)["replay#new"]["progress"]["B"]) < 2_000  # 2,000 file names, compressed
