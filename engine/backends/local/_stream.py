"""The embedded stream: a durable, sharded log in one SQLite database (WAL mode).

It keeps Kinesis semantics — fixed hash-range shards, increasing sequence numbers per
shard, batched appends, retention — so the producer and consumer cannot tell it from
Kinesis, and a laptop needs no server.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from engine.backends.local._sqlite import Database, transaction
from engine.stream import OutgoingRecord, Stream, StreamRecord, shard_index

#: Bytes one read returns at most (Kinesis's GetRecords: 10 MiB).
MAX_BYTES_PER_READ = 10 * 1024 * 1024

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    sequence_number INTEGER PRIMARY KEY AUTOINCREMENT,
    shard_id TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    data BLOB NOT NULL,
    arrived_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_shard ON records (shard_id, sequence_number);
CREATE TABLE IF NOT EXISTS stream_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class LocalStream(Stream):
    """Records in one table; the sequence number is global, hence increasing per shard too."""

    def __init__(self, db: Database, shard_count: int, retention_hours: int) -> None:
        self._db = db
        self._retention_seconds = retention_hours * 3600
        with transaction(db):
            db.execute("INSERT OR IGNORE INTO stream_meta VALUES ('shard_count', ?)", (str(shard_count),))
        (stored,) = db.execute("SELECT value FROM stream_meta WHERE key = 'shard_count'").fetchone()
        # The shard count is fixed when the stream is created, as for a Kinesis stream.
        self._shard_count = int(stored)

    def shard_ids(self) -> list[str]:
        return [shard_id(i) for i in range(self._shard_count)]

    def put_records(self, records: Sequence[OutgoingRecord]) -> None:
        now = time.time()
        rows = [(shard_id(shard_index(r.partition_key, self._shard_count)), r.partition_key, r.data, now)
                for r in records]
        with transaction(self._db):
            self._db.executemany(
                "INSERT INTO records (shard_id, partition_key, data, arrived_at) VALUES (?, ?, ?, ?)", rows
            )

    def get_records(self, shard_id: str, after: str | None, limit: int) -> list[StreamRecord]:
        """As Kinesis's GetRecords: up to ``limit`` records, and no more than :data:`MAX_BYTES_PER_READ`
        of them (at least one), so one read's memory stays bounded whatever the records' sizes."""
        rows = self._db.execute(
            "SELECT sequence_number, partition_key, data FROM records "
            "WHERE shard_id = ? AND sequence_number > ? ORDER BY sequence_number LIMIT ?",
            (shard_id, int(after or 0), limit),
        )
        records, size = [], 0
        for seq, key, data in rows:  # rows are fetched as they are iterated: the rest are never read
            size += len(data)
            if records and size > MAX_BYTES_PER_READ:
                break
            records.append(StreamRecord(shard_id, str(seq), key, bytes(data)))
        rows.close()  # ends the statement (and its read snapshot) now, not when the cursor is collected
        return records

    def backlog(self, shard_id: str, after: str | None) -> int:
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM records WHERE shard_id = ? AND sequence_number > ?",
            (shard_id, int(after or 0)),
        ).fetchone()
        return int(count)

    def observed_backlog(self, shard_id: str, after: str | None) -> int | None:
        return self.backlog(shard_id, after)  # a COUNT in SQLite takes nothing from the consumers

    def trim(self) -> int:
        cutoff = time.time() - self._retention_seconds
        with transaction(self._db):
            return self._db.execute("DELETE FROM records WHERE arrived_at < ?", (cutoff,)).rowcount


def shard_id(index: int) -> str:
    """Kinesis-style shard name."""
    return f"shardId-{index:012d}"
