"""The lake port: idempotent, date-partitioned table writes.

A consumer writes each micro-batch under a batch key derived from the shard and the batch's
first sequence number. A batch re-read after a crash starts at the same sequence number with
the same state, so it produces the same rows under the same key and replaces what the lost
attempt wrote: at-least-once reading, exactly-once landing. Splitting rows by date partition
and choosing what compaction merges are shared here; backends only store and swap files.

Compaction is tiered so that it costs O(new data): a partition's final batches (tier 0) are
merged once at least :data:`COMPACT_MIN_FILES` of them exist, into one tier-1 file; as many
tier-1 files merge into a tier-2 file, and so on up to :data:`MAX_COMPACTION_TIER`, whose files
are never rewritten. A row is therefore written at most ``1 + MAX_COMPACTION_TIER`` times,
however long the day's partition keeps growing (merging everything into one file per pass
would rewrite the whole day every pass: quadratic in the day's data).
"""

from __future__ import annotations

import itertools
import time
import uuid
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from engine import arrow_numpy
from engine.schema import LAKE_TABLES

#: A partition's files of one tier are merged once there are at least this many of them.
COMPACT_MIN_FILES = 8
#: Files of this tier are never merged again (each row is written at most 1 + this many times).
MAX_COMPACTION_TIER = 3
#: A staged attempt still unpublished after this long, and named by no lease, was abandoned (its
#: writer crashed before its checkpoint); :meth:`Lake.sweep` deletes it.
ABANDONED_AFTER_SECONDS = 3600.0
#: Batch keys of files written by compaction start with this (then ``T<tier>-``); they are final by nature.
COMPACTED_PREFIX = "compacted-"
_EPOCH = date(1970, 1, 1)
_MILLIS_PER_DAY = 86_400_000


@dataclass(frozen=True)
class CompactionReport:
    """What one compaction pass did."""

    partitions: int
    files_before: int
    files_after: int
    #: Rows copied into merged files (what the pass cost, beyond reading the list of files).
    rows_rewritten: int = 0


@dataclass(frozen=True)
class LakeFile:
    """One live file of a table: its partition, the batch key it was written under, where it is."""

    partition: str
    batch_key: str
    path: str
    rows: int


@dataclass(frozen=True)
class Merge:
    """Files of one partition and tier to be replaced by one file of the next tier."""

    partition: str
    members: tuple[LakeFile, ...]
    batch_key: str

    @property
    def rows(self) -> int:
        return sum(member.rows for member in self.members)


def compaction_tier(batch_key: str) -> int:
    """0 for a consumer's batch, else the tier a compacted file's key names."""
    if not batch_key.startswith(COMPACTED_PREFIX):
        return 0
    return int(batch_key[len(COMPACTED_PREFIX):].split("-", 1)[0].removeprefix("T"))


def plan_compaction(files: Iterable[LakeFile], is_final: Callable[[str], bool]) -> list[Merge]:
    """The merges a compaction pass makes: per partition and tier below the last, every file that
    can no longer change (a compacted file, or a batch ``is_final`` accepts), once there are
    :data:`COMPACT_MIN_FILES` of them; members in batch-key order (shard, then sequence), so each
    well's rows stay in time order."""
    groups: dict[tuple[str, int], list[LakeFile]] = defaultdict(list)
    for file in files:
        tier = compaction_tier(file.batch_key)
        if tier < MAX_COMPACTION_TIER and (tier > 0 or is_final(file.batch_key)):
            groups[(file.partition, tier)].append(file)
    return [Merge(partition, tuple(sorted(members, key=lambda f: (f.batch_key, f.path))),
                  f"{COMPACTED_PREFIX}T{tier + 1}-{uuid.uuid4().hex[:16]}")
            for (partition, tier), members in sorted(groups.items()) if len(members) >= COMPACT_MIN_FILES]


#: Compaction gathers consecutive small row groups into row groups of about this many rows.
MERGED_ROW_GROUP_ROWS = 65_536
#: Within a merged row group, rows are ordered by these columns (those the table has).
MERGED_ORDER: tuple[str, ...] = ("well_id", "event_time")
#: A merged row group is assembled from slices of its sources when its runs of consecutive
#: source rows average at least this many rows; shorter runs are taken (copied) row by row.
#: Measured on well rows: the two cost the same (writing included) at runs of about 512 rows.
SLICED_RUN_ROWS = 512


