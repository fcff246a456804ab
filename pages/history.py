"""History: one well's 3W sensors over a chosen range, the alarm being looked at shaded.

Quick ranges end at the chosen "To"; *Live* follows the well's newest data. All panels share one
time axis, so zooming one zooms all. The URL (``?well=…&from=…&to=…&alarm=…``) reopens the same
view: tiles, the map and the Alarms page link here that way. The engine aggregates in SQL at a
resolution chosen from the range, so the browser gets at most a few thousand points per sensor.
"""

from __future__ import annotations

import streamlit as st

from control_center import charts, history_view, time_range, ui
from engine import history, insights
from engine.errors import InputError

backend = ui.backend()
LIVE_SECONDS = ui.refresh_seconds(10, backend)
st.title("History")

catalogue = None
with ui.shielded("Listing the wells"):
    catalogue = history.wells(backend.sql)
if catalogue is None:
    st.stop()
if catalogue.empty:
    ui.empty_state("No data in the lake yet, so no history.",
                   "Start the demo pipeline on the Overview page, or replay your own 3W files.")
    st.stop()
newest = history_view.newest_readings(catalogue)

link, alarm = time_range.HistoryLink(), None
try:
    link = time_range.parse_params(st.query_params)
except InputError as exc:
    st.error(f"This link cannot be followed: {exc}. Showing the latest data instead.")
with ui.shielded("Finding the alarm"):
    alarm = history.find_alarm(backend.sql, link.alarm) if link.alarm else None
    if link.alarm and alarm is None:
        st.warning(f"Alarm {ui.plain(link.alarm)} is not in the alarm log (yet); showing the link's range.")
if history_view.link_changed():
    if link.well and link.well not in newest and alarm is None:
        st.warning(f"{ui.plain(link.well)} has no data in the lake; pick a well below.")
    history_view.seed(link, alarm, newest)

choice = history_view.controls(newest, alarm, LIVE_SECONDS)
history_view.write_link(choice)
sensors: tuple[str, ...] = ()
with ui.shielded("Listing the well's sensors"):
    sensors = history_view.pick_sensors(history.sensors_of(backend.sql, choice.well, *choice.window.span))


@st.fragment(run_every=LIVE_SECONDS if choice.live else None)
def charts_of_range() -> None:
    """In live mode only this part re-runs, moving the range to the well's newest reading."""
    window = choice.window
    if choice.live:
        latest = history_view.newest_readings(history.wells(backend.sql))
        window = time_range.quick_range(choice.live, time_range.through(latest[choice.well]))
    with ui.shielded("Querying the history"):
        result = history.history(backend.sql, choice.well, window.start, window.end, sensors)
        if result.frame.empty:
            ui.empty_state(f"{ui.plain(choice.well)} has no data between {ui.when(window.start)} and "
                           f"{ui.when(window.end)}.", f"Its newest reading is {ui.when(newest[choice.well])}.")
            return
        frame = result.frame
        band = choice.alarm.span(newest[choice.well]) if choice.alarm else None
        st.caption(f"{len(frame):,} points, one per {ui.duration(result.bucket_seconds)} (averages with min–max "
                   f"bands, aggregated in SQL) · {int(frame['anomalies'].sum()):,} flagged rows in range · "
                   "drag across a chart to zoom all of them, double-click to reset")
        label = f"alarm {choice.alarm.event_id}" if choice.alarm else "alarm"
        st.plotly_chart(charts.history_panels(result, insights.active_threshold(backend.models), band, label),
                        key="history-charts")
        st.download_button("Download CSV", frame.to_csv(index=False), mime="text/csv", key="history-csv",
                           file_name=ui.file_name(choice.well, f"{window.start:%Y%m%dT%H%M}",
                                                  f"{window.end:%Y%m%dT%H%M}", suffix="csv"))


charts_of_range()
