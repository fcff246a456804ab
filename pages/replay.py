"""Replay: choose 3W files and a speed, start and stop the producer, watch its progress.

The producer is a detached process: reloading this page, closing the browser or restarting
the portal leaves it running, and its progress comes from the replay log it writes.
"""

from __future__ import annotations

import streamlit as st

from control_center import ui, widgets
from engine.data_sources import catalogue, files_of_wells
from engine.replay_control import MAX_SPEED, ReplayRequest

backend = ui.backend()
st.title("Replay")
control = ui.required(backend.replay_control, backend, "run replays", "python -m engine replay")


@st.fragment(run_every=2)
def progress() -> None:
    with ui.shielded("Reading the replay's progress"):
        state = control.state()
        columns = st.columns(4)
        columns[0].metric("Replay", state.phase)
        if state.progress is None:
            if not state.running:
                ui.empty_state("No replay has run yet.", "Choose data below and start one.")
            return
        progress = state.progress
        columns[1].metric("Rows sent", f"{progress.sent_rows:,}", f"of {progress.total_rows:,}", delta_color="off",
                          delta_arrow="off")
        columns[2].metric("Rate (rows/s)", f"{progress.rate:,.0f}")
        columns[3].metric("Speed (× real time)", "max" if progress.speed <= 0 else f"{progress.speed:g}×",
                          help="max: as fast as possible")
        st.progress(state.share, text=f"{state.share:.0%} of {len(progress.files)} file(s)")
        if state.note:
            st.error(f"The last replay process failed: {state.note}")
        if state.phase == "interrupted":
            st.warning("The replay process ended without finishing; start the same files again to resume.")
        if state.running:
            if backend.scaling is not None and backend.scaling.desired() == 0:
                st.warning("No consumer is running: replayed records wait in the stream until you start one "
                           "on the Scaling page.")
            if st.button("Stop replay", key="replay-stop"):
                control.stop()
                st.rerun()


progress()

st.subheader("Start a replay")
files = widgets.pick_data("replay", backend.settings.home)
if files:
    listing = catalogue(files)
    wells = sorted(set(listing["well_id"]))
    chosen = st.multiselect("Wells", wells, default=wells, key="replay-wells")
    speed_column, limit_column = st.columns(2)
    speed = speed_column.number_input("Speed (× real time; 0 = as fast as possible)", min_value=0.0,
                                      max_value=MAX_SPEED, value=60.0, step=10.0, key="replay-speed")
    limit = limit_column.number_input("Stop after this many rows (0 = all)", min_value=0, value=0, step=1_000,
                                      key="replay-max-rows")
    with st.expander(f"Files of the chosen wells ({listing['well_id'].isin(chosen).sum()})"):
        st.dataframe(listing[listing["well_id"].isin(chosen)], hide_index=True)
    if st.button("Start replay", type="primary", key="replay-start", disabled=not chosen):
        with ui.shielded("Starting the replay"):
            launch = control.start(ReplayRequest(tuple(f.path for f in files_of_wells(files, chosen)),
                                                 float(speed), int(limit) or None))
            st.success(f"Replay started (process {launch.ident}). Replaying the same files again resumes where "
                       "they stopped.")
