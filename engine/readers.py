"""Read 3W instance files (2.0 Parquet, 1.0 CSV) into one canonical Arrow table.

Real 3W data has missing columns, empty cells, all-NaN sensors and unlabeled stretches;
all of that is normal and becomes nulls. What is not 3W (no timestamp, no known variable,
unreadable bytes, no rows) raises :class:`InputError` naming the file.

Input files are untrusted, and Parquet compresses constant columns to almost nothing: a few
hundred KB can declare 40 million rows. A file is therefore sized before it is decompressed —
a Parquet file from its footer (rows and uncompressed bytes), a CSV file by counting its lines
in blocks — and refused with one line past ``PETROSTREAM_MAX_FILE_ROWS`` (real 3W instances hold
tens of thousands of rows). Folder walks are capped too, so a folder like ``/`` is refused
instead of walked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from engine.config import Settings
from engine.errors import InputError
from engine.schema import (
    EVENT_TIME_TYPE,
    OBSERVATION_SCHEMA,
    SENSOR_COLUMNS,
    SOURCE_TO_COLUMN,
    TIME_UNIT,
    V1_ONLY_SOURCE_COLUMNS,
)

SUFFIXES = (".parquet", ".csv")
_NAME = re.compile(r"^(WELL-\d+)_\d{14}$|^((?:SIMULATED|DRAWN)_\d+)$")
_LABEL_COLUMNS = ("class", "state")
#: Declared uncompressed bytes per row a Parquet file may have: 27 float64 sensors, labels, time and slack.
MAX_BYTES_PER_ROW = 512
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
    stem = Path(path).name.split(".")[0]
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
                found.extend(Path(folder, n) for n in names if Path(n).suffix in SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    return [InstanceFile(p, well_id_from_name(p), _event_class_of(p)) for p in sorted(set(found))]


def max_file_rows() -> int:
    """The most rows an instance file may hold (``PETROSTREAM_MAX_FILE_ROWS``)."""
    return Settings.from_env().max_file_rows


def check_parquet_size(path: Path, max_rows: int) -> int:
    """The rows a Parquet file declares in its footer; :class:`InputError` past the cap, before any decompression."""
    metadata = pq.ParquetFile(path).metadata
    declared = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    if metadata.num_rows > max_rows or declared > max_rows * MAX_BYTES_PER_ROW:
        raise InputError(f"{path}: declares {metadata.num_rows:,} rows ({declared / 2**20:,.0f} MiB uncompressed), "
                         f"more than the {max_rows:,} rows a file may hold (PETROSTREAM_MAX_FILE_ROWS)")
    return metadata.num_rows


def read_instance(path: str | Path, max_rows: int | None = None) -> pa.Table:
    """One instance as a table of :data:`OBSERVATION_SCHEMA`, sorted by event time, one row per time.

    A file of more than ``max_rows`` rows (default ``PETROSTREAM_MAX_FILE_ROWS``) is refused
    before it is decompressed (Parquet) or as soon as the cap is passed (CSV).
    """
    path = Path(path)
    limit = max_rows if max_rows is not None else max_file_rows()
    try:
        file_rows(path, limit)
        table = pq.read_table(path) if path.suffix == ".parquet" else pa_csv.read_csv(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not a readable 3W file ({reason[:200]})") from exc
    return _canonical(table, path)


def file_rows(path: Path, max_rows: int | None = None) -> int:
    """Rows an instance file holds, without reading it: the Parquet footer, or the CSV's lines counted
    in blocks; :class:`InputError` past ``max_rows`` (default ``PETROSTREAM_MAX_FILE_ROWS``)."""
    limit = max_rows if max_rows is not None else max_file_rows()
    if path.suffix == ".parquet":
        try:
            return check_parquet_size(path, limit)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{path}: not a readable 3W file ({str(exc).splitlines()[0][:200]})") from exc
    rows = max(_lines(path) - 1, 0)
    if rows > limit:
        raise InputError(f"{path}: {rows:,} lines, more than the {limit:,} rows a file may hold "
                         "(PETROSTREAM_MAX_FILE_ROWS)")
    return rows


def _lines(path: Path) -> int:
    """Lines of a text file (a last line without its newline included), counted a block at a time."""
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def _canonical(table: pa.Table, path: Path) -> pa.Table:
    names = [n for n in table.column_names if not n.startswith("__index_level_")]
    if "timestamp" not in names:
        raise InputError(f"{path}: not a 3W file: no 'timestamp' column")
    known = [n for n in names if n in SOURCE_TO_COLUMN]
    if not known:
        raise InputError(f"{path}: not a 3W file: none of the 3W variables among its columns ({', '.join(names[:6])})")
    unknown = set(names) - set(known) - set(_LABEL_COLUMNS) - {"timestamp"} - V1_ONLY_SOURCE_COLUMNS
    if unknown:
        raise InputError(f"{path}: not a 3W file: unknown columns {sorted(unknown)[:5]}")
    if table.num_rows == 0:
        raise InputError(f"{path}: empty 3W file (no rows)")
    columns = {
        "well_id": pa.array(np.full(table.num_rows, well_id_from_name(path), dtype=object), pa.string()),
        "event_time": _timestamps(table["timestamp"], path),
    }
    for source_name in known:
        columns[SOURCE_TO_COLUMN[source_name]] = _numeric(table[source_name], path, source_name)
    for label in _LABEL_COLUMNS:
        if label in names:
            columns[label] = _numeric(table[label], path, label)
    arrays = [columns[f.name].cast(f.type, safe=False) if f.name in columns else pa.nulls(table.num_rows, f.type)
              for f in OBSERVATION_SCHEMA]
    return _sorted_unique_times(pa.Table.from_arrays(arrays, schema=OBSERVATION_SCHEMA))


def _timestamps(column: pa.ChunkedArray, path: Path) -> pa.ChunkedArray:
    """Event times as UTC milliseconds; naive times in 3W are UTC."""
    if pa.types.is_timestamp(column.type):
        unit_cast = column.cast(pa.timestamp(column.type.unit))  # drop any zone, keeping the instant
        return unit_cast.cast(pa.timestamp(TIME_UNIT), safe=False).cast(EVENT_TIME_TYPE)
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
        try:
            column = column.cast(pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputError(f"{path}: column {name!r} has a non-numeric value "
                             f"({str(exc).splitlines()[0][:120]})") from exc
    if pa.types.is_floating(column.type):
        column = pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)
    return column


def _sorted_unique_times(table: pa.Table) -> pa.Table:
    """Rows in time order; of rows sharing a timestamp, the last in the file wins."""
    times = table["event_time"].cast(pa.int64()).to_numpy()
    order = np.argsort(times, kind="stable")
    ordered = times[order]
    last_of_each = np.append(ordered[1:] != ordered[:-1], True)
    return table.take(order[last_of_each])


def to_observations(frame: pd.DataFrame) -> pa.Table:
    """Any frame with ``well_id``, ``event_time`` and some known columns -> the canonical table.

    Absent sensors and labels become all-null columns, so every producer, consumer and lake
    writer sees the same schema.
    """
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
