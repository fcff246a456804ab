"""Read 3W instance files (2.0 Parquet, 1.0 CSV) into one canonical Arrow table.

Real 3W data has missing columns, empty cells, all-NaN sensors and unlabeled stretches;
all of that is normal and becomes nulls. What is not 3W (no timestamp, no known variable,
unreadable bytes, no rows) raises :class:`InputError` naming the file.

Input files are untrusted, and Parquet compresses constant columns to almost nothing: a few
hundred KB can declare 40 million rows. The producer therefore reads Parquet in chunks
(:func:`iter_instance`), and a file read whole (training, scoring, uploads) is sized first —
a Parquet file from its footer (rows and uncompressed bytes), a CSV file by counting its lines
in blocks — and refused with one line past ``PETROSTREAM_MAX_FILE_ROWS`` (real 3W instances hold
tens of thousands of rows). Folder walks are capped too, so a folder like ``/`` is refused
instead of walked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from engine import arrow_numpy
from engine.config import Settings
from engine.errors import InputError
from engine.read_ahead import read_ahead
from engine.schema import (
    EVENT_TIME_TYPE,
    OBSERVATION_SCHEMA,
    SENSOR_COLUMNS,
    SOURCE_TO_COLUMN,
    TIME_UNIT,
    V1_ONLY_SOURCE_COLUMNS,
)

if TYPE_CHECKING:  # pandas is imported by the one function that takes a frame: reading files never needs it
    import pandas as pd

SUFFIXES = (".parquet", ".csv")
_NAME = re.compile(r"^(WELL-\d+)_\d{14}$|^((?:SIMULATED|DRAWN)_\d+)$")
_LABEL_COLUMNS = ("class", "state")
#: Declared uncompressed bytes per row a Parquet file may have: 27 float64 sensors, labels, time and slack.
MAX_BYTES_PER_ROW = 512
#: Rows of a chunk when a file is read in chunks (:func:`iter_instance`).
STREAM_CHUNK_ROWS = 65_536
#: Rows from which a file's columns are decoded on several threads: below, starting the threads
#: costs more than they save (a 180-row file reads in 0.5 ms on one thread, 0.8 ms on several).
THREADED_READ_ROWS = 4_096
#: Rows of short Parquet files converted together (:func:`open_instances`): one group's tables, read
#: and converted, is what the group adds to memory at a time.
GROUP_ROWS = STREAM_CHUNK_ROWS
#: Consecutive files one thread opens, reads and converts at a time (:func:`open_instances`): short
#: files hold fewer than :data:`THREADED_READ_ROWS` rows, so a batch's short files are at most a group.
BATCH_FILES = GROUP_ROWS // THREADED_READ_ROWS
#: Threads opening batches of files (:func:`open_instances`): Arrow decodes without the GIL, so a
#: replay of thousands of short files reads on every core, up to four (each thread keeps a batch
#: in memory, one more waits for the caller).
READ_THREADS = min(os.cpu_count() or 1, 4)
#: Entries (files and folders) a folder walk looks at before it gives up.
MAX_WALK_ENTRIES = 100_000


@dataclass(frozen=True)
class InstanceFile:
    """A 3W instance on disk: where it is, whose well it is, which event it shows."""

    path: Path
    well_id: str
    event_class: int | None


def well_id_from_name(path: str | Path) -> str:
    """``WELL-00011_20140515110134.csv`` -> ``WELL-00011``; simulated/drawn keep their name.

    Other names are accepted as a user's own well: the file stem is the well id.
    """
    stem = os.path.basename(path).split(".")[0]  # not Path(path).name: a replay names thousands of files
    match = _NAME.match(stem)
    if match:
        return match.group(1) or match.group(2)
    return stem


def _event_class_of(path: Path) -> int | None:
    return int(path.parent.name) if path.parent.name.isdigit() else None


def discover(paths: Iterable[str | Path], max_entries: int = MAX_WALK_ENTRIES) -> list[InstanceFile]:
    """All instance files under the given files or folders, in a stable order.

    A walk that meets more than ``max_entries`` entries is refused: the folder is too wide to
    be a data set, and walking it would take the caller's time and memory.
    """
    found: list[Path] = []
    seen = 0
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for folder, subfolders, names in os.walk(path):
                seen += len(subfolders) + len(names)
                if seen > max_entries:
                    raise InputError(f"{path}: more than {max_entries:,} files and folders under it; "
                                     "choose the folder of the data set itself")
                found.extend(Path(folder, n) for n in names if os.path.splitext(n)[1] in SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    return [InstanceFile(p, well_id_from_name(p), _event_class_of(p)) for p in sorted(set(found))]


def max_file_rows() -> int:
    """The most rows an instance file may hold when read whole (``PETROSTREAM_MAX_FILE_ROWS``)."""
    return Settings.from_env().max_file_rows


def file_rows(path: Path) -> int:
    """Rows an instance file holds, without reading it: the Parquet footer, or the CSV's lines counted in blocks."""
    with _readable(path):
        if path.suffix == ".parquet":
            return pq.ParquetFile(path).metadata.num_rows
        return max(_lines(path) - 1, 0)


