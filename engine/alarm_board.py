"""The operator's alarm list: alarm events from the lake joined with what operators did about them.

``anomaly_events`` says what the wells did (active or cleared, when, how bad, the likely
cause); the :class:`~engine.alarm_acks.AlarmAckStore` says what operators did (acknowledged,
shelved). An alarm's *status* on the board combines both, in the order an operator works:
``active`` (needs someone), ``acknowledged`` (someone owns it), ``shelved`` (hidden for a
while, with a reason) and ``cleared`` (over; its acknowledgement, if any, shown beside it).

"Recent" here is measured on the wells' own clock (event time): a replay of old data has old
event times, and an alarm is recent if it was active within :data:`RECENT_ALARMS` of the
newest alarm activity in the lake.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pandas as pd

from engine.alarm_acks import AlarmAckStore, AlarmHandling
from engine.query import QueryEngine
from engine.scan_window import alarm_window
from engine.schema import class_name

#: The board lists every active alarm and at most this many others, newest first.
BOARD_ROWS = 200
#: Alarms active within this period of the newest alarm activity count as recent.
RECENT_ALARMS = timedelta(hours=24)
#: History opened from an alarm shows this much before its start and after its last active row,
#: and at least a quarter of its duration on each side.
HISTORY_MARGIN = timedelta(minutes=10)
#: The History page's URL path and the query parameters agreed with it.
HISTORY_PAGE = "history"


class AlarmStatus(enum.StrEnum):
    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    SHELVED = "shelved"
    CLEARED = "cleared"


# Only module constants are formatted into these statements (bandit B608 accepted below).
_BOARD = f"""
SELECT event_id, well_id, start_time, end_time, state, last_active_time, duration_seconds, peak_score,
       label, likely_class, likely_class_probability, top_sensors, explanation, model_version
FROM anomaly_events
WHERE "date" BETWEEN ? AND ?
ORDER BY CASE WHEN state = 'active' THEN 0 ELSE 1 END, start_time DESC, event_id
LIMIT {BOARD_ROWS}
"""  # nosec B608

_HEADLINE = f"""
WITH events AS (
    SELECT event_id, well_id, state, start_time, last_active_time, duration_seconds, peak_score
    FROM anomaly_events
    WHERE "date" BETWEEN ? AND ?
), newest AS (
    SELECT max(last_active_time) - INTERVAL '{int(RECENT_ALARMS.total_seconds())}' SECOND AS since FROM events
)
SELECT e.*, e.last_active_time >= n.since AS recent
FROM events e CROSS JOIN newest n
WHERE e.state = 'active' OR e.last_active_time >= n.since
"""  # nosec B608


#: The Overview lists at most this many of the alarms it counts.
HEADLINE_ROWS = 5


@dataclass(frozen=True)
class AlarmHeadline:
    """The Overview's headline: alarms, not flagged rows."""

    active: int
    unacknowledged: int
    shelved: int
    recent: int
    #: The first :data:`HEADLINE_ROWS` of them, unacknowledged first, then acknowledged, shelved,
    #: cleared; newest first within each: ``well_id``, ``status``, ``start_time``,
    #: ``duration_seconds``, ``peak_score``, ``history``.
    top: pd.DataFrame


def alarm_headline(sql: QueryEngine, acks: AlarmAckStore, now: datetime) -> AlarmHeadline:
    """Active alarms (of which unacknowledged and shelved), and alarms active within :data:`RECENT_ALARMS`."""
    events = sql.query(_HEADLINE, alarm_window(sql).params())
    handling = acks.all_handling()
    statuses = [_status(state, handling.get(event_id), now)
                for event_id, state in zip(events["event_id"], events["state"], strict=True)]
    order = list(AlarmStatus)
    top = events.assign(status=[s.value for s in statuses], rank=[order.index(s) for s in statuses])
    top = top.sort_values(["rank", "start_time"], ascending=[True, False]).head(HEADLINE_ROWS)
    top = top.assign(history=[history_link(*row) for row in
                              zip(top["well_id"], top["start_time"], top["last_active_time"], top["event_id"],
                                  strict=True)])
    return AlarmHeadline(
        active=int((events["state"] == "active").sum()),
        unacknowledged=statuses.count(AlarmStatus.ACTIVE),
        shelved=statuses.count(AlarmStatus.SHELVED),
        recent=int(events["recent"].fillna(False).astype(bool).sum()),
        top=top[["well_id", "status", "start_time", "duration_seconds", "peak_score", "history"]]
        .reset_index(drop=True),
    )


def alarm_board(sql: QueryEngine, acks: AlarmAckStore, now: datetime) -> pd.DataFrame:
    """Alarm events with their status, handling and History link; active ones first, then newest first.

    Columns: those of ``anomaly_events`` the board needs, plus ``status``, ``acknowledged_by``,
    ``acknowledged_at``, ``comment`` (the latest operator comment), ``shelved_until``,
    ``likely_cause`` and ``source_label`` (class names) and ``history`` (a relative link to History for its window).
    """
    events = sql.query(_BOARD, alarm_window(sql).params())
    handling = acks.all_handling()
    rows = []
    for event in events.itertuples(index=False):
        handled = handling.get(event.event_id)
        ack = handled.acknowledgement if handled else None
        rows.append({
            "status": _status(event.state, handled, now).value,
            "acknowledged_by": ack.by if ack else None,
            "acknowledged_at": ack.at if ack else None,
            "comment": handled.log[-1].comment or None if handled else None,
            "shelved_until": handled.shelved_until(now) if handled else None,
            "likely_cause": _class_name(event.likely_class),
            "source_label": _class_name(event.label),
            "history": history_link(event.well_id, event.start_time, event.last_active_time, event.event_id),
        })
    extra = pd.DataFrame(rows, columns=["status", "acknowledged_by", "acknowledged_at", "comment", "shelved_until",
                                        "likely_cause", "source_label", "history"])
    return pd.concat([events.reset_index(drop=True), extra], axis=1)


def history_window(well_id: str, start: datetime, last_active: datetime, event_id: str) -> dict[str, str]:
    """History's query parameters for one alarm's window: ``well``, ``from``, ``to`` (ISO 8601 UTC), ``alarm``."""
    start, last_active = pd.Timestamp(start).to_pydatetime(), pd.Timestamp(last_active).to_pydatetime()
    margin = max(HISTORY_MARGIN, (last_active - start) / 4)
    return {"well": well_id, "from": _iso(start - margin), "to": _iso(last_active + margin), "alarm": event_id}


def history_link(well_id: str, start: datetime, last_active: datetime, event_id: str) -> str:
    """A relative URL of the History page showing one alarm's window (a shareable link)."""
    return f"{HISTORY_PAGE}?{urlencode(history_window(well_id, start, last_active, event_id))}"


def _status(state: str, handled: AlarmHandling | None, now: datetime) -> AlarmStatus:
    if state != "active":
        return AlarmStatus.CLEARED
    if handled is not None and handled.shelved_until(now) is not None:
        return AlarmStatus.SHELVED
    if handled is not None and handled.acknowledgement is not None:
        return AlarmStatus.ACKNOWLEDGED
    return AlarmStatus.ACTIVE


def _class_name(code: object) -> str | None:
    return None if code is None or pd.isna(code) else class_name(int(code))


def _iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, to the second: short enough for a shareable link."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
