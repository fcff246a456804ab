"""Cost: the default deployment's monthly AWS bill, projected from measured API calls, and its inputs."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from deploy import cost

model = cost.load_model()
st.title("Cost")
st.caption(f"{model['basis']} Prices as of {model['prices_as_of']}, {model['region']}.")

default = cost.Scenario()
with st.container(border=True):
    st.markdown("**Scenario** (the variables of `infra/variables.tf` that move the bill)")
    left, middle, right = st.columns(3)
    shards = int(left.number_input("Kinesis shards", 1, 64, default.shards, key="cost-shards"))
    consumers = int(middle.number_input("Consumers", 1, 64, default.consumers, key="cost-consumers"))
    base = int(right.number_input("On-demand base", 0, 64, default.on_demand_base, key="cost-base"))
    spot = left.toggle("Fargate Spot", value=default.spot, key="cost-spot")
    on_demand_stream = middle.toggle("On-demand Kinesis stream", value=default.kinesis_on_demand, key="cost-kinesis")
    portal = right.toggle("Hosted portal (ALB)", value=default.portal, key="cost-portal")
scenario = cost.Scenario(name="chosen", shards=shards, consumers=consumers, spot=spot, on_demand_base=base,
                         kinesis_on_demand=on_demand_stream, portal=portal)
result = cost.estimate(scenario)
target = model["target_usd_per_month"]
total, default_total = st.columns(2)
total.metric("This scenario, USD/month (24/7)", f"{result.total:.2f}",
             delta=f"{result.total - target:+.2f} vs target {target}", delta_color="inverse")
default_total.metric("Default deployment, USD/month", f"{cost.estimate().total:.2f}")
st.dataframe(pd.DataFrame([{"item": i.item, "usage per month": i.usage, "USD/month": i.usd} for i in result.items]),
             hide_index=True, key="cost-items")

st.subheader("Measured API calls")
st.caption(f"Counted on moto while the producer (6 wells at 1 Hz) and one consumer ran {cost.measured_seconds()} "
           "simulated seconds in real-time rhythm (`python -m tests.metering`), then scaled to a month.")
st.dataframe(pd.DataFrame([{"service": c.service, "operation": c.operation, "calls": c.calls,
                            "per month": round(c.per_month), "billed as": c.billed_as}
                           for c in cost.measured_calls()]), hide_index=True, key="cost-calls")

st.subheader("Prices")
st.dataframe(pd.DataFrame([{"service": p["service"], "price (USD)": p["value"], "unit": p["unit"]}
                           for p in model["prices"].values()]), hide_index=True, key="cost-prices")