def check_size(path: Path, max_rows: int) -> None:
    """:class:`InputError` if a file holds more than ``max_rows`` rows (or, for Parquet, declares more
    uncompressed bytes than that many rows take), found without decompressing anything."""
    with _readable(path):
        if path.suffix == ".parquet":
            metadata = pq.ParquetFile(path).metadata
            rows = metadata.num_rows
            declared = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
        else:
            rows, declared = max(_lines(path) - 1, 0), 0
    if rows > max_rows or declared > max_rows * MAX_BYTES_PER_ROW:
        size = f" ({declared / 2**20:,.1f} MiB uncompressed)" if declared else ""
        raise InputError(f"{path}: {rows:,} rows{size}, more than the {max_rows:,} rows a file read whole may "
                         "hold (PETROSTREAM_MAX_FILE_ROWS)")


def read_instance(path: str | Path, max_rows: int | None = None) -> pa.Table:
    """One instance as a table of :data:`OBSERVATION_SCHEMA`, sorted by event time, one row per time.

    A file of more than ``max_rows`` rows (default ``PETROSTREAM_MAX_FILE_ROWS``) is refused
    before anything is decompressed; :func:`iter_instance` reads a file of any size in chunks.
    """
    path = Path(path)
    check_size(path, max_rows if max_rows is not None else max_file_rows())
    with _readable(path):
        table = pq.read_table(path) if path.suffix == ".parquet" else pa_csv.read_csv(path)
    return _canonical(table, path)


def iter_instance(path: str | Path, chunk_rows: int = STREAM_CHUNK_ROWS) -> Iterator[pa.Table]:
    """One instance as canonical chunks in time order, one chunk in memory at a time.

    Parquet is read ``chunk_rows`` at a time, so a file of any size (40 million constant rows
    fit in a few hundred KB) replays in bounded memory. A CSV file cannot be compressed on
    disk; it is read whole under the row cap. Each chunk keeps only rows later than the previous
    chunk's last: 3W files are in time order, and a row out of order in one that is not is
    dropped rather than sent back in time.
    """
    yield from open_instance(path, chunk_rows)[1]


def open_instance(path: str | Path, chunk_rows: int = STREAM_CHUNK_ROWS) -> tuple[int, Iterator[pa.Table]]:
    """A file's rows as :func:`file_rows` counts them, and its chunks as :func:`iter_instance` reads them.

    A Parquet footer is parsed once for both: a replay of thousands of short files would otherwise
    spend a tenth of its time parsing each footer a second time to show its progress.
    """
    path = Path(path)
    if path.suffix != ".parquet":
        return file_rows(path), _csv_chunks(path, chunk_rows)
    parquet = _open_parquet(path)
    return parquet.metadata.num_rows, _parquet_chunks(parquet, path, chunk_rows)


