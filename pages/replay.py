"""Replay: choose 3W files and a speed, start and stop the producer, watch its progress.

The producer is a detached process: reloading this page, closing the browser or restarting
the portal leaves it running, and its progress comes from the replay log it writes.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from control_center import replay_plan, ui, widgets
from engine.data_sources import catalogue, files_of_wells
from engine.replay_control import MAX_SPEED, ReplayRequest
from engine.replay_log import AT_LIMIT

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
        if state.running:  # a rate or an ETA of a replay that is not running would be stale
            columns[2].metric("Rate (rows/s)", f"{progress.rate:,.0f}")
            eta = state.eta_seconds
            columns[3].metric("Time left", "—" if eta is None else ui.duration(round(eta)),
                              help="At the current rate, until the last row or the row limit")
        pace = "as fast as possible" if progress.speed <= 0 else f"{progress.speed:g}× real time"
        st.progress(state.share, text=f"{state.share:.0%} of {len(progress.files)} file(s) · {pace}")
        if state.note:
            st.error(f"The last replay process failed: {state.note}")
        if state.phase == "interrupted":
            st.warning("The replay process ended without finishing; start the same files again to resume.")
        if state.phase == AT_LIMIT:
            st.info(f"Stopped at its row limit after {progress.sent_rows:,} rows; start the same files again to "
                    "send the rest.")
        if state.running:
            if backend.scaling is not None and backend.scaling.desired() == 0:
                st.warning("No consumer is running: replayed records wait in the stream until you start one "
                           "on the Scaling page.")
            if st.button("Stop replay", key="replay-stop"):
                control.stop()
                st.rerun()


progress()

st.subheader("Start a replay")
ui.show_flash()
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
    request = ReplayRequest(tuple(f.path for f in files_of_wells(files, chosen)), float(speed), int(limit) or None)
    plan = replay_plan.plan(control, request)
    resume_column, restart_column = st.columns(2)
    if resume_column.button(plan.resume_label, type="primary", key="replay-start", disabled=plan.blocked is not None,
                            width="stretch"):
        with ui.shielded("Starting the replay"):
            launch = control.start(request)
            ui.flash(f"Replay started (process {launch.ident}): {plan.summary}")
    if restart_column.button("Replay from the start", key="replay-restart", disabled=plan.invalid is not None,
                             width="stretch", help="Send every row of these files again, from the first one"):
        with ui.shielded("Starting the replay"):
            launch = control.start(replace(request, from_start=True))
            ui.flash(f"Replay from the start launched (process {launch.ident}). Consumers drop rows the lake "
                     "already holds, so only rows it lacks land.")
    if plan.blocked:
        st.caption(f":orange[{plan.blocked}]")
    else:
        st.caption(plan.summary)
