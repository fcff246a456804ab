"""History: one well's pressure and temperature over a chosen range, anomalies marked.

The engine aggregates in SQL at a resolution chosen from the range, so the browser gets at
most a few thousand points whatever the lake holds.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import streamlit as st

from control_center import charts, ui
from engine import insights

backend = ui.backend()
st.title("History")

catalogue = None
with ui.shielded("Listing the wells"):
    catalogue = insights.wells(backend.sql)
if catalogue is None:
    st.stop()
if catalogue.empty:
    ui.empty_state("No data in the lake yet, so no history.",
                   "Start the demo pipeline on the Overview page, or replay your own 3W files.")
    st.stop()

ranges = catalogue.set_index("well_id")
well = st.selectbox("Well", ranges.index.tolist(), key="history-well")
first, last = ranges.loc[well, "first_event"].date(), ranges.loc[well, "last_event"].date()
st.caption(f"{ui.plain(well)} has data from {first} to {last} (UTC).")
dates = st.date_input("Dates (UTC)", value=(max(first, last - timedelta(days=1)), last), min_value=first,
                      max_value=last, key="history-dates")
from_column, to_column = st.columns(2)
start_time = from_column.time_input("From (UTC)", time(0, 0), key="history-from", step=timedelta(minutes=15))
end_time = to_column.time_input("To (UTC)", time(23, 45), key="history-to", step=timedelta(minutes=15))
if not (isinstance(dates, tuple) and len(dates) == 2):
    st.info("Pick the last day of the range too.")
    st.stop()

start = datetime.combine(dates[0], start_time, UTC)
end = datetime.combine(dates[1], end_time, UTC) + timedelta(minutes=15)
with ui.shielded("Querying the history"):
    result = insights.history(backend.sql, well, start, end)
    if result.frame.empty:
        ui.empty_state(f"{ui.plain(well)} has no data between {ui.when(start)} and {ui.when(end)}.")
    else:
        frame = result.frame
        st.caption(f"{len(frame):,} points, one per {ui.duration(result.bucket_seconds)} "
                   f"(averages with min–max bands, aggregated in SQL) · {int(frame['anomalies'].sum()):,} "
                   "anomalous rows in range")
        st.plotly_chart(charts.sensor_history(frame, "pressure"), key="history-pressure")
        st.plotly_chart(charts.sensor_history(frame, "temperature"), key="history-temperature")
        st.download_button("Download CSV", frame.to_csv(index=False), mime="text/csv", key="history-csv",
                           file_name=ui.file_name(well, f"{dates[0]}", f"{dates[1]}", suffix="csv"))
