"""Scaling: how many stream consumers run, the auto-scaling policy, and the stream's lag per shard."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from control_center import charts, ui
from engine.errors import InputError
from engine.scaling import MAX_CONSUMERS, ScalingPolicy
from engine.status import pipeline_status

backend = ui.backend()
st.title("Scaling")
scaler = ui.required(backend.scaling, backend, "scale consumers", "python -m engine consume --workers N")
st.caption("On `local`, consumers are worker processes on this machine and the policy is applied whenever this page "
           "or the Overview refreshes; on `aws`, they are the ECS service's tasks under Application Auto Scaling.")

ui.show_flash()
count_column, policy_column = st.columns(2)
with count_column, st.container(border=True):
    st.markdown("**Consumers**")
    count = int(st.number_input("Desired consumers", min_value=0, max_value=MAX_CONSUMERS, value=scaler.desired(),
                                key="scaling-count"))
    policy = scaler.policy()
    blocked = (f"Auto-scaling keeps consumers between {policy.min_workers} and {policy.max_workers}; change the "
               "policy or turn it off first." if policy.enabled and policy.clamp(count) != count else None)
    if st.button("Apply", type="primary", key="scaling-apply", disabled=blocked is not None):
        with ui.shielded("Setting the consumer count"):
            scaler.set_desired(count)
            ui.flash(f"{count} consumer(s) desired.")
    if blocked:
        st.caption(f":orange[{blocked}]")

with policy_column, st.container(border=True):
    st.markdown("**Auto-scaling policy** (target tracking on average CPU)")
    enabled = st.toggle("Auto-scale", value=policy.enabled, key="policy-enabled")
    low, high, target = st.columns(3)
    minimum = low.number_input("Minimum", 0, MAX_CONSUMERS, policy.min_workers, key="policy-min")
    maximum = high.number_input("Maximum", 0, MAX_CONSUMERS, policy.max_workers, key="policy-max")
    cpu = target.number_input("CPU target (%)", 5.0, 95.0, float(policy.cpu_target), step=5.0, key="policy-cpu")
    chosen = ScalingPolicy(int(minimum), int(maximum), float(cpu), bool(enabled))
    try:
        chosen.validated()
        invalid = None
    except InputError as exc:
        invalid = str(exc)
    if st.button("Save policy", key="policy-save", disabled=invalid is not None):
        with ui.shielded("Saving the policy"):
            scaler.set_policy(chosen)
            ui.flash("Policy saved" + (" and applied." if enabled else " (auto-scaling off)."))
    if invalid:
        st.caption(f":orange[Cannot save: {invalid}.]")


@st.fragment(run_every=5)
def live_status() -> None:
    with ui.shielded("Reading the consumers"):
        state = scaler.reconcile()
        columns = st.columns(3)
        columns[0].metric("Desired", state.desired)
        columns[1].metric("Running", state.running)
        columns[2].metric("Average CPU", ui.number(state.average_cpu, 0, "%"))
        if state.workers:
            st.dataframe(pd.DataFrame({
                "worker": [w.ident for w in state.workers],
                "started": [ui.age(datetime.fromtimestamp(w.started_at, UTC))
                            for w in state.workers],
                "CPU %": [None if w.cpu_percent is None else round(w.cpu_percent, 1) for w in state.workers],
            }), hide_index=True, key="scaling-workers")
        else:
            ui.empty_state("No consumer is running.", "Set a count above; records wait in the stream meanwhile.")
    with ui.shielded("Reading the stream's lag"):
        status = pipeline_status(backend)
        st.plotly_chart(charts.shard_lag(status.shards), key="scaling-lag")
        st.dataframe(pd.DataFrame({
            "shard": [s.shard_id for s in status.shards],
            "owner": [s.owner or "—" for s in status.shards],
            "checkpoint": [s.checkpoint or "—" for s in status.shards],
            "lag": [s.lag_text for s in status.shards],
        }), hide_index=True, key="scaling-shards")


st.subheader("Now")
live_status()
