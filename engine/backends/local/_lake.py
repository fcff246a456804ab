"""Hive-partitioned Parquet under the local home, with a SQLite manifest of live files.

Readers see only files listed in the manifest, and every change to it (a batch replacing
its earlier attempt, a compaction swapping many files for one) is one transaction, so a
query never sees a half-written batch or a partition counted twice. Replaced files are
deleted only after a grace period, so a query that listed them a moment ago can finish.
"""

from __future__ import annotations

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
        for table in LAKE_TABLES:
            shutil.rmtree(self.root / table, ignore_errors=True)

    def _write_partitions(self, table: str, batch_key: str, parts: dict[str, pa.Table]) -> None:
        if not parts and self._db.execute("SELECT 1 FROM files WHERE table_name = ? AND batch_key = ? LIMIT 1",
                                          (table, batch_key)).fetchone() is None:
            return  # nothing to write, nothing to replace
        written = [(partition, self._write_file(table, partition, batch_key, rows), rows.num_rows)
                   for partition, rows in parts.items()]
        with transaction(self._db):
            self._retire(self._db.execute(
                "SELECT path FROM files WHERE table_name = ? AND batch_key = ?", (table, batch_key)
            ).fetchall())
            self._db.execute("DELETE FROM files WHERE table_name = ? AND batch_key = ?", (table, batch_key))
            self._db.executemany(
                "INSERT INTO files VALUES (?, ?, ?, ?, ?)",
                [(table, partition, batch_key, path, rows) for partition, path, rows in written],
            )
        self._collect_garbage()

    def _write_file(self, table: str, partition: str, stem: str, rows: pa.Table) -> str:
        schema = LAKE_TABLES[table].schema
        return self._publish_file(table, partition, stem, lambda temporary: pq.write_table(
            rows.cast(schema), temporary, **parquet_options(schema)))

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
        """Any number of workers may compact at once: :meth:`_swap` refuses a merge whose members changed."""
        rows = self._db.execute("SELECT partition, batch_key, path, rows FROM files WHERE table_name = ?",
                                (table,)).fetchall()
        yield [LakeFile(*row) for row in rows]
        self._collect_garbage()

    def _merge(self, table: str, merge: Merge) -> bool:
        schema = LAKE_TABLES[table].schema
        sources = [self.root / member.path for member in merge.members]
        path = self._publish_file(table, merge.partition, merge.batch_key, partial(concatenate, sources, schema))
        if not self._swap(table, merge, path):
            (self.root / path).unlink(missing_ok=True)  # another worker compacted it first
            return False
        return True

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


class _Conflict(Exception):
    """Another worker changed the files being compacted; this compaction is abandoned."""
