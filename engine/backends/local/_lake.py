"""Hive-partitioned Parquet under the local home, with a SQLite manifest of live files.

Readers see only files listed in the manifest, and every change to it (a batch replacing
its earlier attempt, a compaction swapping many files for one) is one transaction, so a
query never sees a half-written batch or a partition counted twice. Replaced files are
deleted only after a grace period, so a query that listed them a moment ago can finish.
A consumer's batch is first *staged* (its files written and recorded in ``staged``, listed
nowhere readers look) and published after its checkpoint, in one transaction that also deletes
the record, so publishing it again does nothing.
"""

from __future__ import annotations

import fcntl
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from engine.backends.local._sqlite import Database, transaction
from engine.lake import Lake, LakeFile, Merge, concatenate, parquet_options
from engine.schema import LAKE_TABLES, PARTITION_COLUMN

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    table_name TEXT NOT NULL,
    partition TEXT NOT NULL,
    batch_key TEXT NOT NULL,
    path TEXT NOT NULL,
    rows INTEGER NOT NULL,
    PRIMARY KEY (table_name, batch_key, partition)
);
CREATE TABLE IF NOT EXISTS garbage (path TEXT PRIMARY KEY, removed_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS staged (
    attempt TEXT NOT NULL,
    table_name TEXT NOT NULL,
    batch_key TEXT NOT NULL,
    partition TEXT,
    path TEXT,
    rows INTEGER NOT NULL,
    staged_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS staged_by_attempt ON staged (attempt);
"""
GRACE_SECONDS = 120.0


class LocalLake(Lake):
    """Parquet files in ``root/<table>/date=YYYY-MM-DD/`` listed in ``root/_manifest.sqlite``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._db = Database(root / "_manifest.sqlite", _SCHEMA)

    def files(self, table: str) -> list[str]:
        """Absolute paths of the table's live files (what a query must read)."""
        rows = self._db.execute("SELECT path FROM files WHERE table_name = ? ORDER BY path", (table,))
        return [str(self.root / path) for (path,) in rows]

    def newest_partition(self, table: str) -> str | None:
        """The newest date partition holding a live file of ``table``."""
        (newest,) = self._db.execute("SELECT MAX(partition) FROM files WHERE table_name = ?", (table,)).fetchone()
        return newest

    def row_count(self, table: str) -> int:
        (count,) = self._db.execute(
            "SELECT COALESCE(SUM(rows), 0) FROM files WHERE table_name = ?", (table,)
        ).fetchone()
        return int(count)

    def erase(self) -> None:
        """Forget every table's files: the manifest first (queries see an empty lake at once), then the files."""
        with transaction(self._db):
            self._db.execute("DELETE FROM files")
            self._db.execute("DELETE FROM garbage")
            self._db.execute("DELETE FROM staged")
        for table in LAKE_TABLES:
            shutil.rmtree(self.root / table, ignore_errors=True)

    def _stage(self, attempt: str, batch_key: str, parts: dict[str, dict[str, pa.Table]]) -> str:
        # One row per file, and one without a file per table: its key is replaced even by no rows.
        now = time.time()
        staged = [(attempt, table, batch_key, partition, self._write_file(table, partition, attempt, rows),
                   rows.num_rows, now) for table, by_day in parts.items() for partition, rows in by_day.items()]
        staged += [(attempt, table, batch_key, None, None, 0, now) for table in parts]
        with transaction(self._db):
            self._db.executemany("INSERT INTO staged VALUES (?, ?, ?, ?, ?, ?, ?)", staged)
        return attempt

    def publish(self, attempt: str, fence: Callable[[], bool] | None = None) -> None:
        """One transaction: the key's earlier files out, the attempt's in, its record gone (so a
        second publish finds nothing to do); atomic, so ``fence`` is not needed."""
        with transaction(self._db):
            staged = self._db.execute("SELECT table_name, partition, batch_key, path, rows FROM staged "
                                      "WHERE attempt = ?", (attempt,)).fetchall()
            for table, batch_key in sorted({(table, key) for table, _, key, _, _ in staged}):
                self._retire(self._db.execute(
                    "SELECT path FROM files WHERE table_name = ? AND batch_key = ?", (table, batch_key)
                ).fetchall())
                self._db.execute("DELETE FROM files WHERE table_name = ? AND batch_key = ?", (table, batch_key))
            self._db.executemany("INSERT INTO files VALUES (?, ?, ?, ?, ?)",
                                 [row for row in staged if row[3] is not None])
            self._db.execute("DELETE FROM staged WHERE attempt = ?", (attempt,))
        if staged:
            self._collect_garbage()

    def discard(self, attempt: str) -> None:
        with transaction(self._db):
            paths = self._db.execute("SELECT path FROM staged WHERE attempt = ? AND path IS NOT NULL",
                                     (attempt,)).fetchall()
            self._db.execute("DELETE FROM staged WHERE attempt = ?", (attempt,))
        for (path,) in paths:
            (self.root / path).unlink(missing_ok=True)  # never listed: no query can be reading it

    def _staged_attempts(self) -> list[tuple[str, float]]:
        return self._db.execute("SELECT attempt, MIN(staged_at) FROM staged GROUP BY attempt").fetchall()

    def _write_file(self, table: str, partition: str, stem: str, rows: pa.Table) -> str:
        schema = LAKE_TABLES[table].schema
        return self._publish_file(table, partition, stem, lambda temporary: pq.write_table(
            rows.cast(schema), temporary, **parquet_options(schema, batch=True)))

    def _publish_file(self, table: str, partition: str, stem: str, write: Callable[[Path], object]) -> str:
        """Write a new, uniquely named file through a temporary name; return its path under the root.

        Names are never reused, so a query that listed a file never sees it change under it.
        """
        relative = Path(table) / f"{PARTITION_COLUMN}={partition}" / f"{stem}-{uuid.uuid4().hex[:8]}.parquet"
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".tmp")
        write(temporary)
        temporary.rename(target)
        return str(relative)

    @contextmanager
    def _compaction(self, table: str) -> Iterator[list[LakeFile] | None]:
        """Any number of workers may compact at once: they split the merges (see :meth:`_merge`), and
        :meth:`_swap` refuses one whose members changed."""
        rows = self._db.execute("SELECT partition, batch_key, path, rows FROM files WHERE table_name = ?",
                                (table,)).fetchall()
        yield [LakeFile(*row) for row in rows]
        self._collect_garbage()

    def _merge(self, table: str, merge: Merge) -> bool:
        """Merge unless another worker is merging the partition or has merged these members: workers
        that stop together (each compacts on its way out) split the partitions instead of all reading
        and rewriting every one, and all but one throwing the result away."""
        with _partition_lock(self.root / "_locks" / f"{table}-{merge.partition}.lock") as held:
            if not held or not self._all_live(table, merge):
                return False
            schema = LAKE_TABLES[table].schema
            sources = [self.root / member.path for member in merge.members]
            path = self._publish_file(table, merge.partition, merge.batch_key,
                                      partial(concatenate, sources, schema))
            if not self._swap(table, merge, path):
                (self.root / path).unlink(missing_ok=True)  # a member changed meanwhile
                return False
        return True

    def _all_live(self, table: str, merge: Merge) -> bool:
        live = {path for (path,) in self._db.execute(
            "SELECT path FROM files WHERE table_name = ? AND partition = ?", (table, merge.partition))}
        return all(member.path in live for member in merge.members)

    def _swap(self, table: str, merge: Merge, path: str) -> bool:
        """Replace the members by one file in one transaction, unless one of them is gone already."""
        try:
            with transaction(self._db):
                deleted = self._db.executemany(
                    "DELETE FROM files WHERE table_name = ? AND batch_key = ? AND partition = ? AND path = ?",
                    [(table, m.batch_key, merge.partition, m.path) for m in merge.members],
                ).rowcount
                if deleted != len(merge.members):
                    raise _Conflict
                self._retire([(m.path,) for m in merge.members])
                self._db.execute("INSERT INTO files VALUES (?, ?, ?, ?, ?)",
                                 (table, merge.partition, merge.batch_key, path, merge.rows))
        except _Conflict:
            return False
        return True

    def _retire(self, paths: list[tuple[str]]) -> None:
        now = time.time()
        self._db.executemany("INSERT OR REPLACE INTO garbage VALUES (?, ?)", [(p, now) for (p,) in paths])

    def _collect_garbage(self) -> None:
        cutoff = time.time() - GRACE_SECONDS
        expired = self._db.execute("SELECT path FROM garbage WHERE removed_at < ?", (cutoff,)).fetchall()
        for (path,) in expired:
            (self.root / path).unlink(missing_ok=True)
        if expired:
            self._db.executemany("DELETE FROM garbage WHERE path = ?", expired)


@contextmanager
def _partition_lock(path: Path) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` if no one else does (whether it was got is yielded); the
    operating system frees it when the holder exits, so a crashed worker leaves nothing to expire."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _Conflict(Exception):
    """Another worker changed the files being compacted; this compaction is abandoned."""
