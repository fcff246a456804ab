"""Power BI: the report, how Power BI connects to the lake, and the executive views it reads."""

from __future__ import annotations

import streamlit as st

from control_center import ui
from engine import bi, insights
from engine.scan_window import bi_window

backend = ui.backend()
st.title("Power BI")

st.subheader("Report")
with ui.shielded("Reading the report address"):
    url = bi.report_url()
    if url:
        st.link_button("Open the Power BI report", url, type="primary", icon=":material/open_in_new:")
    else:
        ui.empty_state("No Power BI report is configured.",
                       f"Publish the report, then set `{bi.REPORT_URL_ENV}` to its https:// address and restart "
                       "the portal.")

st.subheader("Connection")
with ui.shielded("Preparing the connection details"):
    settings = bi.odbc_settings(backend)
    if backend.sql_endpoint is None:
        st.caption("This portal runs on the `local` backend; the values in angle brackets come from the cloud "
                   "deployment. Until then, use the exports below.")
    st.markdown("1. Install Amazon's **Athena ODBC 2.x** driver on the Power BI machine.\n"
                f"2. Create a DSN named **{bi.DSN_NAME}** with these settings (or import the file below).\n"
                "3. In Power BI Desktop: *Get data → Amazon Athena*, enter the DSN name, choose "
                "*DirectQuery* for live numbers, and pick the views listed below.")
    st.dataframe({"setting": list(settings), "value": list(settings.values())}, hide_index=True,
                 key="powerbi-settings")
    st.download_button("Download connection file (.dsn)", bi.dsn_file(settings), file_name="petrostream-athena.dsn",
                       mime="text/plain", key="powerbi-dsn")
    st.caption("Or, with Power BI's generic ODBC connector, this connection string:")
    st.code(bi.connection_string(settings), language=None)

st.subheader("Executive views")
st.caption("Monthly and yearly aggregates per well, computed in SQL from `well_data`; on `aws` these are Athena views "
           "(the statements are below), so Power BI reads exactly these numbers.")
for name in insights.EXECUTIVE_VIEWS:
    with ui.shielded(f"Reading {name}"):
        frame = insights.executive_view(backend.sql, name)
        st.markdown(f"**{name}**")
        if frame.empty:
            ui.empty_state("No data in the lake yet.", "The views fill as soon as data lands.")
        else:
            st.dataframe(frame, hide_index=True, key=f"view-{name}")
            if backend.sql_endpoint is None:
                csv_column, parquet_column, _ = st.columns([1, 1, 3])
                csv_column.download_button("Export CSV", bi.export(frame, "csv"), file_name=f"{name}.csv",
                                           mime="text/csv", key=f"export-{name}-csv")
                parquet_column.download_button("Export Parquet", bi.export(frame, "parquet"),
                                               file_name=f"{name}.parquet", mime="application/octet-stream",
                                               key=f"export-{name}-parquet")
        with st.expander(f"SQL of {name}"):
            st.code(insights.executive_view_ddl(name, bi_window(backend.sql)), language="sql")
