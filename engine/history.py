"""One well's history: which 3W sensors it has, their values over a range, and an alarm's window.

The engine aggregates in SQL at a resolution chosen from the range, so the browser gets at
most :data:`MAX_POINTS` points per sensor whatever the lake holds. Sensor columns come from
:mod:`engine.schema` only (never from a user's string), with the 3W tag and an engineering
unit for display: pressures in bar rather than the lake's pascal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from engine.errors import InputError
from engine.insights import _timestamp, iso
from engine.query import QueryEngine
from engine.scan_window import alarm_window, well_list_window
from engine.schema import PRESSURE_COLUMN, TEMPERATURE_COLUMN, VARIABLES

#: At most this many buckets per history chart.
MAX_POINTS = 2_000
#: History bucket widths to choose from, in seconds (1 s is the 3W sampling period).
BUCKET_SECONDS: tuple[int, ...] = (1, 5, 10, 30, 60, 300, 600, 1_800, 3_600, 21_600, 86_400)
#: Lake unit -> (unit shown, factor from the lake's value): operators read pressures in bar.
_DISPLAY_UNITS: dict[str, tuple[str, float]] = {"Pa": ("bar", 1e-5)}


@dataclass(frozen=True)
class Sensor:
    """A 3W variable as History shows it: lake column, 3W tag, display unit and its factor."""

    column: str
    tag: str
    unit: str
    scale: float
    meaning: str

    @property
    def label(self) -> str:
        return f"{self.tag} ({self.unit})"


SENSORS: dict[str, Sensor] = {
    v.name: Sensor(v.name, v.source_name, *_DISPLAY_UNITS.get(v.unit, (v.unit, 1.0)), v.meaning) for v in VARIABLES
}
#: The lake's generic ``pressure``/``temperature`` columns and the 3W sensor each one copies.
GENERIC_COLUMNS: dict[str, Sensor] = {"pressure": SENSORS[PRESSURE_COLUMN], "temperature": SENSORS[TEMPERATURE_COLUMN]}
#: What History charts until the user picks other sensors.
DEFAULT_SENSORS: tuple[str, ...] = (PRESSURE_COLUMN, TEMPERATURE_COLUMN)

_WELLS = """
SELECT well_id, min(event_time) AS first_event, max(event_time) AS last_event, count(*) AS observations
FROM well_data
WHERE "date" BETWEEN ? AND ?
GROUP BY well_id
ORDER BY well_id
"""
#: One well's rows in ``[start, end)``; the date condition lets the engine skip whole partitions.
_IN_RANGE = """
WHERE well_id = ?
  AND "date" BETWEEN ? AND ?
  AND event_time >= from_iso8601_timestamp(?)
  AND event_time < from_iso8601_timestamp(?)
"""
# {counts}/{aggregates} are filled from the schema's sensor columns; values are ? parameters (bandit B608).
_PRESENT = "SELECT {counts} FROM well_data" + _IN_RANGE  # nosec B608
_HISTORY_SELECT = """
SELECT from_unixtime(floor(to_unixtime(event_time) / ?) * ?) AS bucket,
       {aggregates}
       max(anomaly_score) AS max_score,
       count_if(anomaly_flag = 1) AS anomalies,
       count(*) AS observations
FROM well_data"""
_HISTORY = _HISTORY_SELECT + _IN_RANGE + """
GROUP BY 1
ORDER BY 1
"""


def wells(sql: QueryEngine) -> pd.DataFrame:
    """Wells with data in the well-list look-back (:func:`engine.scan_window.well_list_window`) and the
    event-time range each covers there (``well_id``, ``first_event``, ``last_event``)."""
    return sql.query(_WELLS, well_list_window(sql).params())


def sensors_of(sql: QueryEngine, well_id: str, start: datetime, end: datetime) -> list[Sensor]:
    """The sensors of ``well_id`` with at least one value in ``[start, end)``, in 3W order (wells lack some
    tags). Only the range is read: a well's whole history costs a scan of every sensor column."""
    counts = sql.query(_PRESENT.format(counts=", ".join(f'count("{c}") AS "{c}"' for c in SENSORS)),
                       _range_params(well_id, start, end))
    row = counts.iloc[0]
    return [sensor for column, sensor in SENSORS.items() if int(row[column] or 0) > 0]


