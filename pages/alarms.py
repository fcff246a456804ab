"""Alarms: every alarm event with its status; acknowledge, shelve or unshelve one with a comment.

The list refreshes itself; the action panel below it does not, so typing is never interrupted.
"""

from __future__ import annotations

import streamlit as st

from control_center import alarm_view, ui
from engine.alarm_acks import Action
from engine.alarm_board import alarm_board, history_window

backend = ui.backend()
refresh = ui.refresh_seconds(10, backend)
st.title("Alarms")
ui.show_flash()
st.caption(f"Alarm events from `anomaly_events`, active first; refreshes every {refresh} s. *Active* alarms need "
           "someone: acknowledge to own one, shelve (with a reason, for a limited time) to hide one during "
           "known work. Each alarm links to History for its time window.")
choice = st.segmented_control("Show", list(alarm_view.FILTERS), default="Active (all)", key="alarm-filter") \
    or "Active (all)"


@st.fragment(run_every=refresh)
def board() -> None:
    with ui.shielded("Reading the alarms"):
        rows = alarm_board(backend.sql, backend.alarm_acks, ui.now())
        if rows.empty:
            ui.empty_state("No alarm events so far.",
                           "Alarms open when flagged rows cluster; start the demo pipeline on the Overview page.")
            return
        table = alarm_view.board_table(rows, alarm_view.FILTERS[choice])
        if table.empty:
            ui.empty_state(f"No alarms under “{choice}”.")
            return
        st.dataframe(table, hide_index=True, key="alarm-board", column_config=alarm_view.COLUMN_CONFIG)


board()

st.subheader("Act on an alarm")
with ui.shielded("Reading the alarms"):
    rows = alarm_board(backend.sql, backend.alarm_acks, ui.now())
    if rows.empty:
        st.caption("Nothing to act on yet.")
        st.stop()
    alarms = {row["event_id"]: row for _, row in rows.iterrows()}
    linked = st.query_params.get("alarm")  # a shared link to one alarm: ?alarm=<event_id>
    event_id = st.selectbox("Alarm", list(alarms), format_func=lambda e: alarm_view.describe(alarms[e]),
                            index=list(alarms).index(linked) if linked in alarms else 0, key="alarm-pick")
    alarm = alarms[event_id]
    st.caption(ui.plain(alarm_view.summary(alarm)))
    left, right = st.columns(2)
    operator = left.text_input("Operator", key="alarm-operator", placeholder="your name",
                               help="Stored with the action, with the time")
    shelve_for = right.selectbox("Shelve for", list(alarm_view.SHELVE_FOR), key="alarm-shelve-for")
    comment = st.text_area("Comment", key="alarm-comment", max_chars=500,
                           placeholder="what you saw or are doing; required to shelve")
    allowed = alarm_view.allowed_actions(alarm, operator, comment)
    buttons = st.columns(3)
    clicked = None
    for column, action, label in zip(buttons, Action, ("Acknowledge", "Shelve", "Unshelve"), strict=True):
        reason = allowed.reason(action)
        if column.button(label, key=f"alarm-{action.value}", disabled=reason is not None, width="stretch"):
            clicked = action
        if reason:
            column.caption(reason)
    st.page_link(ui.PAGES / "history.py", label="Open this alarm in History", icon=":material/timeline:",
                 query_params=history_window(alarm["well_id"], alarm["start_time"],
                                                alarm["last_active_time"], event_id))
    if clicked == Action.ACKNOWLEDGE:
        backend.alarm_acks.acknowledge(event_id, operator, comment)
        ui.flash(f"Alarm {event_id} acknowledged by {operator.strip()}.")
    elif clicked == Action.SHELVE:
        backend.alarm_acks.shelve(event_id, operator, comment, alarm_view.SHELVE_FOR[shelve_for])
        ui.flash(f"Alarm {event_id} shelved for {shelve_for} by {operator.strip()}.")
    elif clicked == Action.UNSHELVE:
        backend.alarm_acks.unshelve(event_id, operator, comment)
        ui.flash(f"Alarm {event_id} back on the list.")
