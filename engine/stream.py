"""The stream port: a Kinesis-shaped log of records, sharded by partition key.

Shards own contiguous ranges of the 128-bit MD5 hash of the partition key, exactly as
Kinesis maps keys to shards, so a well always lands on one shard and its observations
stay in order whichever backend carries them.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

HASH_SPACE = 2**128


@dataclass(frozen=True)
class OutgoingRecord:
    """A record to append: the partition key (the well) and the encoded observations."""

    partition_key: str
    data: bytes


@dataclass(frozen=True)
class StreamRecord:
    """A record as read back from a shard."""

    shard_id: str
    sequence_number: str
    partition_key: str
    data: bytes


def hash_key(partition_key: str) -> int:
    """The 128-bit hash Kinesis uses to route a partition key."""
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8"), usedforsecurity=False).digest(), "big")


def shard_index(partition_key: str, shard_count: int) -> int:
    """Index of the shard (of ``shard_count`` equal hash ranges) that owns a key."""
    return hash_key(partition_key) * shard_count // HASH_SPACE


class Stream(ABC):
    """Append records, read a shard after a position, report backlog, trim old records."""

    @abstractmethod
    def shard_ids(self) -> list[str]:
        """Open shards, in a stable order."""

    @abstractmethod
    def put_records(self, records: Sequence[OutgoingRecord]) -> None:
        """Append every record (each to the shard of its key); return only once all are stored."""

    @abstractmethod
    def get_records(self, shard_id: str, after: str | None, limit: int) -> list[StreamRecord]:
        """Up to ``limit`` records of a shard after sequence number ``after`` (None: from the start)."""

    @abstractmethod
    def backlog(self, shard_id: str, after: str | None) -> int:
        """How many records of a shard lie after ``after`` (a consumer asking whether it drained a shard;
        observers use :meth:`observed_backlog`, which never spends the shard's reads)."""

    @abstractmethod
    def trim(self) -> int:
        """Drop records older than the retention period; return how many went."""

    def millis_behind(self, shard_id: str) -> int | None:
        """How far behind the shard's newest record this process's last read of it was; None if unknown."""
        return None

    def observed_backlog(self, shard_id: str, after: str | None) -> int | None:
        """The backlog as an observer (a status page) may learn it: counted where counting is free,
        None where it would spend the shard's reads, which belong to the consumers."""
        return None

    def parent_shards(self, shard_id: str) -> tuple[str, ...]:
        """The shards a shard was split or merged from; a stream that never reshards has none."""
        return ()
