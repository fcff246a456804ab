"""The Kinesis stream against moto: PutRecords limits, retries with backoff, pacing, iterators, resharding.

Failures are injected into the in-process moto server's PutRecords: chosen records come back
with ``ProvisionedThroughputExceededException`` (and are not stored), or whole calls are
throttled, exactly as Kinesis reports them.
"""

from __future__ import annotations

import base64
import itertools
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.core.exceptions import JsonRESTError
from moto.kinesis.models import KinesisBackend

from engine.backend import open_backend
from engine.backends.aws import AwsNames
from engine.backends.aws import _kinesis as kinesis_module
from engine.backends.aws._kinesis import MAX_BYTES_PER_CALL, KinesisStream
from engine.backends.aws._pacing import BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS, TokenBucket, backoff_delay
from engine.config import Settings
from engine.errors import InputError
from engine.stream import OutgoingRecord, shard_index
from tests.backends import aws_account, aws_client

_THROTTLED = {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard"}


@pytest.fixture
def names() -> Iterator[AwsNames]:
    with aws_account(shard_count=4) as names:
        yield names


def stream_of(names: AwsNames, sleep: Callable[[float], None] = time.sleep, client: Any = None,
              checkpoints: Callable[[], dict[str, str | None]] = dict) -> KinesisStream:
    return KinesisStream(client or aws_client("kinesis"), names.resource("stream_name", "Kinesis stream"),
                         checkpoints, sleep)


class FlakyKinesis:
    """Wraps moto's PutRecords: fails chosen records, or whole calls, and logs what each call carried."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_record: Callable[[int, dict[str, Any]], bool],
                 throttle_calls: set[int] = frozenset()) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        original = KinesisBackend.put_records

        def put_records(backend: KinesisBackend, stream_arn: str, stream_name: str,
                        records: list[dict[str, Any]]) -> dict[str, Any]:
            self.calls.append(records)
            attempt = len(self.calls)
            if attempt in throttle_calls:
                raise JsonRESTError("ProvisionedThroughputExceededException", "Rate exceeded for stream")
            failing = [fail_record(attempt, r) for r in records]
            kept = [r for r, failed in zip(records, failing, strict=True) if not failed]
            stored = iter(original(backend, stream_arn, stream_name, kept)["Records"] if kept else [])
            results = [dict(_THROTTLED) if failed else next(stored) for failed in failing]
            return {"FailedRecordCount": sum(failing), "Records": results}

        monkeypatch.setattr(KinesisBackend, "put_records", put_records)


def stored(stream: KinesisStream) -> dict[str, list[bytes]]:
    """Partition key -> data of its records, in stream order."""
    found: dict[str, list[bytes]] = defaultdict(list)
    for shard_id in stream.shard_ids():
        for record in stream.get_records(shard_id, None, 10_000):
            found[record.partition_key].append(record.data)
    return found


def test_failed_records_and_throttled_calls_are_retried_with_backoff_until_all_are_stored_in_order(
        names: AwsNames, monkeypatch: pytest.MonkeyPatch) -> None:
    wells = [f"WELL-{n:05d}" for n in range(10)]
    records = [OutgoingRecord(w, f"{w}:{i}".encode()) for i in range(3) for w in wells]  # 3 records per well

    def fail(attempt: int, record: dict[str, Any]) -> bool:
        # WELL-00003's first record fails on calls 1-3; WELL-00007's first and second records fail once each.
        return ((record["PartitionKey"] == "WELL-00003" and attempt <= 3)
                or (record["PartitionKey"] == "WELL-00007" and attempt in (1, 5)))

    flaky = FlakyKinesis(monkeypatch, fail, throttle_calls={2, 3})
    attempts: list[int] = []
    monkeypatch.setattr(kinesis_module, "backoff_delay", lambda attempt: attempts.append(attempt) or 0.25 * attempt)
    slept: list[float] = []
    no_retries = boto3.session.Session().client("kinesis", config=Config(retries={"total_max_attempts": 1}))
    stream_of(names, sleep=slept.append, client=no_retries).put_records(records)

    assert stored(stream_of(names)) == {w: [f"{w}:{i}".encode() for i in range(3)] for w in wells}
    assert len(flaky.calls) == 7
    for call in flaky.calls:  # a well's next record only goes once the previous one is stored
        assert len({r["PartitionKey"] for r in call}) == len(call)
    # First round: a partial failure, two throttled calls, then the rest; second round: one partial failure.
    assert attempts == [0, 1, 2, 0]
    assert slept == [0.0, 0.25, 0.5, 0.0]


def test_backoff_is_exponential_with_full_jitter() -> None:
    for attempt in range(12):
        bound = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** attempt)
        samples = [backoff_delay(attempt) for _ in range(300)]
        assert all(0 <= s <= bound for s in samples)
        assert max(samples) > 0.8 * bound and min(samples) < 0.2 * bound  # spread over the whole range


def test_each_call_stays_within_500_records_and_5_mib(names: AwsNames, monkeypatch: pytest.MonkeyPatch) -> None:
    flaky = FlakyKinesis(monkeypatch, lambda attempt, record: False)
    stream = stream_of(names)
    stream.put_records([OutgoingRecord(f"WELL-{n:05d}", b"x") for n in range(1_200)])
    assert [len(call) for call in flaky.calls] == [500, 500, 200]

    flaky.calls.clear()
    per_shard: dict[int, list[str]] = defaultdict(list)
    for n in itertools.count():
        group = per_shard[shard_index(key := f"WELL-{n:05d}", 4)]
        if len(group) < 2:
            group.append(key)
        if len(per_shard) == 4 and all(len(g) == 2 for g in per_shard.values()):
            break
    big = 700 * 1024  # eight records of 700 KiB: 5.6 MB, more than one call may carry
    stream.put_records([OutgoingRecord(key, bytes(big)) for group in per_shard.values() for key in group])
    assert [len(call) for call in flaky.calls] == [7, 1]
    assert all(sum(len(base64.b64decode(r["Data"])) + len(r["PartitionKey"]) for r in call) <= MAX_BYTES_PER_CALL
               for call in flaky.calls)


def test_a_record_over_1_mib_is_refused_naming_its_well(names: AwsNames) -> None:
    with pytest.raises(InputError, match="WELL-00042"):
        stream_of(names).put_records([OutgoingRecord("WELL-00042", bytes(1024 * 1024))])


def test_writes_to_one_shard_are_paced_below_1000_records_per_second(names: AwsNames) -> None:
    stream = stream_of(names)
    one_shard = [key for n in range(20_000) if shard_index(key := f"WELL-{n:05d}", 4) == 0][:1_900]
    started = time.monotonic()
    stream.put_records([OutgoingRecord(key, b"x") for key in one_shard])
    elapsed = time.monotonic() - started
    # A full bucket lets 900 go at once; the other 1,000 take at least 1,000 / 900 s.
    assert elapsed >= 1_000 / 900 - 0.05
    assert stored(stream) == {key: [b"x"] for key in one_shard}


def test_a_token_bucket_allows_its_burst_then_its_rate() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    bucket = TokenBucket(rate=100.0, capacity=50.0, clock=lambda: now[0], sleep=sleep)
    waits = [bucket.acquire() for _ in range(250)]
    assert sum(1 for w in waits if w == 0) == 50  # the burst
    assert now[0] == pytest.approx(2.0)  # the other 200 at 100 per second
    assert bucket.acquire(500) == pytest.approx(0.5)  # more than the bucket holds waits for a full bucket


def test_polling_a_shard_reuses_its_iterator(names: AwsNames) -> None:
    client = boto3.session.Session().client("kinesis")
    iterators: list[dict[str, Any]] = []
    client.meta.events.register("before-call.kinesis.GetShardIterator", lambda **kw: iterators.append(kw))
    stream = stream_of(names, client=client)
    stream.put_records([OutgoingRecord("WELL-00001", bytes([i])) for i in range(5)])
    shard = stream.shard_ids()[shard_index("WELL-00001", 4)]
    first = stream.get_records(shard, None, 2)
    second = stream.get_records(shard, first[-1].sequence_number, 2)
    third = stream.get_records(shard, second[-1].sequence_number, 10)
    assert stream.get_records(shard, third[-1].sequence_number, 10) == []
    assert [r.data for r in first + second + third] == [bytes([i]) for i in range(5)]
    assert len(iterators) == 1  # every later poll continued with the iterator the previous read returned


def test_after_a_split_the_parent_is_read_to_its_checkpoint_before_the_children(tmp_path: Path) -> None:
    with aws_account(shard_count=1) as names:
        backend = open_backend(Settings(backend="aws", home=tmp_path))
        stream = backend.stream
        wells = [f"WELL-{n:05d}" for n in range(8)]
        stream.put_records([OutgoingRecord(w, f"{w}:before".encode()) for w in wells])
        (parent,) = stream.shard_ids()
        aws_client("kinesis").split_shard(StreamName=names.stream_name, ShardToSplit=parent,
                                          NewStartingHashKey=str(2 ** 127))
        stream.put_records([OutgoingRecord(w, f"{w}:after".encode()) for w in wells])

        ids = stream.shard_ids()
        assert ids[0] == parent and len(ids) == 3  # the closed parent first, then its two children
        children = ids[1:]
        assert all(stream.get_records(child, None, 100) == [] for child in children)  # parent not drained

        (lease,) = [lease for lease in backend.leases.balance("worker", [parent]) if lease.shard_id == parent]
        parent_records = stream.get_records(parent, None, 100)
        assert [r.data for r in parent_records] == [f"{w}:before".encode() for w in wells]
        backend.leases.checkpoint(lease, parent_records[-1].sequence_number, None)

        seen: dict[str, list[bytes]] = {r.partition_key: [r.data] for r in parent_records}
        for child in children:
            for record in stream.get_records(child, None, 100):
                seen[record.partition_key].append(record.data)
        assert seen == {w: [f"{w}:before".encode(), f"{w}:after".encode()] for w in wells}
