"""What the portal shows, asked of the lake in SQL: KPIs, live well status, score timelines,
alarm events and the executive views (a well's history is :mod:`engine.history`).

Every statement is fixed Trino-dialect text with ``?`` parameters, so the same text runs on
DuckDB locally and on Athena, and no user string ever becomes SQL. Aggregation happens in the
engine, so a browser never receives more than a few thousand points whatever the lake holds.

Time has two clocks here. Event time is the wells' clock (a replay of 2014 data has 2014 event
times); ingest time is ours. "Live" windows (the last minutes of a well) are measured on each
well's own event time, while "recent" and "stale" are measured on ingest time against now.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pandas as pd

from engine.backend import Backend
from engine.errors import InputError
from engine.model_store import ModelStore
from engine.query import QueryEngine
from engine.scan_window import ScanWindow, alarm_window, bi_window, well_data_window
from engine.well_registry import load_registry

#: An anomaly flag this close to a well's latest observation (event time) makes the well "anomaly".
ALARM_WINDOW = timedelta(minutes=2)
#: A well that landed nothing for this long (ingest time) is "stale".
STALE_AFTER = timedelta(minutes=5)
#: "Recent" anomalies and "active" wells: landed within this period (ingest time).
RECENT = timedelta(hours=1)
#: Live score timelines cover this much of each well's latest event time.
LIVE_WINDOW = timedelta(minutes=15)
#: Alarm events in the live page's alarm table.
EVENT_ROWS = 50


class WellStatus(enum.StrEnum):
    """What a well's tile and map marker say."""

    NORMAL = "normal"
    ANOMALY = "anomaly"
    STALE = "stale"
    NO_DATA = "no data"


def iso(moment: datetime) -> str:
    """A timestamp parameter: ISO 8601 in UTC, read in SQL by ``from_iso8601_timestamp(?)``."""
    if moment.tzinfo is None:
        raise InputError("timestamps given to queries must carry a time zone")
    return moment.astimezone(UTC).isoformat()


# -- KPIs ---------------------------------------------------------------------------------
_KPIS = """
SELECT count(*) AS observations,
       count_if(anomaly_flag = 1) AS anomalies,
       count_if(anomaly_flag = 1 AND ingest_time >= from_iso8601_timestamp(?)) AS recent_anomalies,
       count(DISTINCT well_id) AS wells,
       count(DISTINCT CASE WHEN ingest_time >= from_iso8601_timestamp(?) THEN well_id END) AS active_wells,
       max(ingest_time) AS last_ingest
FROM well_data
WHERE "date" BETWEEN ? AND ?
"""


@dataclass(frozen=True)
class Kpis:
    """The headline numbers of the Overview page."""

    observations: int
    anomalies: int
    recent_anomalies: int
    wells: int
    active_wells: int
    last_ingest: datetime | None


def kpis(sql: QueryEngine, now: datetime) -> Kpis:
    """Totals over the look-back window (:func:`engine.scan_window.well_data_window`), and what landed
    within :data:`RECENT` of ``now``."""
    since = iso(now - RECENT)
    row = sql.query(_KPIS, [since, since, *well_data_window(sql).params()]).iloc[0]
    return Kpis(int(row.observations), _int(row.anomalies), _int(row.recent_anomalies), int(row.wells),
                int(row.active_wells), _timestamp(row.last_ingest))


# -- live status and score timelines, in one statement ------------------------------------------
_ALARM_SECONDS = int(ALARM_WINDOW.total_seconds())
_LIVE_SECONDS = int(LIVE_WINDOW.total_seconds())
#: Per well and 10-second bucket of its last LIVE_WINDOW: the score line, and what the well's tile
#: needs (totals repeat on every row; the latest bucket carries the latest readings). One statement,
#: because every statement costs a round trip (tens of ms on DuckDB, seconds on Athena). The second
#: time condition is implied by the first, but as a constant it lets the engine skip old row groups.
#: (Only module constants are formatted into this SQL and _EVENTS; values are ? parameters.)
_LIVE = f"""
WITH totals AS (
    SELECT well_id, max(event_time) AS last_event, max(ingest_time) AS last_ingest,
           count(*) AS observations, count_if(anomaly_flag = 1) AS anomalies
    FROM well_data
    WHERE "date" BETWEEN ? AND ?
    GROUP BY well_id
)
SELECT w.well_id,
       from_unixtime(floor(to_unixtime(w.event_time) / 10) * 10) AS bucket,
       max(w.anomaly_score) AS score,
       max(w.anomaly_flag) AS flag,
       count_if(w.anomaly_flag = 1
                AND w.event_time > t.last_event - INTERVAL '{_ALARM_SECONDS}' SECOND) AS recent_flags,
       max(CASE WHEN w.event_time > t.last_event - INTERVAL '{_ALARM_SECONDS}' SECOND
                THEN w.anomaly_score END) AS recent_peak,
       max_by(w.anomaly_score, w.event_time) AS last_score,
       max_by(w.pressure, w.event_time) / 1e5 AS pressure_bar,
       max_by(w.temperature, w.event_time) AS temperature_c,
       t.last_event, t.last_ingest, t.observations, t.anomalies
FROM well_data w
JOIN totals t ON w.well_id = t.well_id
WHERE w."date" BETWEEN ? AND ?
  AND w.event_time > t.last_event - INTERVAL '{_LIVE_SECONDS}' SECOND
  AND w.event_time > (SELECT min(last_event) FROM totals) - INTERVAL '{_LIVE_SECONDS}' SECOND  -- lets scans skip
GROUP BY w.well_id, 2, t.last_event, t.last_ingest, t.observations, t.anomalies
ORDER BY 1, 2
"""  # nosec B608