def open_instances(paths: Sequence[Path], chunk_rows: int = STREAM_CHUNK_ROWS,
                   group_rows: int = GROUP_ROWS) -> Iterator[tuple[int, Iterator[pa.Table]]]:
    """:func:`open_instance` of each path, in order, with short Parquet files read ahead and converted together.

    The full 3W data set is some 2,000 files of a few hundred rows: converting each alone costs
    a few dozen Arrow calls per file for a few KB of data. Consecutive files of fewer than
    :data:`THREADED_READ_ROWS` rows and the same columns are read one by one, then converted as
    one table of at most ``group_rows`` rows and handed out as one slice per file (the slices
    share the group's buffers). A file the group cannot take (unreadable, empty, values that do
    not convert) is opened again on its own, so it fails as :func:`open_instance` fails, naming it,
    when its chunks are read; the rest of its group is converted without it.

    Reading a short file is some 0.5 ms in Arrow, mostly without the GIL: batches of
    :data:`BATCH_FILES` files are opened, read and converted on :data:`READ_THREADS` threads, at
    most one batch per thread ahead of the caller. A file whose footer cannot be read raises
    :class:`InputError` naming it when its batch is reached.
    """
    paths = [Path(p) for p in paths]
    batches = [paths[start:start + BATCH_FILES] for start in range(0, len(paths), BATCH_FILES)]
    opened = partial(_open_batch, chunk_rows=chunk_rows, group_rows=group_rows)
    for batch in read_ahead(opened, batches, READ_THREADS, READ_THREADS):
        yield from batch


def _open_batch(paths: list[Path], chunk_rows: int, group_rows: int) -> list[tuple[int, Iterator[pa.Table]]]:
    """A batch opened, read and converted whole, on the reading thread rather than as the caller iterates."""
    return list(_open_in_groups(paths, chunk_rows, group_rows))


def _open_in_groups(paths: list[Path], chunk_rows: int, group_rows: int) -> Iterator[tuple[int, Iterator[pa.Table]]]:
    """:func:`open_instances` of a batch, on the calling thread."""
    short_rows = min(THREADED_READ_ROWS - 1, chunk_rows)
    group: list[tuple[Path, pa.Table]] = []
    grouped = 0
    for path in paths:
        parquet = _open_parquet(path) if path.suffix == ".parquet" else None
        rows = parquet.metadata.num_rows if parquet is not None else 0
        table = _read_whole(parquet, path) if parquet is not None and 0 < rows <= short_rows else None
        if group and (table is None or grouped + rows > group_rows or not table.schema.equals(group[0][1].schema)):
            yield from _convert_group(group)
            group, grouped = [], 0
        if table is not None:
            group.append((path, table))
            grouped += rows
        elif parquet is not None and rows > short_rows:
            yield rows, _parquet_chunks(parquet, path, chunk_rows)
        else:
            yield open_instance(path, chunk_rows)
    if group:
        yield from _convert_group(group)


def _read_whole(parquet: pq.ParquetFile, path: Path) -> pa.Table | None:
    """A short file's table as stored, on this thread (threads cost more than they save), the file
    closed after; None if it cannot be read."""
    try:
        with _readable(path), parquet:
            return parquet.read(use_threads=False)
    except InputError:
        return None


def _convert_group(group: list[tuple[Path, pa.Table]]) -> Iterator[tuple[int, Iterator[pa.Table]]]:
    """Each file of a group as ``(rows, chunks)``: its one canonical chunk, converted with the others."""
    try:
        together = pa.concat_tables([table for _, table in group]).combine_chunks()  # one chunk a column
        converted = _canonical_files(together, [path for path, _ in group],
                                     [table.num_rows for _, table in group])
    except InputError:  # some file's values do not convert: each file alone, the faulty one failing
        yield from ((table.num_rows, _converted(table, path)) for path, table in group)
        return
    yield from ((table.num_rows, iter([chunk])) for (_, table), chunk in zip(group, converted, strict=True))


def _converted(table: pa.Table, path: Path) -> Iterator[pa.Table]:
    """A table read from ``path`` as its canonical chunk, converted (or failing) when it is asked for."""
    yield _canonical(table, path)


def _open_parquet(path: Path) -> pq.ParquetFile:
    """A Parquet file's reader, its footer parsed. Column chunks are read as asked for rather than
    buffered ahead: that halves the cost of reading a short file, and a long one is read in chunks."""
    with _readable(path):
        return pq.ParquetFile(path, pre_buffer=False)


