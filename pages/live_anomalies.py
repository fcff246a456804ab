"""Live anomalies: per-well status, recent scores against the threshold, and the newest alarms.

Only the fragment below re-runs every few seconds; the rest of the page stays as it is.
"""

from __future__ import annotations

import streamlit as st

from control_center import charts, ui, widgets
from engine import insights

backend = ui.backend()
refresh = ui.refresh_seconds(5, backend)
st.title("Live anomalies")
st.caption(f"Refreshes every {refresh} s. A well is *anomaly* when a row within "
           f"{insights.ALARM_WINDOW.total_seconds() / 60:.0f} min of its latest reading was flagged, *stale* when "
           f"nothing landed for {insights.STALE_AFTER.total_seconds() / 60:.0f} min.")


@st.fragment(run_every=refresh)
def live() -> None:
    now = ui.now()
    with ui.shielded("Reading live data"):
        view = insights.live_view(backend, now)
        if not view.wells.snapshots:
            ui.empty_state("No well has reported yet.",
                           "Start the demo pipeline on the Overview page, or a replay and a consumer.")
            return
        ui.status_summary(view.wells.snapshots)
        widgets.well_tiles(view.wells.snapshots, now, view.threshold, view.alarms)
        if view.wells.scores["score"].notna().any():
            colours = ui.well_colours([w.well_id for w in view.wells.snapshots])
            st.plotly_chart(charts.score_timeline(view.wells.scores, view.threshold, colours), key="live-scores")
        else:
            ui.empty_state("Rows have landed unscored: no model was active when they arrived.",
                           "Publish a model on the Model page; new rows are scored from then on.")
        st.subheader("Alarms")
        if view.alarms.empty:
            ui.empty_state("No alarms so far.")
        else:
            st.dataframe(widgets.alarm_table(view.alarms), hide_index=True, key="live-alarms")


live()