def concatenate(sources: Iterable[Any], schema: pa.Schema, target: Any) -> int:
    """Copy Parquet sources' rows into ``target`` in row groups of about :data:`MERGED_ROW_GROUP_ROWS`
    rows, each ordered by well and time; the rows written.

    Every batch is one row group, a few thousand rows when catching up and a few rows at 1 Hz,
    of all the shard's wells, and a query pays per row group it reads and per row it decodes.
    Gathered consecutive row groups, each well's rows together, let a one-well query skip most
    of every column but the well's: a 24-hour History view of one of 40 wells cost a third of
    the CPU. Only consecutive row groups are gathered, so each well's rows stay in time order
    through the file, and no more than one merged row group is in memory at once.
    """
    order = [name for name in MERGED_ORDER if name in schema.names]
    # Strings decoded as their dictionaries, then cast back: 10-13 % less to read a batch of well rows
    # than strings decoded one by one (the same strings reach the writer).
    strings = [field.name for field in schema if pa.types.is_string(field.type)]
    rows, pending, gathered = 0, [], 0
    with pq.ParquetWriter(target, schema, **parquet_options(schema)) as writer:
        for source in sources:
            parquet = pq.ParquetFile(source, read_dictionary=strings)
            for index in range(parquet.num_row_groups):
                group = parquet.read_row_group(index).cast(schema)
                pending.append(group)
                gathered += group.num_rows
                if gathered >= MERGED_ROW_GROUP_ROWS:
                    rows += _write_group(writer, pending, order)
                    pending, gathered = [], 0
        rows += _write_group(writer, pending, order)
    return rows


def _write_group(writer: pq.ParquetWriter, tables: list[pa.Table], order: list[str]) -> int:
    """Write ``tables`` as one row group in ``order`` (nothing when empty); the rows written."""
    if not tables:
        return 0
    table = pa.concat_tables(tables)
    if order:
        table = _sorted(table, order)
    writer.write_table(table, row_group_size=max(table.num_rows, 1))
    return table.num_rows


def _sorted(table: pa.Table, order: list[str]) -> pa.Table:
    """``table.sort_by`` the ``order`` columns (ascending, nulls last, stable), cheaper.

    Each gathered row group (a batch, or a group merged before) holds each well's rows in runs
    of consecutive rows, so the sorted table is mostly long runs of consecutive rows: zero-copy
    slices of them cost next to nothing, where a take copies every column. The order comes from
    the runs themselves when they allow it (:func:`_run_order`), else from NumPy: Arrow's
    ``sort_indices`` costs over a tenth of a second on its first call in a process, and a
    consumer compacts on its way out.
    """
    positions = _run_order(table, order)
    if positions is None:
        keys = [key for name in order for key in _sort_keys(table[name])]
        positions = np.lexsort(keys[::-1])
    starts = np.flatnonzero(np.diff(positions) != 1) + 1
    if len(starts) >= len(positions) // SLICED_RUN_ROWS:
        return table.take(arrow_numpy.array(positions))  # not the ndarray itself: pyarrow would import pandas
    bounds = [0, *starts.tolist(), len(positions)]
    return pa.concat_tables([table.slice(positions[start], end - start)
                             for start, end in itertools.pairwise(bounds)])


