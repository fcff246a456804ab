"""The portal's entry point: ``streamlit run control_center/app.py``.

Registers one page per file in ``pages/`` with ``st.navigation`` and runs the chosen one.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run` puts only this file's folder on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from control_center import ui  # noqa: E402

PAGES = ui.PAGES

st.set_page_config(page_title="PetroStream", page_icon="🛢️", layout="wide")
navigation = st.navigation({
    "Monitor": [
        st.Page(PAGES / "overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page(PAGES / "alarms.py", title="Alarms", icon=":material/notifications_active:"),
        st.Page(PAGES / "live_anomalies.py", title="Live anomalies", icon=":material/monitor_heart:"),
        st.Page(PAGES / "well_map.py", title="Well map", icon=":material/map:"),
        st.Page(PAGES / "history.py", title="History", icon=":material/timeline:"),
    ],
    "Operate": [
        st.Page(PAGES / "model.py", title="Model", icon=":material/model_training:"),
        st.Page(PAGES / "replay.py", title="Replay", icon=":material/play_circle:"),
        st.Page(PAGES / "scaling.py", title="Scaling", icon=":material/tune:"),
    ],
    "Report": [
        st.Page(PAGES / "power_bi.py", title="Power BI", icon=":material/bar_chart:"),
        st.Page(PAGES / "cost.py", title="Cost", icon=":material/payments:"),
    ],
})
with st.sidebar:
    st.caption(f"PetroStream · backend `{ui.backend().name}`")
navigation.run()