def _csv_chunks(path: Path, chunk_rows: int) -> Iterator[pa.Table]:
    table = read_instance(path)
    yield from (table.slice(start, chunk_rows) for start in range(0, table.num_rows, chunk_rows))


def _parquet_chunks(parquet: pq.ParquetFile, path: Path, chunk_rows: int) -> Iterator[pa.Table]:
    with _readable(path):
        rows = parquet.metadata.num_rows
        if rows == 0:
            raise InputError(f"{path}: empty 3W file (no rows)")
        if rows <= chunk_rows:  # one read, the file closed before the rows are handed out
            with parquet:
                table = parquet.read(use_threads=rows >= THREADED_READ_ROWS)
            yield _canonical(table, path)
            return
        last: int | None = None
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            chunk = _canonical(pa.Table.from_batches([batch]), path)
            if last is not None:  # a chunk is in time order: what is not later than ``last`` comes first
                chunk = chunk.slice(int(np.searchsorted(arrow_numpy.values(chunk["event_time"]), last, side="right")))
            if chunk.num_rows:
                last = chunk["event_time"][-1].value
                yield chunk


@contextmanager
def _readable(path: Path) -> Iterator[None]:
    """Turn the reader's failures on ``path`` into one :class:`InputError` line naming it."""
    try:
        yield
    except (pa.ArrowException, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not a readable 3W file ({reason[:200]})") from exc


def _lines(path: Path) -> int:
    """Lines of a text file (a last line without its newline included), counted a block at a time."""
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def _canonical(table: pa.Table, path: Path) -> pa.Table:
    return _canonical_files(table, [path], [table.num_rows])[0]


def _canonical_files(table: pa.Table, paths: list[Path], rows: list[int]) -> list[pa.Table]:
    """The rows of one or more files (``rows[i]`` rows of ``paths[i]``, one after the other, all with
    the same columns) converted together, one table per file; errors name the first file."""
    path = paths[0]
    names = [n for n in table.column_names if not n.startswith("__index_level_")]
    if "timestamp" not in names:
        raise InputError(f"{path}: not a 3W file: no 'timestamp' column")
    known = [n for n in names if n in SOURCE_TO_COLUMN]
    if not known:
        raise InputError(f"{path}: not a 3W file: none of the 3W variables among its columns ({', '.join(names[:6])})")
    unknown = set(names) - set(known) - set(_LABEL_COLUMNS) - {"timestamp"} - V1_ONLY_SOURCE_COLUMNS
    if unknown:
        raise InputError(f"{path}: not a 3W file: unknown columns {sorted(unknown)[:5]}")
    if 0 in rows:
        raise InputError(f"{paths[rows.index(0)]}: empty 3W file (no rows)")
    columns = {
        "well_id": arrow_numpy.repeated_strings([well_id_from_name(p) for p in paths], rows),
        "event_time": _timestamps(table["timestamp"], path),
        **_sensors(table, known, path),
    }
    for label in _LABEL_COLUMNS:
        if label in names:
            columns[label] = _numeric(table[label], path, label)
    arrays = [(columns[f.name] if columns[f.name].type == f.type else columns[f.name].cast(f.type, safe=False))
              if f.name in columns else pa.nulls(table.num_rows, f.type) for f in OBSERVATION_SCHEMA]
    whole = pa.Table.from_arrays(arrays, schema=OBSERVATION_SCHEMA)
    if len(rows) == 1:
        return [_sorted_unique_times(whole)]
    # Which files are in time order, from the group's times at once: each file's own check (its
    # times out of Arrow, cast to integers) was about a sixth of converting a 180-row file in a group.
    starts = np.cumsum([0, *rows[:-1]])
    times = arrow_numpy.values(whole["event_time"])
    later = np.append(True, times[1:] > times[:-1])  # each row later than the one before it
    later[starts] = True  # a file's first row may come before the previous file's last
    in_order = np.logical_and.reduceat(later, starts)
    return [whole.slice(start, count) if ordered else _sorted_unique_times(whole.slice(start, count))
            for start, count, ordered in zip(starts.tolist(), rows, in_order.tolist(), strict=True)]


def _sensors(table: pa.Table, sources: list[str], path: Path) -> dict[str, pa.Array]:
    """The sensor columns as float32 with NaN as null, converted as one NumPy matrix.

    A short file (the full 3W data set is some 2,000 of them) costs more in per-column Arrow calls
    than in data; a float64 value rounds to the same float32 in NumPy as in an Arrow cast.
    """
    matrix = np.empty((len(sources), table.num_rows), dtype=np.float32)
    for row, source in enumerate(sources):
        column = table[source]
        if column.null_count == len(column):  # an empty sensor, common in 3W
            matrix[row] = np.nan
            continue
        if pa.types.is_integer(column.type):
            column = column.cast(pa.float32(), safe=False)  # one rounding, as a cast to the lake's type
        elif not pa.types.is_floating(column.type):
            column = _as_float(column, path, source)
        matrix[row] = arrow_numpy.values(column)  # nulls come as NaN, and NaN becomes null below
    columns = arrow_numpy.float32_columns(matrix, np.isnan(matrix))
    return {SOURCE_TO_COLUMN[source]: column for source, column in zip(sources, columns, strict=True)}


def _timestamps(column: pa.ChunkedArray, path: Path) -> pa.ChunkedArray:
    """Event times as UTC milliseconds; naive times in 3W are UTC."""
    if pa.types.is_timestamp(column.type):
        if column.type.tz is not None:
            column = column.cast(pa.timestamp(column.type.unit))  # drop the zone, keeping the instant
        return column.cast(pa.timestamp(TIME_UNIT), safe=False).cast(EVENT_TIME_TYPE)
    try:
        return column.cast(pa.string()).cast(pa.timestamp("us")).cast(pa.timestamp(TIME_UNIT),
                                                                      safe=False).cast(EVENT_TIME_TYPE)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(f"{path}: unreadable timestamp ({str(exc).splitlines()[0][:120]})") from exc


def _numeric(column: pa.ChunkedArray, path: Path, name: str) -> pa.ChunkedArray:
    """A numeric column with NaN as null (so SQL aggregates skip it); text that is not a number is an error."""
    if pa.types.is_null(column.type):
        return column.cast(pa.float64())
    if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
        column = _as_float(column, path, name)
    if pa.types.is_floating(column.type):
        column = pc.if_else(pc.is_nan(column), pa.nulls(len(column), column.type), column)
    return column


def _as_float(column: pa.ChunkedArray, path: Path, name: str) -> pa.ChunkedArray:
    try:
        return column.cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(f"{path}: column {name!r} has a non-numeric value "
                         f"({str(exc).splitlines()[0][:120]})") from exc


def _sorted_unique_times(table: pa.Table) -> pa.Table:
    """Rows in time order; of rows sharing a timestamp, the last in the file wins."""
    times = arrow_numpy.values(table["event_time"])
    if np.all(times[1:] > times[:-1]):
        return table  # 3W files are in time order: no copy of every column
    order = np.argsort(times, kind="stable")
    ordered = times[order]
    last_of_each = np.append(ordered[1:] != ordered[:-1], True)
    return table.take(order[last_of_each])


def to_observations(frame: pd.DataFrame) -> pa.Table:
    """Any frame with ``well_id``, ``event_time`` and some known columns -> the canonical table.

    Absent sensors and labels become all-null columns, so every producer, consumer and lake
    writer sees the same schema.
    """
    import pandas as pd

    arrays = []
    for field in OBSERVATION_SCHEMA:
        if field.name in frame.columns:
            values = frame[field.name]
            if field.name in _LABEL_COLUMNS or field.name in SENSOR_COLUMNS:
                values = values.astype("float64")
            elif isinstance(values.dtype, pd.DatetimeTZDtype):
                values = values.dt.tz_convert("UTC").dt.tz_convert(None).to_numpy()  # naive UTC instants
            arrays.append(pa.array(values, from_pandas=True).cast(field.type, safe=False))
        else:
            arrays.append(pa.nulls(len(frame), field.type))
    return pa.Table.from_arrays(arrays, schema=OBSERVATION_SCHEMA)