def _run_order(table: pa.Table, order: list[str]) -> np.ndarray | None:
    """The positions a stable sort by ``order`` puts the rows in, found from runs of one first key
    instead of sorting every row; None when the runs do not decide the order alone (the caller sorts).

    A merge's rows come in runs of one well, each in time order, and a well's runs follow each
    other in time (batches in sequence order, records of a well in time order): then the sorted
    rows are the runs themselves, stably ordered by well, and only the run boundaries are sorted.
    That holds when every key is present (no nulls), the first is a string, the second (if any)
    numbers or times that never decrease within a run nor from one run of a well to its next.
    """
    if not table.num_rows or not 1 <= len(order) <= 2 or any(table[name].null_count for name in order) \
            or not pa.types.is_string(table.schema.field(order[0]).type):
        return None
    ranks = _string_ranks(table[order[0]].combine_chunks())
    bounds = np.flatnonzero(ranks[1:] != ranks[:-1]) + 1
    starts, ends = np.append(0, bounds), np.append(bounds, len(ranks))
    runs = np.argsort(ranks[starts], kind="stable")
    if len(order) == 2:
        second = table.schema.field(order[1]).type
        if not (pa.types.is_integer(second) or pa.types.is_floating(second) or pa.types.is_timestamp(second)):
            return None
        times = arrow_numpy.values(table[order[1]])
        steps = times[1:] >= times[:-1]  # False for NaN too, whose place the full sort decides
        steps[bounds - 1] = True  # a run's first row need not follow the row before it
        before, after = runs[:-1], runs[1:]
        same_well = ranks[starts[before]] == ranks[starts[after]]
        if not steps.all() or not (times[ends[before] - 1] <= times[starts[after]])[same_well].all():
            return None
    lengths = (ends - starts)[runs]
    return np.arange(len(ranks)) + np.repeat(starts[runs] - (np.cumsum(lengths) - lengths), lengths)


def _sort_keys(column: pa.ChunkedArray) -> list[np.ndarray]:
    """Integer keys, most significant first, that order ``column`` as Arrow sorts it ascending:
    nulls last (tied among themselves), strings by their code points (as Arrow compares their
    UTF-8 bytes), numbers and timestamps by value."""
    array = column.combine_chunks()
    present = arrow_numpy.valid(array)
    if pa.types.is_string(array.type):
        ordered = np.where(present, _string_ranks(array), 0)
    else:
        ordered = np.where(present, arrow_numpy.values(array), 0)
    return [~present, ordered]


def _string_ranks(array: pa.Array) -> np.ndarray:
    """Each string's rank among the array's distinct strings, ordered by code point (as Arrow
    compares their UTF-8 bytes); meaningless under nulls."""
    encoded = pc.dictionary_encode(array)
    words = encoded.dictionary.to_pylist()
    ranks = np.empty(len(words), dtype=np.int64)
    ranks[sorted(range(len(words)), key=words.__getitem__)] = np.arange(len(words))
    return ranks[arrow_numpy.filled(encoded.indices, 0)]


#: zstd level of a batch's own files: compaction rewrites them within minutes (at the default level),
#: so they are written fast rather than small. On a 38k-row batch of well rows, -1 against the
#: default: 17 % less CPU to write, 1.8 % larger.
BATCH_COMPRESSION_LEVEL = -1


def parquet_options(schema: pa.Schema, *, batch: bool = False) -> dict[str, object]:
    """How every backend writes lake files: zstd (faster for a ``batch``'s files, see
    :data:`BATCH_COMPRESSION_LEVEL`); dictionaries only for strings (they do not pay off on sensor
    floats and double the write time); byte-stream-split floats (a third smaller)."""
    return {
        "compression": "zstd",
        **({"compression_level": BATCH_COMPRESSION_LEVEL} if batch else {}),
        "use_dictionary": [f.name for f in schema if pa.types.is_string(f.type)],
        "column_encoding": {f.name: "BYTE_STREAM_SPLIT" for f in schema if pa.types.is_floating(f.type)},
    }


def split_by_day(rows: pa.Table, time_column: str) -> dict[str, pa.Table]:
    """Rows grouped by the UTC day of ``time_column``, keyed by the Hive partition value ``YYYY-MM-DD``."""
    days = arrow_numpy.values(rows[time_column]) // _MILLIS_PER_DAY
    first = int(days.min())
    if first == days.max():  # the usual batch: one day, and no filter copying every column (nor np.unique,
        return {(_EPOCH + timedelta(days=first)).isoformat(): rows}  # which imports numpy.ma: 10 ms)
    return {
        (_EPOCH + timedelta(days=int(day))).isoformat(): rows.filter(arrow_numpy.array(days == day))
        for day in np.unique(days)
    }


def attempt_batch_key(attempt: str) -> str:
    """The batch key a staged attempt (:meth:`Lake.stage`) belongs to."""
    return attempt.split("#", 1)[0].rsplit("-", 1)[0]


