"""Kinesis Data Streams as the stream port, within Kinesis's documented limits.

Writing (PutRecords): at most 500 records and 5 MiB per call, 1 MiB per record (data plus
partition key). A call can succeed for some records and fail for others
(``FailedRecordCount``), and whole calls can be throttled; failed records are retried with
exponential backoff and full jitter until Kinesis has them all. Per-well order survives the
retries because a call never carries two records of one partition key: a well's second
record goes in the next call, which is only made once the first is stored. Writes are paced
per shard below 1,000 records/s and 1 MiB/s.

Reading (GetRecords): iterators start AFTER_SEQUENCE_NUMBER of the checkpoint (or at
TRIM_HORIZON), and the iterator a read returns is kept for the next read from the same
position (for up to four of the five minutes it is valid), so a polling consumer does not
spend a GetShardIterator call per poll. Reads are paced per shard (one a second, after a
short burst), since every reader of a shard — consumers and Firehose — shares its five
reads a second. ``backlog`` counts what one read returns: exact up to 1,000 records,
a lower bound beyond (Kinesis has no record count; its own lag measure is time). Only the
consumer calls it (to tell a drained shard); observers get the lag as time instead, from the
``MillisBehindLatest`` of the consumer's own last read (:meth:`KinesisStream.millis_behind`,
checkpointed with the lease), so a status page never spends a shard's reads.

Resharding: a split or merge closes shards and opens children whose records continue the
parents' keys. :meth:`KinesisStream.shard_ids` lists closed parents (while Kinesis still
holds their records) before their children, and a child is not read until its parents are
drained up to their checkpoints, so a well's records are consumed in order across the
reshard, as the Kinesis Client Library does.

Kinesis trims records itself after the stream's retention period (set in Terraform).
Firehose reads the same stream into the raw bucket, so the raw archive needs nothing here.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from engine.backends.aws._errors import Resource, error_code, translated
from engine.backends.aws._pacing import TokenBucket, backoff_delay
from engine.errors import InputError
from engine.stream import OutgoingRecord, Stream, StreamRecord, hash_key

__all__ = ["KinesisStream"]

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024
MAX_RECORD_BYTES = 1024 * 1024
#: Kinesis's per-shard write limits, and the share of them this client allows itself.
SHARD_RECORDS_PER_SECOND = 1_000
SHARD_BYTES_PER_SECOND = 1024 * 1024
WRITE_HEADROOM = 0.9
#: GetRecords calls per second per shard this client makes (Kinesis allows five for all readers).
READS_PER_SECOND = 1.0
READ_BURST = 3
#: Records one GetRecords call may return (Kinesis's maximum).
MAX_RECORDS_PER_READ = 10_000
#: A shard iterator is valid for five minutes; one older than this is not reused.
ITERATOR_REUSE_SECONDS = 240.0
#: Kinesis may return empty pages before a shard's next records; follow at most this many.
MAX_EMPTY_PAGES = 5
#: backlog() counts the records of one read at most: Kinesis has no record-count API.
BACKLOG_SCAN_LIMIT = 1_000
#: Open-shard hash ranges (for pacing writes) are re-listed this often.
SHARD_MAP_SECONDS = 60.0
_RETRYABLE = frozenset({
    "ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException",
    "InternalFailure", "ServiceUnavailable", "KMSThrottlingException",
})


@dataclass(frozen=True)
class _Shard:
    shard_id: str
    start_hash: int
    end_hash: int
    parents: tuple[str, ...]
    closed: bool


class KinesisStream(Stream):
    """One Kinesis data stream; ``checkpoints`` reports the consumer's checkpoint per shard."""

    def __init__(self, client: Any, resource: Resource, checkpoints: Callable[[], dict[str, str | None]],
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self._resource = resource
        self._checkpoints = checkpoints
        self._sleep = sleep
        self._lock = threading.Lock()
        self._open: list[_Shard] = []
        self._open_listed_at = float("-inf")
        self._writes: dict[str, tuple[TokenBucket, TokenBucket]] = defaultdict(_write_buckets)
        self._reads: dict[str, TokenBucket] = defaultdict(_read_bucket)
        self._iterators: dict[tuple[str, str | None], tuple[str, float]] = {}
        self._started: set[str] = set()
        self._behind: dict[str, int] = {}

    @property
    def name(self) -> str:
        return self._resource.name

    # -- shards ---------------------------------------------------------------------
    def shard_ids(self) -> list[str]:
        return [shard.shard_id for shard in _parents_first(self._list_shards())]

    def parent_shards(self, shard_id: str) -> tuple[str, ...]:
        shards = {shard.shard_id: shard for shard in self._list_shards()}
        return shards[shard_id].parents if shard_id in shards else ()

    def _list_shards(self) -> list[_Shard]:
        shards, token = [], None
        with translated(self._resource):
            while True:
                page = (self._client.list_shards(NextToken=token) if token
                        else self._client.list_shards(StreamName=self.name))
                shards += [_shard(raw) for raw in page["Shards"]]
                token = page.get("NextToken")
                if not token:
                    break
        with self._lock:
            self._open = [s for s in shards if not s.closed]
            self._open_listed_at = time.monotonic()
        return shards

    def _shard_of(self, partition_key: str) -> str:
        """The open shard a key routes to (for pacing; Kinesis routes the record itself)."""
        if time.monotonic() - self._open_listed_at > SHARD_MAP_SECONDS:
            self._list_shards()
        point = hash_key(partition_key)
        return next((s.shard_id for s in self._open if s.start_hash <= point <= s.end_hash), "")

    # -- writing --------------------------------------------------------------------
    def put_records(self, records: Sequence[OutgoingRecord]) -> None:
        for record in records:
            if (size := _size(record)) > MAX_RECORD_BYTES:
                raise InputError(f"a record for {record.partition_key!r} is {size:,} bytes; "
                                 f"Kinesis takes at most {MAX_RECORD_BYTES:,} (put fewer observations in it)")
        for round_ in _rounds(records):
            for call in _calls(round_):
                self._deliver(call)

    def _deliver(self, pending: list[OutgoingRecord]) -> None:
        """Put records until Kinesis has stored every one, retrying failures with backoff."""
        for attempt in itertools.count():
            self._pace_writes(pending)
            response = self._put(pending)
            if response is not None:
                if not response.get("FailedRecordCount"):
                    return
                pending = [record for record, result in zip(pending, response["Records"], strict=True)
                           if "ErrorCode" in result]
            self._sleep(backoff_delay(attempt))

    def _put(self, records: list[OutgoingRecord]) -> dict[str, Any] | None:
        """One PutRecords call; None if Kinesis throttled or failed the whole call transiently."""
        with translated(self._resource):
            try:
                return self._client.put_records(StreamName=self.name, Records=[
                    {"Data": r.data, "PartitionKey": r.partition_key} for r in records])
            except ClientError as exc:
                if error_code(exc) in _RETRYABLE:
                    return None
                raise

    def _pace_writes(self, records: list[OutgoingRecord]) -> None:
        """Wait until each record's shard may take it (records and bytes per second)."""
        for record in records:
            shard = self._shard_of(record.partition_key)
            with self._lock:
                count, size = self._writes[shard]
            count.acquire(1)
            size.acquire(_size(record))

    # -- reading --------------------------------------------------------------------
    def get_records(self, shard_id: str, after: str | None, limit: int) -> list[StreamRecord]:
        if not self._may_start(shard_id, after):
            return []
        limit = max(1, min(limit, MAX_RECORDS_PER_READ))
        records: list[StreamRecord] = []
        for page in self._pages(shard_id, after, limit):
            records = [StreamRecord(shard_id, r["SequenceNumber"], r["PartitionKey"], bytes(r["Data"]))
                       for r in page["Records"]]
            if records:
                break
        return records

    def backlog(self, shard_id: str, after: str | None) -> int:
        """Records after ``after``: exact up to :data:`BACKLOG_SCAN_LIMIT`, a lower bound beyond."""
        for page in self._pages(shard_id, after, BACKLOG_SCAN_LIMIT):
            if page["Records"]:
                return len(page["Records"])
        return 0

    def millis_behind(self, shard_id: str) -> int | None:
        return self._behind.get(shard_id)

    def trim(self) -> int:
        return 0  # Kinesis drops records after the stream's retention period by itself

    def _pages(self, shard_id: str, after: str | None, limit: int) -> Iterator[dict[str, Any]]:
        """GetRecords pages from ``after`` on: the first with records, or up to the shard's tip."""
        iterator = self._iterator(shard_id, after)
        for _ in range(MAX_EMPTY_PAGES):
            page = self._read(shard_id, iterator, after, limit)
            yield page
            iterator = page.get("NextShardIterator")
            if page["Records"] or not iterator or not page.get("MillisBehindLatest"):
                return

    def _read(self, shard_id: str, iterator: str, after: str | None, limit: int) -> dict[str, Any]:
        """One GetRecords call, paced, retried when throttled; remembers where the next read starts."""
        attempt = 0
        while True:
            self._reads[shard_id].acquire()
            with translated(self._resource):
                try:
                    page = self._client.get_records(ShardIterator=iterator, Limit=limit)
                    break
                except ClientError as exc:
                    if error_code(exc) == "ExpiredIteratorException":
                        self._iterators.pop((shard_id, after), None)
                        iterator = self._iterator(shard_id, after)
                    elif error_code(exc) not in _RETRYABLE:
                        raise
            self._sleep(backoff_delay(attempt))
            attempt += 1
        if "MillisBehindLatest" in page:
            self._behind[shard_id] = int(page["MillisBehindLatest"])
        if following := page.get("NextShardIterator"):
            now = time.monotonic()
            position = page["Records"][-1]["SequenceNumber"] if page["Records"] else after
            self._iterators = {key: value for key, value in self._iterators.items()
                               if now - value[1] < ITERATOR_REUSE_SECONDS}
            self._iterators[(shard_id, position)] = (following, now)
        return page

    def _iterator(self, shard_id: str, after: str | None) -> str:
        cached = self._iterators.get((shard_id, after))
        if cached and time.monotonic() - cached[1] < ITERATOR_REUSE_SECONDS:
            return cached[0]
        start = ({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after} if after
                 else {"ShardIteratorType": "TRIM_HORIZON"})
        with translated(self._resource):
            return self._client.get_shard_iterator(StreamName=self.name, ShardId=shard_id, **start)["ShardIterator"]

    def _may_start(self, shard_id: str, after: str | None) -> bool:
        """A shard is read once it has started or every parent still listed is drained to its checkpoint."""
        if after is not None or shard_id in self._started:
            return True
        shards = {s.shard_id: s for s in self._list_shards()}
        parents = [p for p in shards[shard_id].parents if p in shards] if shard_id in shards else []
        if parents:
            checkpoints = self._checkpoints()
            if any(self.backlog(parent, checkpoints.get(parent)) for parent in parents):
                return False
        self._started.add(shard_id)
        return True


def _write_buckets() -> tuple[TokenBucket, TokenBucket]:
    """A shard's write pacing: Kinesis's records/s and bytes/s less headroom, a second's burst at most."""
    records_per_second = SHARD_RECORDS_PER_SECOND * WRITE_HEADROOM
    return (TokenBucket(records_per_second, records_per_second),
            TokenBucket(SHARD_BYTES_PER_SECOND * WRITE_HEADROOM, MAX_RECORD_BYTES))


def _read_bucket() -> TokenBucket:
    return TokenBucket(READS_PER_SECOND, READ_BURST)


def _shard(raw: dict[str, Any]) -> _Shard:
    parents = tuple(p for p in (raw.get("ParentShardId"), raw.get("AdjacentParentShardId")) if p)
    return _Shard(raw["ShardId"], int(raw["HashKeyRange"]["StartingHashKey"]),
                  int(raw["HashKeyRange"]["EndingHashKey"]), parents,
                  "EndingSequenceNumber" in raw.get("SequenceNumberRange", {}))


def _parents_first(shards: list[_Shard]) -> list[_Shard]:
    """Shards ordered by generation (parents before children), then by hash range."""
    by_id = {s.shard_id: s for s in shards}
    depth: dict[str, int] = {}

    def generation(shard: _Shard) -> int:
        if shard.shard_id not in depth:
            depth[shard.shard_id] = 1 + max((generation(by_id[p]) for p in shard.parents if p in by_id), default=-1)
        return depth[shard.shard_id]

    return sorted(shards, key=lambda s: (generation(s), s.start_hash, s.shard_id))


def _rounds(records: Sequence[OutgoingRecord]) -> list[list[OutgoingRecord]]:
    """Split records so that no round holds two of one partition key (round k: each key's k-th record)."""
    rounds: list[list[OutgoingRecord]] = []
    seen: dict[str, int] = defaultdict(int)
    for record in records:
        index = seen[record.partition_key]
        seen[record.partition_key] += 1
        if index == len(rounds):
            rounds.append([])
        rounds[index].append(record)
    return rounds


def _calls(records: list[OutgoingRecord]) -> Iterator[list[OutgoingRecord]]:
    """PutRecords-sized groups: at most 500 records and 5 MiB each."""
    call: list[OutgoingRecord] = []
    size = 0
    for record in records:
        record_size = _size(record)
        if call and (len(call) == MAX_RECORDS_PER_CALL or size + record_size > MAX_BYTES_PER_CALL):
            yield call
            call, size = [], 0
        call.append(record)
        size += record_size
    if call:
        yield call


def _size(record: OutgoingRecord) -> int:
    """What Kinesis counts against its size limits: data plus partition key."""
    return len(record.data) + len(record.partition_key.encode("utf-8"))