def bucket_seconds_for(start: datetime, end: datetime) -> int:
    """The finest bucket that keeps a chart of ``start``..``end`` within :data:`MAX_POINTS` points."""
    span = (end - start).total_seconds()
    if span <= 0:
        raise InputError("the end of the range must come after its start")
    return next((b for b in BUCKET_SECONDS if span / b <= MAX_POINTS), BUCKET_SECONDS[-1])


@dataclass(frozen=True)
class History:
    """A well's sensors over a range, aggregated per bucket.

    ``frame`` has ``bucket`` (UTC), per sensor column ``<column>`` (average), ``<column>__min`` and
    ``<column>__max`` in the sensor's display unit, then ``max_score``, ``anomalies`` (flagged rows)
    and ``observations``.
    """

    frame: pd.DataFrame
    bucket_seconds: int
    sensors: tuple[Sensor, ...]


def history(sql: QueryEngine, well_id: str, start: datetime, end: datetime,
            sensors: tuple[str, ...] = DEFAULT_SENSORS) -> History:
    """Buckets of ``[start, end)`` for one well; the date filter lets the engine skip partitions."""
    unknown = [s for s in sensors if s not in SENSORS]
    if unknown:
        raise InputError(f"no sensor column {unknown[0]!r}; choose among {', '.join(SENSORS)}")
    chosen = tuple(SENSORS[s] for s in dict.fromkeys(sensors))
    aggregates = "".join(f'avg("{s.column}") * {s.scale!r} AS "{s.column}", '
                         f'min("{s.column}") * {s.scale!r} AS "{s.column}__min", '
                         f'max("{s.column}") * {s.scale!r} AS "{s.column}__max",\n       ' for s in chosen)
    bucket = bucket_seconds_for(start, end)
    params = [bucket, bucket, *_range_params(well_id, start, end)]
    return History(sql.query(_HISTORY.format(aggregates=aggregates), params), bucket, chosen)


def _range_params(well_id: str, start: datetime, end: datetime) -> list[object]:
    last = end - timedelta(microseconds=1)
    return [well_id, f"{start.astimezone(UTC):%Y-%m-%d}", f"{last.astimezone(UTC):%Y-%m-%d}", iso(start), iso(end)]


# -- one alarm's window ------------------------------------------------------------------------
_ALARM = """
SELECT well_id, event_id, start_time, end_time, peak_score
FROM anomaly_events
WHERE event_id = ? AND "date" BETWEEN ? AND ?
"""


@dataclass(frozen=True)
class AlarmWindow:
    """When an alarm started and ended (``end`` None while it is still active)."""

    event_id: str
    well_id: str
    start: datetime
    end: datetime | None
    peak_score: float | None

    def span(self, latest: datetime) -> tuple[datetime, datetime]:
        """Its start and its end, or ``latest`` (the well's newest data) while it is active."""
        return self.start, max(self.end or latest, self.start)


def find_alarm(sql: QueryEngine, event_id: str) -> AlarmWindow | None:
    """The alarm ``event_id`` as ``anomaly_events`` has it now (its newest version: active alarms too), if it
    started within the alarm look-back (:func:`engine.scan_window.alarm_window`), as the alarm lists show."""
    rows = sql.query(_ALARM, [event_id, *alarm_window(sql).params()])
    if rows.empty:
        return None
    row = rows.iloc[0]
    start = _timestamp(row.start_time)
    assert start is not None  # start_time is NOT NULL in the table
    return AlarmWindow(str(row.event_id), str(row.well_id), start, _timestamp(row.end_time),
                       None if pd.isna(row.peak_score) else float(row.peak_score))