@dataclass(frozen=True)
class WellSnapshot:
    """One well as the live views show it."""

    well_id: str
    status: WellStatus
    last_event: datetime | None = None
    last_ingest: datetime | None = None
    observations: int = 0
    anomalies: int = 0
    recent_flags: int = 0
    recent_peak: float | None = None
    last_score: float | None = None
    pressure_bar: float | None = None
    temperature_c: float | None = None


@dataclass(frozen=True)
class LiveWells:
    """Each well's snapshot, and its highest score per 10 s over its last :data:`LIVE_WINDOW` of event time
    (``scores``: ``well_id``, ``bucket`` (UTC), ``score``, ``flag`` = 1 if any row of the bucket was flagged)."""

    snapshots: list[WellSnapshot]
    scores: pd.DataFrame


def classify(last_ingest: datetime | None, recent_flags: int, now: datetime) -> WellStatus:
    """The one rule every view (tiles, map, counts) applies to a well.

    Stale beats anomaly: an alarm nobody has confirmed for minutes is not a live alarm.
    """
    if last_ingest is None:
        return WellStatus.NO_DATA
    if now - last_ingest > STALE_AFTER:
        return WellStatus.STALE
    return WellStatus.ANOMALY if recent_flags > 0 else WellStatus.NORMAL


def live_wells(sql: QueryEngine, now: datetime, known_wells: tuple[str, ...] = ()) -> LiveWells:
    """Every well with data in the look-back window, plus ``known_wells`` (e.g. from the registry) that
    have none there."""
    window = well_data_window(sql).params()
    frame = sql.query(_LIVE, [*window, *window])
    snapshots = []
    for well, rows in frame.groupby("well_id", sort=True):
        latest = rows.iloc[-1]
        last_ingest = _timestamp(latest.last_ingest)
        flags = int(rows["recent_flags"].fillna(0).sum())
        peak = rows["recent_peak"].max()
        snapshots.append(WellSnapshot(
            well_id=str(well), status=classify(last_ingest, flags, now), last_event=_timestamp(latest.last_event),
            last_ingest=last_ingest, observations=int(latest.observations), anomalies=_int(latest.anomalies),
            recent_flags=flags, recent_peak=_float(peak), last_score=_float(latest.last_score),
            pressure_bar=_float(latest.pressure_bar), temperature_c=_float(latest.temperature_c)))
    seen = {s.well_id for s in snapshots}
    snapshots += [WellSnapshot(well, WellStatus.NO_DATA) for well in known_wells if well not in seen]
    return LiveWells(snapshots, frame[["well_id", "bucket", "score", "flag"]].reset_index(drop=True))


def explain(well: WellSnapshot, threshold: float | None) -> str:
    """Why a well has its status, in a sentence, for a tile or a map popup.

    A well stays *anomaly* for :data:`ALARM_WINDOW` of its data after its last flagged row, so its
    newest score may already be back under the threshold: say so rather than look contradictory.
    """
    window = f"{ALARM_WINDOW.total_seconds() / 60:g} min"
    if well.status == WellStatus.NO_DATA:
        return "in the registry, but nothing from it has landed yet"
    if well.status == WellStatus.STALE:
        return f"nothing landed for over {STALE_AFTER.total_seconds() / 60:g} min; its last status is unconfirmed"
    if well.status == WellStatus.NORMAL:
        return f"no flagged row in the last {window} of its data"
    reason = f"{well.recent_flags:,} flagged row(s) in the last {window} of its data"
    if well.recent_peak is not None:
        reason += f" (peak score {well.recent_peak:.3f})"
    if threshold is not None and well.last_score is not None and well.last_score < threshold:
        reason += (f"; the latest score {well.last_score:.3f} is back under the threshold {threshold:.3f}, "
                   f"so the alarm clears once {window} pass without a flag")
    return reason


def status_counts(wells: list[WellSnapshot]) -> dict[WellStatus, int]:
    """How many wells have each status (every status present, zero or not), for the views' summaries."""
    return {status: sum(w.status == status for w in wells) for status in WellStatus}


def active_threshold(models: ModelStore) -> float | None:
    """The score above which the active model flags a row (None without an active model)."""
    return next((v.threshold for v in models.versions() if v.active), None)


