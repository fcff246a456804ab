"""History's controls: the well, a Grafana-style time picker, the sensors, and the page's URL.

The page's state lives in its widgets; a link (``?well=…&from=…&to=…&alarm=…``) seeds them
when it differs from what the page last wrote, and the page writes its current choice back,
so the address bar is always a shareable link to what is on screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import pandas as pd
import streamlit as st

from control_center import time_range, ui
from control_center.time_range import AROUND_ALARM, CUSTOM, QUICK_RANGES, TimeRange
from engine.errors import InputError
from engine.history import DEFAULT_SENSORS, GENERIC_COLUMNS, AlarmWindow, Sensor
from engine.insights import _timestamp

WELL, RANGE, LIVE, SENSORS = "history-well", "history-range", "history-live", "history-sensors"
TO_DATE, TO_TIME, FROM_DATE, FROM_TIME = "history-to-date", "history-to-time", "history-from-date", "history-from-time"
_WRITTEN, _TO_OF = "_history-url", "_history-to-of"


@dataclass(frozen=True)
class Choice:
    """What History shows: a well, a window of its data, the alarm to shade (if any), and the quick range it
    follows the newest data with (None when not live)."""

    well: str
    window: TimeRange
    alarm: AlarmWindow | None
    live: str | None


def seed(link: time_range.HistoryLink, alarm: AlarmWindow | None, newest: dict[str, datetime]) -> None:
    """Set the widgets from a link the page did not write itself (a tile, the map, a shared URL)."""
    well = alarm.well_id if alarm else link.well
    if well is None or well not in newest:
        return
    st.session_state[WELL] = well
    st.session_state[LIVE] = link.live is not None and alarm is None
    window = link.window
    if st.session_state[LIVE]:
        st.session_state[RANGE] = link.live
    elif window is not None:  # exactly the link's window (the alarm, if any, shaded in it)
        st.session_state[RANGE] = CUSTOM
    elif alarm is not None:
        st.session_state[RANGE] = AROUND_ALARM
        window = time_range.around(*alarm.span(newest[well]))
    if window is not None:
        _set_times(window)
        st.session_state[_TO_OF] = well


def controls(newest: dict[str, datetime], alarm: AlarmWindow | None, live_seconds: int) -> Choice:
    """The well, range and live widgets; returns the window they select, with "To" exactly as chosen."""
    wells = sorted(newest)
    if st.session_state.get(WELL) not in newest:
        st.session_state[WELL] = wells[0]
    well_column, range_column, live_column = st.columns([2, 5, 1.4], vertical_alignment="bottom")
    well = well_column.selectbox("Well", wells, key=WELL)
    if alarm is not None and alarm.well_id != well:
        alarm = None  # the user moved on to another well
    options = [*QUICK_RANGES, *([AROUND_ALARM] if alarm else []), CUSTOM]
    if st.session_state.get(RANGE) not in options:
        st.session_state[RANGE] = "1 h"
    choice = range_column.segmented_control("Range", options, key=RANGE, required=True)
    quick = choice in QUICK_RANGES
    live = live_column.toggle("Live", key=LIVE, disabled=not quick,
                              help=f"Follow the newest data: the range ends at the well's newest reading and the "
                                   f"charts refresh every {live_seconds} s.") and quick
    latest_hour = time_range.quick_range("1 h", time_range.through(newest[well]))
    if st.session_state.get(_TO_OF) != well:  # a new well: its own clock (replays of different years)
        _set_times(latest_hour)
        st.session_state[_TO_OF] = well
    if live:
        window = time_range.quick_range(choice, time_range.through(newest[well]))
        st.caption(f"Live: {ui.when(window.start)} → newest reading {ui.when(newest[well])}")
    elif choice == AROUND_ALARM and alarm is not None:
        window = time_range.around(*alarm.span(newest[well]))
        st.caption(f"Alarm {ui.plain(alarm.event_id)}: {ui.when(alarm.start)} → "
                   + (ui.when(alarm.end) if alarm.end else "still active") + ", with context either side.")
    else:
        window = _picked_window(choice, latest_hour)
    return Choice(well, window, alarm, choice if live else None)


def _picked_window(choice: str, fallback: TimeRange) -> TimeRange:
    """"To" from its inputs (and "From" for a custom range); an impossible range stops the page, saying why.

    Streamlit forgets the state of inputs a run did not draw (live mode hides them), so missing
    ones start from ``fallback`` rather than from today.
    """
    _set_times(fallback, only_missing=True)
    columns = st.columns(4)
    if choice == CUSTOM:
        start = _moment(columns[0].date_input("From (UTC date)", key=FROM_DATE),
                        columns[1].time_input("From (UTC)", key=FROM_TIME, step=timedelta(minutes=1)))
    to = _moment(columns[2].date_input("To (UTC date)", key=TO_DATE),
                 columns[3].time_input("To (UTC)", key=TO_TIME, step=timedelta(minutes=1)))
    try:
        return TimeRange(start, to) if choice == CUSTOM else time_range.quick_range(choice, to)
    except InputError as exc:
        st.error(f"Range: {exc}")
        st.stop()


def _moment(day: object, clock: object) -> datetime:
    if not isinstance(clock, time) or not hasattr(day, "year"):
        st.info("Pick a date and a time.")
        st.stop()
    return datetime.combine(day, clock, UTC)  # type: ignore[arg-type]


def _set_times(window: TimeRange, only_missing: bool = False) -> None:
    """Put a window in the From/To inputs (those without a value, with ``only_missing``), widened to whole
    minutes (their resolution) so nothing in it is cut."""
    start = window.start.replace(second=0, microsecond=0)
    end = window.end.replace(second=0, microsecond=0)
    end += timedelta(minutes=1) if end < window.end else timedelta(0)
    for (date_key, time_key), moment in (((FROM_DATE, FROM_TIME), start), ((TO_DATE, TO_TIME), end)):
        if not (only_missing and date_key in st.session_state):
            st.session_state[date_key] = moment.date()
        if not (only_missing and time_key in st.session_state):
            st.session_state[time_key] = moment.time().replace(tzinfo=None)


def newest_readings(catalogue: pd.DataFrame) -> dict[str, datetime]:
    """Each well's newest event time, from the wells catalogue."""
    return {str(row.well_id): _timestamp(row.last_event) for row in catalogue.itertuples()}  # type: ignore[misc]


