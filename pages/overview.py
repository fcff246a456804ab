"""Overview: the headline numbers, the pipeline's health, and one click to start the demo."""

from __future__ import annotations

import streamlit as st

from control_center import alarm_view, ui, widgets
from engine import insights
from engine.alarm_board import RECENT_ALARMS, alarm_headline
from engine.demo_pipeline import DEMO_SPEED, reset_demo, start_demo_pipeline, stop_pipeline
from engine.status import pipeline_status

backend = ui.backend()
st.title("PetroStream overview")

intro, actions = st.columns([3, 1])
intro.markdown("Offshore wells streamed, scored by an Isolation Forest and landed in the lake. "
               f"New here? **Start demo pipeline** replays synthetic wells at {DEMO_SPEED:.0f}× real time; "
               "its first alarm shows here within about a minute.")
start = actions.button("Start demo pipeline", type="primary", key="start-demo", width="stretch")
stop = actions.button("Stop pipeline", key="stop-pipeline", width="stretch")
with actions.popover("Reset demo", width="stretch", disabled=backend.erase_data is None,
                     help=None if backend.erase_data else f"The {backend.name} backend's data is not erased from here"):
    st.markdown("Stops the replay and consumers, **erases** the lake, the stream, checkpoints, replay progress "
                "and alarm acknowledgements, then starts the demo from its first row. Models and the well "
                "registry stay.")
    confirmed = st.checkbox("I want to erase this home's pipeline data", key="reset-demo-confirm")
    reset = st.button("Erase and restart the demo", key="reset-demo", type="primary", disabled=not confirmed)
if start:
    with st.spinner("Preparing demo data and model, starting the replay and a consumer…"), \
            ui.shielded("Starting the demo pipeline"):
        st.success(start_demo_pipeline(backend))
if stop:
    with ui.shielded("Stopping the pipeline"):
        st.success(stop_pipeline(backend))
if reset:
    with st.spinner("Stopping, erasing and restarting the demo…"), ui.shielded("Resetting the demo"):
        st.success(reset_demo(backend))


@st.fragment(run_every=ui.refresh_seconds(5, backend))
def dashboard() -> None:
    """Refreshes itself; the buttons above are not re-run."""
    now = ui.now()
    with ui.shielded("Reading the alarms and the lake"):
        alarms = alarm_headline(backend.sql, backend.alarm_acks, now)
        kpis = insights.kpis(backend.sql, now)
        columns = st.columns(4)
        columns[0].metric("Active alarms", ui.number(alarms.active),
                          help="Alarm events still active (acknowledged and shelved ones included)")
        columns[1].metric("Unacknowledged", ui.number(alarms.unacknowledged),
                          help="Active alarms nobody has acknowledged or shelved yet")
        columns[2].metric(f"Alarms (last {RECENT_ALARMS.total_seconds() / 3600:.0f} h)", ui.number(alarms.recent),
                          help="Alarm events active within this period of the newest alarm activity (wells' clock)")
        columns[3].metric("Active wells", f"{kpis.active_wells} of {kpis.wells}",
                          help="Wells with data landed in the last hour, of the wells with data in the lake's "
                               "newest days (the look-back window, PETROSTREAM_SCAN_DAYS)")
        if not alarms.top.empty:
            st.dataframe(alarm_view.headline_table(alarms.top), hide_index=True, key="overview-alarms",
                         column_config=alarm_view.COLUMN_CONFIG)
        if alarms.active:
            ui.page_link("alarms", f"Acknowledge or shelve the {alarms.active} active alarm(s)")
        st.caption("Flagged rows (single observations above the threshold; alarms are made of them)")
        columns = st.columns(4)
        columns[0].metric("Flagged rows (all time)", ui.number(kpis.anomalies))
        columns[1].metric(f"Flagged rows (last {insights.RECENT.total_seconds() / 3600:.0f} h)",
                          ui.number(kpis.recent_anomalies))
        columns[2].metric("Observations in the lake", ui.number(kpis.observations))
        if kpis.observations == 0:
            ui.empty_state("No data in the lake yet.",
                           "Click Start demo pipeline, or start a replay and a consumer yourself.")

    st.subheader("Pipeline health")
    with ui.shielded("Reading the pipeline's health"):
        status = pipeline_status(backend)
        columns = st.columns(5)
        if backend.replay_control is not None:
            replay = backend.replay_control.state()
            rate = f"{replay.progress.rate:,.0f} rows/s" if replay.running and replay.progress else None
            columns[0].metric("Producer", replay.phase, rate, delta_color="off", delta_arrow="off")
        if backend.scaling is not None:
            scaling = backend.scaling.reconcile()
            columns[1].metric("Consumers running", scaling.running, f"desired {scaling.desired}", delta_color="off",
                              delta_arrow="off")
        columns[2].metric("Stream lag", status.lag_text)
        columns[3].metric("Dead letters", ui.number(status.dead_letters))
        columns[4].metric("Model version", status.model_version or "none")
        st.caption(f"Backend `{status.backend}` · refreshed {ui.when(now)}")
        if status.model_version is None:
            st.warning("No model is active: new data lands unscored. Train one, or start the demo pipeline.")
            ui.page_link("model", "Train or publish a model")


@st.fragment(run_every=ui.refresh_seconds(5, backend))
def wells() -> None:
    """Every well as a tile, classified as on Live anomalies and the map; a tile links to its History."""
    st.subheader("Wells")
    now = ui.now()
    with ui.shielded("Reading the wells"):
        view = insights.live_view(backend, now)
        if view.wells.snapshots:
            ui.status_summary(view.wells.snapshots)
            widgets.well_tiles(view.wells.snapshots, now, view.threshold, view.alarms)


dashboard()
wells()
