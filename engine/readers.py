"""Read 3W instance files (2.0 Parquet, 1.0 CSV) into one canonical Arrow table.

Real 3W data has missing columns, empty cells, all-NaN sensors and unlabeled stretches;
all of that is normal and becomes nulls. What is not 3W (no timestamp, no known variable,
unreadable bytes, no rows) raises :class:`InputError` naming the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from engine.errors import InputError
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


def discover(paths: Iterable[str | Path]) -> list[InstanceFile]:
    """All instance files under the given files or folders, in a stable order."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    return [InstanceFile(p, well_id_from_name(p), _event_class_of(p)) for p in sorted(set(found))]


def read_instance(path: str | Path) -> pa.Table:
    """One instance as a table of :data:`OBSERVATION_SCHEMA`, sorted by event time, one row per time."""
    path = Path(path)
    try:
        table = _read_parquet(path) if path.suffix == ".parquet" else pa_csv.read_csv(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not a readable 3W file ({reason[:200]})") from exc
    return _canonical(table, path)


def _read_parquet(path: Path) -> pa.Table:
    """The whole file through ``ParquetFile``: half the fixed cost of ``pq.read_table`` (which sets up
    a dataset), and that cost is what counts when a replay opens thousands of short instances."""
    with pq.ParquetFile(path) as parquet:
        return parquet.read()


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
