"""How far back the portal's statements read: a bounded look-back of date partitions.

Athena bills the bytes a query scans, and reads every partition a query does not exclude by a
predicate on the partition column ``date``. A statement without one reads the whole lake, so its
cost grows with the lake's age. Every portal statement therefore reads only the partitions of a
window ending at the newest partition the catalog lists for its table (metadata, no scan):

* well data for the live views, KPIs and the score histogram: :data:`WELL_DATA_DAYS_ENV` days
  (default :data:`DEFAULT_WELL_DATA_DAYS`: the newest day and the one before, so a live window
  that crosses midnight is whole; these statements run on every refresh);
* History's well list: as far back as the alarms (two narrow columns);
* the executive (Power BI) views: :data:`BI_DAYS_ENV` days (default :data:`DEFAULT_BI_DAYS`),
  for monthly and yearly aggregates of raw rows; the Athena views take the window's first day
  as a constant, moved forward each time ``python -m engine bi-views`` runs (a daily scheduled
  task on AWS: a predicate on ``current_date`` would need no refresh but would lose replays of
  past data, whose newest partition is not today);
* alarm events: :data:`ALARM_DAYS_ENV` days (default :data:`DEFAULT_ALARM_DAYS`). An event's
  versions live in its *start* date's partition, so an alarm that opened days ago and is still
  active stays visible as long as it opened within this window; versions are tiny (a few rows
  per event), so a long window costs little.

The window ends at the newest partition, not at today: a replay of 2014 data lands in 2014
partitions, and the portal must show it. Data older than the window is still in the lake, for
History's explicit ranges and for anyone's own SQL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from engine.errors import InputError
from engine.query import QueryEngine
from engine.schema import ANOMALY_EVENT_VERSIONS_TABLE, WELL_DATA_TABLE

WELL_DATA_DAYS_ENV = "PETROSTREAM_SCAN_DAYS"
DEFAULT_WELL_DATA_DAYS = 2
BI_DAYS_ENV = "PETROSTREAM_BI_SCAN_DAYS"
DEFAULT_BI_DAYS = 31
ALARM_DAYS_ENV = "PETROSTREAM_ALARM_SCAN_DAYS"
DEFAULT_ALARM_DAYS = 30
#: What a window spans at most, whatever the setting says (a typo of 3650 is a full-lake scan again).
MAX_DAYS = 366


@dataclass(frozen=True)
class ScanWindow:
    """The date partitions ``first`` .. ``last`` (``YYYY-MM-DD``, both included) a statement may read."""

    first: str
    last: str

    def params(self) -> list[object]:
        """The two ``?`` of ``"date" BETWEEN ? AND ?``."""
        return [self.first, self.last]


def window_days(variable: str, default: int) -> int:
    """A look-back length in days from the environment; a bad value is refused naming the variable."""
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        days = int(raw)
    except ValueError:
        raise InputError(f"{variable}={raw!r} is not a whole number of days") from None
    if not 1 <= days <= MAX_DAYS:
        raise InputError(f"{variable}={days} must be between 1 and {MAX_DAYS} days")
    return days


def scan_window(sql: QueryEngine, table: str, days: int) -> ScanWindow:
    """The last ``days`` date partitions of ``table``, ending at its newest (today when it has none)."""
    newest = sql.newest_partition(table)
    last = date.fromisoformat(newest) if newest else datetime.now(UTC).date()
    return ScanWindow((last - timedelta(days=days - 1)).isoformat(), last.isoformat())


def well_data_window(sql: QueryEngine) -> ScanWindow:
    """What the live views, KPIs and History's well list read of ``well_data``."""
    return scan_window(sql, WELL_DATA_TABLE, window_days(WELL_DATA_DAYS_ENV, DEFAULT_WELL_DATA_DAYS))


def well_list_window(sql: QueryEngine) -> ScanWindow:
    """What History's well list reads of ``well_data``: as far back as the alarm lists, so the well of
    any alarm they link to is listed (it reads two narrow columns, so the longer window costs little)."""
    return scan_window(sql, WELL_DATA_TABLE, window_days(ALARM_DAYS_ENV, DEFAULT_ALARM_DAYS))


def bi_window(sql: QueryEngine) -> ScanWindow:
    """What the executive views aggregate of ``well_data``."""
    return scan_window(sql, WELL_DATA_TABLE, window_days(BI_DAYS_ENV, DEFAULT_BI_DAYS))


def alarm_window(sql: QueryEngine) -> ScanWindow:
    """What the alarm lists read of ``anomaly_events`` (partitioned by each event's start date)."""
    return scan_window(sql, ANOMALY_EVENT_VERSIONS_TABLE, window_days(ALARM_DAYS_ENV, DEFAULT_ALARM_DAYS))
