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

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from engine.errors import InputError
from engine.schema import (
    OBSERVATION_SCHEMA,
    SENSOR_COLUMNS,
    SOURCE_TO_COLUMN,
    V1_ONLY_SOURCE_COLUMNS,
)

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
    """One instance as a table of :data:`OBSERVATION_SCHEMA`, sorted by event time."""
    path = Path(path)
    try:
        frame = _read_parquet(path) if path.suffix == ".parquet" else _read_csv(path)
    except InputError:
        raise
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not a readable 3W file ({reason})") from exc
    return _canonical(frame, path)


def _read_parquet(path: Path) -> pd.DataFrame:
    frame = pq.read_table(path).to_pandas()
    if "timestamp" not in frame.columns and frame.index.name == "timestamp":
        frame = frame.reset_index()
    return frame


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, low_memory=False)


def _canonical(frame: pd.DataFrame, path: Path) -> pa.Table:
    if "timestamp" not in frame.columns:
        raise InputError(f"{path}: not a 3W file: no 'timestamp' column")
    known = [c for c in frame.columns if c in SOURCE_TO_COLUMN]
    if not known:
        raise InputError(
            f"{path}: not a 3W file: none of the 3W variables among its columns "
            f"({', '.join(map(str, frame.columns[:6]))})"
        )
    if frame.empty:
        raise InputError(f"{path}: empty 3W file (no rows)")
    times = pd.to_datetime(frame["timestamp"], errors="coerce", utc=True)
    if times.isna().any():
        bad = frame["timestamp"][times.isna()].iloc[0]
        raise InputError(f"{path}: unreadable timestamp {str(bad)[:40]!r}")
    columns: dict[str, object] = {
        "well_id": np.full(len(frame), well_id_from_name(path), dtype=object),
        "event_time": times.dt.as_unit("ms"),
    }
    for source_name in known:
        columns[SOURCE_TO_COLUMN[source_name]] = _numeric(frame[source_name], path, source_name)
    for label in _LABEL_COLUMNS:
        if label in frame.columns:
            columns[label] = _numeric(frame[label], path, label)
    unused = set(frame.columns) - set(known) - set(_LABEL_COLUMNS) - {"timestamp"}
    unused -= V1_ONLY_SOURCE_COLUMNS
    if unused:
        raise InputError(f"{path}: not a 3W file: unknown columns {sorted(map(str, unused))[:5]}")
    canonical = pd.DataFrame(columns)
    canonical = canonical.drop_duplicates("event_time", keep="last").sort_values("event_time")
    return to_observations(canonical)


def _numeric(column: pd.Series, path: Path, name: str) -> pd.Series:
    values = pd.to_numeric(column, errors="coerce")
    garbage = values.isna() & column.notna() & (column.astype(str).str.strip() != "")
    if garbage.any():
        raise InputError(f"{path}: column {name!r} has a non-numeric value {str(column[garbage].iloc[0])[:40]!r}")
    return values


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