# -- alarm events ---------------------------------------------------------------------------
_EVENTS = f"""
SELECT well_id, event_id, start_time, end_time, peak_score, label, model_version, state,
       likely_class, likely_class_probability, top_sensors, explanation
FROM anomaly_events
WHERE "date" BETWEEN ? AND ?
ORDER BY CASE WHEN state = 'active' THEN 0 ELSE 1 END, start_time DESC
LIMIT {EVENT_ROWS}
"""  # nosec B608


def alarms(sql: QueryEngine) -> pd.DataFrame:
    """The active alarms, then the newest cleared ones (``state`` tells them apart), of the events that
    started within the alarm look-back (:func:`engine.scan_window.alarm_window`)."""
    return sql.query(_EVENTS, alarm_window(sql).params())


# -- score distribution ----------------------------------------------------------------------
#: Width of a score histogram bin (Isolation Forest scores lie between 0 and 1).
SCORE_BIN = 0.01
_SCORE_HISTOGRAM = """
SELECT floor(anomaly_score / ?) * ? AS bin,
       count_if("class" = 0) AS normal_rows,
       count_if("class" > 0) AS event_rows,
       count_if("class" IS NULL) AS unlabeled_rows
FROM well_data
WHERE model_version = ? AND anomaly_score IS NOT NULL AND "date" BETWEEN ? AND ?
GROUP BY 1
ORDER BY 1
"""


def score_histogram(sql: QueryEngine, model_version: str) -> pd.DataFrame:
    """How the look-back window's rows scored by one model version, by label: ``bin`` (lower edge) and
    row counts."""
    return sql.query(_SCORE_HISTOGRAM, [SCORE_BIN, SCORE_BIN, model_version, *well_data_window(sql).params()])


# -- one live refresh ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LiveView:
    """Everything the live page shows; reading it is what one refresh costs."""

    wells: LiveWells
    threshold: float | None
    alarms: pd.DataFrame


def live_view(backend: Backend, now: datetime) -> LiveView:
    """Wells counted against the registry (so a registered well that never reported shows as *no data*)."""
    known = tuple(load_registry(backend.settings.home).locations)
    return LiveView(live_wells(backend.sql, now, known), active_threshold(backend.models), alarms(backend.sql))


# -- executive views --------------------------------------------------------------------------
_EXECUTIVE = """
SELECT well_id,
       substr("date", 1, {length}) AS {period},
       count(*) AS observations,
       count_if(anomaly_flag = 1) AS anomalies,
       CAST(count_if(anomaly_flag = 1) AS DOUBLE) / count(*) AS anomaly_rate,
       avg(pressure) / 1e5 AS avg_pressure_bar,
       avg(temperature) AS avg_temperature_c,
       max(anomaly_score) AS max_score,
       count(DISTINCT "date") AS days_reporting
FROM well_data
WHERE "date" >= {{since}}
GROUP BY well_id, substr("date", 1, {length})
"""
#: View name -> its SELECT (Trino) with ``{since}``, the first date partition it reads; periods come
#: from the UTC date partition, so no time-zone setting matters.
EXECUTIVE_VIEWS: dict[str, str] = {
    "well_data_monthly": _EXECUTIVE.format(length=7, period="month"),
    "well_data_yearly": _EXECUTIVE.format(length=4, period="year"),
}


def executive_view(sql: QueryEngine, name: str) -> pd.DataFrame:
    """The rows of one executive view over the BI look-back (:func:`engine.scan_window.bi_window`), newest
    period first."""
    # _view_select only returns the SQL of a known view (bandit B608: constants, not input).
    return sql.query(f"SELECT * FROM ({_view_select(name, '?')}) ORDER BY 2 DESC, 1",  # nosec B608
                     [bi_window(sql).first])


def executive_view_ddl(name: str, window: ScanWindow) -> str:
    """``CREATE OR REPLACE VIEW`` for Athena, so Power BI reads the same aggregates the portal shows.

    A view cannot take parameters, so the window's first date is written into it: the view reads
    from there on, and ``python -m engine bi-views`` moves it forward (DDL costs nothing on Athena).
    """
    first = date.fromisoformat(window.first).isoformat()  # a date, nothing else, goes into the text
    return f"CREATE OR REPLACE VIEW {name} AS{_view_select(name, repr(first)).rstrip()}"


def _view_select(name: str, since: str) -> str:
    if name not in EXECUTIVE_VIEWS:
        raise InputError(f"no executive view {name!r}; choose one of {sorted(EXECUTIVE_VIEWS)}")
    return EXECUTIVE_VIEWS[name].format(since=since)


# -- value helpers ----------------------------------------------------------------------------
def _timestamp(value: object) -> datetime | None:
    if value is None or pd.isna(value):
        return None
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)).to_pydatetime()


def _float(value: object) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _int(value: object) -> int:
    return 0 if value is None or pd.isna(value) else int(value)