class Lake(ABC):
    """Write batches of rows into date partitions of a named table.

    A write is two steps, so that the consumer can put its fenced checkpoint between them:
    :meth:`stage` writes a batch's files where no reader looks, and :meth:`publish` makes them,
    at once per table, everything readers see of the batch key. A consumer publishes only after
    its conditional checkpoint succeeded, so a worker whose lease was taken meanwhile (it stalled
    past the lease time) never shows its batch: it discards it.
    """

    def write(self, table: str, batch_key: str, rows: pa.Table) -> None:
        """Store ``rows`` under ``batch_key`` at once, replacing an earlier write of the same key.

        Writing no rows still replaces: a retried batch that yields nothing for a table (say, no
        alarm closed under a newly activated model) must not leave the first attempt's rows.
        """
        self.publish(self.stage(batch_key, {table: rows}))

    def stage(self, batch_key: str, tables: dict[str, pa.Table]) -> str:
        """Write a batch's rows of some tables (one file per table and date partition) where no
        reader looks yet; the attempt's name (with whatever a backend needs to find its files:
        keep it whole, as the lease's ``pending``), for :meth:`publish` or :meth:`discard`."""
        return self._stage(f"{batch_key}-{uuid.uuid4().hex[:12]}", batch_key, {
            table: split_by_day(rows, LAKE_TABLES[table].time_column) if rows.num_rows else {}
            for table, rows in tables.items()})

    @abstractmethod
    def _stage(self, attempt: str, batch_key: str, parts: dict[str, dict[str, pa.Table]]) -> str:
        """Store an attempt's files (table -> partition -> rows; a table may have none) where no
        reader looks; the attempt's full name."""

    @abstractmethod
    def publish(self, attempt: str, fence: Callable[[], bool] | None = None) -> None:
        """Make a staged attempt, in every table it staged, all that readers see of its batch key
        (what the key held before is replaced, atomically per table). Publishing an attempt a
        second time does nothing: a new lease owner rolls forward the attempt its predecessor's
        checkpoint named, and that predecessor may resume and publish it too. ``fence`` says
        whether the caller still holds the right to publish (its lease); a backend whose publish
        is not one atomic step asks it before each change readers see, and stops once it fails."""

    @abstractmethod
    def discard(self, attempt: str) -> None:
        """Delete a staged attempt that will never be published (its checkpoint was refused)."""

    def sweep(self, keep: Collection[str], older_than: float = ABANDONED_AFTER_SECONDS) -> int:
        """Discard attempts staged more than ``older_than`` seconds ago, except those in ``keep``
        (the attempts leases name, which their next owner publishes); how many went."""
        cutoff = time.time() - older_than
        abandoned = [attempt for attempt, staged_at in self._staged_attempts()
                     if staged_at < cutoff and attempt not in keep]
        for attempt in abandoned:
            self.discard(attempt)
        return len(abandoned)

    @abstractmethod
    def _staged_attempts(self) -> list[tuple[str, float]]:
        """Every staged, unpublished attempt and when it was staged (epoch seconds)."""

    def compact(self, table: str, is_final: Callable[[str], bool]) -> CompactionReport:
        """Merge the small files of each partition so queries stay fast (see :func:`plan_compaction`).

        Only batches for which ``is_final(batch_key)`` holds are merged: a batch that may
        still be re-written after a crash must stay replaceable under its own key. Final
        batches never share a row key (the consumer drops rows it has landed before), so
        merging is a plain concatenation.
        """
        with self._compaction(table) as files:
            if files is None:
                return CompactionReport(0, 0, 0)  # another worker is compacting this table
            before = after = rows = 0
            for merge in plan_compaction(files, is_final):
                if self._merge(table, merge):
                    before, after, rows = before + len(merge.members), after + 1, rows + merge.rows
        return CompactionReport(after, before, after, rows)

    @abstractmethod
    def _compaction(self, table: str) -> AbstractContextManager[list[LakeFile] | None]:
        """Hold the table for one compaction pass: its live files, or None if another worker holds it."""

    @abstractmethod
    def _merge(self, table: str, merge: Merge) -> bool:
        """Replace ``merge.members`` by one file under ``merge.batch_key``, atomically for readers;
        False if one of them changed meanwhile (the merge is abandoned)."""

    @abstractmethod
    def row_count(self, table: str) -> int:
        """Rows currently in a table."""

