"""The lake port: idempotent, date-partitioned table writes.

A consumer writes each micro-batch under a batch key derived from the shard and the batch's
first sequence number. A batch re-read after a crash starts at the same sequence number with
the same state, so it produces the same rows under the same key and replaces what the lost
attempt wrote: at-least-once reading, exactly-once landing. Splitting rows by date partition
is shared here; backends only store and swap files.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.schema import LAKE_TABLES

#: A partition is compacted once it holds at least this many files of final batches.
COMPACT_MIN_FILES = 8


@dataclass(frozen=True)
class CompactionReport:
    """What one compaction pass did."""

    partitions: int
    files_before: int
    files_after: int
    duplicates_dropped: int


def partition_of(times: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Hive partition value (``YYYY-MM-DD``, UTC) of each timestamp."""
    return pc.strftime(times, format="%Y-%m-%d")


def deduplicated(tables: Sequence[pa.Table], table: str) -> pa.Table:
    """All rows of ``tables`` with one row per key of ``table``, sorted by time and key.

    Duplicates only exist if a batch was re-written after its files were compacted; any
    copy is as good as another, and the copy from the latest of ``tables`` wins so the
    choice is deterministic.
    """
    spec = LAKE_TABLES[table]
    rows = pa.concat_tables([t.cast(spec.schema) for t in tables])
    rows = rows.append_column("_row", pa.array(np.arange(rows.num_rows)))
    keep = rows.group_by(list(spec.key_columns), use_threads=False).aggregate([("_row", "max")])["_row_max"]
    order = [(spec.time_column, "ascending")] + [(key, "ascending") for key in spec.key_columns]
    return rows.take(keep).drop_columns(["_row"]).sort_by(order)


class Lake(ABC):
    """Write batches of rows into date partitions of a named table."""

    def write(self, table: str, batch_key: str, rows: pa.Table) -> None:
        """Store ``rows`` under ``batch_key``, replacing an earlier write of the same key."""
        if rows.num_rows == 0:
            return
        dates = partition_of(rows[LAKE_TABLES[table].time_column])
        parts = {}
        for value in pc.unique(dates).to_pylist():
            parts[value] = rows.filter(pc.equal(dates, value))
        self._write_partitions(table, batch_key, parts)

    @abstractmethod
    def _write_partitions(self, table: str, batch_key: str, parts: dict[str, pa.Table]) -> None:
        """Store one file per partition for a batch key, atomically replacing older ones."""

    @abstractmethod
    def compact(self, table: str, is_final: Callable[[str], bool]) -> CompactionReport:
        """Merge the small files of each partition so queries stay fast.

        Only batches for which ``is_final(batch_key)`` holds are merged: a batch that may
        still be re-written after a crash must stay replaceable under its own key.
        """

    @abstractmethod
    def row_count(self, table: str) -> int:
        """Rows currently in a table."""

