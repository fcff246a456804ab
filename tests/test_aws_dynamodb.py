"""Leases and replay progress in the DynamoDB table, beyond the shared contract: the item layout."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from engine.backends.aws import AwsNames
from engine.backends.aws._dynamodb import KEY, DynamoLeaseStore, DynamoReplayLog
from engine.leases import LeaseLost
from engine.replay_log import ReplayProgress
from tests.backends import aws_account, aws_client


@pytest.fixture
def names() -> Iterator[AwsNames]:
    with aws_account() as names:
        yield names


def store(names: AwsNames, application: str) -> DynamoLeaseStore:
    return DynamoLeaseStore(aws_client("dynamodb"), names.resource("lease_table", "DynamoDB table"), application)


def items(names: AwsNames) -> dict[str, dict]:
    scanned = aws_client("dynamodb").scan(TableName=names.lease_table)["Items"]
    return {item[KEY]["S"]: item for item in scanned}


def test_each_consumer_application_keeps_its_own_leases_and_compressed_state(names: AwsNames) -> None:
    alerts, archive = store(names, "alerts"), store(names, "archive")
    (lease,) = alerts.balance("worker-1", ["shardId-000000000000"])
    state = json.dumps({"WELL-00001": {"sensors": [1.5] * 500}}).encode()
    alerts.checkpoint(lease, "49590338271490256608559692538361571095921575989136588898", state)
    assert archive.balance("worker-2", ["shardId-000000000000"])[0].checkpoint is None  # not alerts' progress
    stored = items(names)["lease#alerts#shardId-000000000000"]
    assert len(stored["state"]["B"]) < len(state) / 10  # zlib: DynamoDB bills writes per KiB
    assert alerts.leases()[0].state == state
    assert alerts.checkpoints() == {"shardId-000000000000": "49590338271490256608559692538361571095921575989136588898"}
    assert sorted(k for k in items(names) if k.startswith("worker#")) == ["worker#alerts#worker-1",
                                                                         "worker#archive#worker-2"]


def test_a_write_with_a_stale_counter_is_refused_by_the_condition(names: AwsNames) -> None:
    first, second = store(names, "app"), store(names, "app")
    (lease,) = first.balance("worker-1", ["shard-a"])
    first.checkpoint(lease, "1", None)  # the counter moved on
    with pytest.raises(LeaseLost):
        second.checkpoint(lease, "2", None)  # a writer holding the old counter
    assert first.leases()[0].checkpoint == "1"


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
