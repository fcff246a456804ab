"""The lake port: idempotent, date-partitioned table writes.

A consumer writes each micro-batch under a batch key derived from the shard and the batch's
first sequence number. A batch re-read after a crash starts at the same sequence number with
the same state, so it produces the same rows under the same key and replaces what the lost
attempt wrote: at-least-once reading, exactly-once landing. Splitting rows by date partition
is shared here; backends only store and swap files.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pyarrow as pa

from engine.schema import LAKE_TABLES

#: A partition is compacted once it holds at least this many files of final batches.
COMPACT_MIN_FILES = 8
#: Batch keys of files written by compaction start with this; such files are final by nature.
COMPACTED_PREFIX = "compacted-"
_EPOCH = date(1970, 1, 1)
_MILLIS_PER_DAY = 86_400_000


@dataclass(frozen=True)
class CompactionReport:
    """What one compaction pass did."""

    partitions: int
    files_before: int
    files_after: int


def parquet_options(schema: pa.Schema) -> dict[str, object]:
    """How every backend writes lake files: zstd; dictionaries only for strings (they do not pay
    off on sensor floats and double the write time); byte-stream-split floats (a third smaller)."""
    return {
        "compression": "zstd",
        "use_dictionary": [f.name for f in schema if pa.types.is_string(f.type)],
        "column_encoding": {f.name: "BYTE_STREAM_SPLIT" for f in schema if pa.types.is_floating(f.type)},
    }


def split_by_day(rows: pa.Table, time_column: str) -> dict[str, pa.Table]:
    """Rows grouped by the UTC day of ``time_column``, keyed by the Hive partition value ``YYYY-MM-DD``."""
    days = rows[time_column].cast(pa.int64()).to_numpy() // _MILLIS_PER_DAY
    return {
        (_EPOCH + timedelta(days=int(day))).isoformat(): rows.filter(pa.array(days == day))
        for day in np.unique(days)
    }


class Lake(ABC):
    """Write batches of rows into date partitions of a named table."""

    def write(self, table: str, batch_key: str, rows: pa.Table) -> None:
        """Store ``rows`` under ``batch_key``, replacing an earlier write of the same key.

        Writing no rows still replaces: a retried batch that yields nothing for a table (say, no
        alarm closed under a newly activated model) must not leave the first attempt's rows.
        """
        parts = split_by_day(rows, LAKE_TABLES[table].time_column) if rows.num_rows else {}
        self._write_partitions(table, batch_key, parts)

    @abstractmethod
    def _write_partitions(self, table: str, batch_key: str, parts: dict[str, pa.Table]) -> None:
        """Store one file per partition for a batch key, replacing everything the key held before
        (``parts`` may be empty: then only the replacing happens, if there is anything to replace)."""

    @abstractmethod
    def compact(self, table: str, is_final: Callable[[str], bool]) -> CompactionReport:
        """Merge the small files of each partition so queries stay fast.

        Only batches for which ``is_final(batch_key)`` holds are merged: a batch that may
        still be re-written after a crash must stay replaceable under its own key. Final
        batches never share a row key (the consumer drops rows it has landed before), so
        merging is a plain concatenation.
        """

    @abstractmethod
    def row_count(self, table: str) -> int:
        """Rows currently in a table."""