def link_changed() -> bool:
    """Whether the URL differs from what the page wrote last (a new link to follow)."""
    return st.session_state.get(_WRITTEN) != dict(st.query_params)


def write_link(choice: Choice) -> None:
    """Put the current choice in the address bar, so copying it shares this view."""
    params = time_range.history_params(choice.well, choice.window, choice.alarm.event_id if choice.alarm else None,
                                       choice.live)
    if dict(st.query_params) != params:
        st.query_params.from_dict(params)
    st.session_state[_WRITTEN] = params


def pick_sensors(available: Sequence[Sensor]) -> tuple[str, ...]:
    """The sensors to chart, among those the well has; P-TPT and T-TPT (the lake's pressure and temperature) first."""
    columns = [s.column for s in available]
    labels = {s.column: f"{s.tag} · {s.meaning} ({s.unit})" for s in available}
    if any(c not in columns for c in st.session_state.get(SENSORS, ())):
        del st.session_state[SENSORS]
    chosen = st.multiselect(f"Sensors ({len(columns)} with data in this range)", columns,
                            default=[c for c in DEFAULT_SENSORS if c in columns] or columns[:2],
                            format_func=labels.__getitem__, key=SENSORS)
    st.caption(" · ".join(f"the lake's `{generic}` column is **{s.tag}** ({s.meaning}, {s.unit})"
                          for generic, s in GENERIC_COLUMNS.items()))
    return tuple(chosen)
