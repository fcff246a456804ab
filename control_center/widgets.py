"""Composite widgets more than one page uses: the data picker, well tiles, the alarm table."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from control_center import time_range, ui
from engine import insights
from engine.data_sources import data_roots, demo_folder, save_upload, uploads_folder, user_files
from engine.insights import WellSnapshot, _timestamp
from engine.quickstart import ensure_demo_data
from engine.readers import InstanceFile, discover
from engine.schema import class_name

DEMO, FOLDER, UPLOADS = "Demo data", "A folder of 3W files", "Uploaded files"


def pick_data(key: str, home: Path) -> list[InstanceFile] | None:
    """Let the user choose 3W files: the demo set, a folder on this machine, or uploads.

    Returns the files chosen, or None (with the reason shown) when there are none yet.
    """
    source = st.radio("Data", (DEMO, FOLDER, UPLOADS), key=f"{key}-source", horizontal=True)
    files: list[InstanceFile] | None = None
    with ui.shielded("Reading the data"):
        if source == DEMO:
            files = _demo_files(key, home)
        elif source == FOLDER:
            roots = data_roots(home)
            text = st.text_input("Folder with 3W files (absolute path)", key=f"{key}-folder",
                                 placeholder=str(roots[0]), help="Inside one of: " + ", ".join(map(str, roots)))
            files = user_files(text, roots) if text.strip() else None
        else:
            files = _uploaded_files(key, home)
    if files:
        wells = sorted({f.well_id for f in files})
        st.caption(f"{len(files)} file(s) of {len(wells)} well(s)")
    return files or None


def _demo_files(key: str, home: Path) -> list[InstanceFile] | None:
    folder = demo_folder(home)
    if folder.is_dir() and (found := discover([folder])):
        return found
    st.info("The demo data set has not been generated yet (6 synthetic wells × 8 h in 3W 2.0 layout).")
    if st.button("Generate demo data", key=f"{key}-generate"):
        with st.spinner("Generating demo data…"):
            ensure_demo_data(folder)
        return discover([folder])
    return None


def _uploaded_files(key: str, home: Path) -> list[InstanceFile] | None:
    uploads = st.file_uploader("3W instance files (.parquet or .csv)", type=["parquet", "csv"],
                               accept_multiple_files=True, key=f"{key}-upload")
    saved: set[str] = st.session_state.setdefault(f"{key}-saved", set())
    for upload in uploads or ():
        if upload.file_id not in saved:
            with ui.shielded(f"Storing {upload.name}"):
                save_upload(home, upload.name, upload.getvalue())
                saved.add(upload.file_id)
    folder = uploads_folder(home)
    found = discover([folder]) if folder.is_dir() else []
    if not found:
        st.info("No uploaded files yet. Files you upload are kept under the backend's home for later runs.")
    return found or None


def well_tiles(snapshots: Sequence[WellSnapshot], reference: datetime, threshold: float | None,
               alarms: pd.DataFrame, per_row: int = 4) -> None:
    """One bordered tile per well: its colour, status and why, latest readings, and a link to its History.

    The link opens History on the well's open alarm (its window shaded) when it has one, else
    on the last hour of its data.
    """
    colours = ui.well_colours([w.well_id for w in snapshots])
    for start in range(0, len(snapshots), per_row):
        for column, well in zip(st.columns(per_row), snapshots[start:start + per_row], strict=False):
            with column.container(border=True, key=f"tile-{re.sub(r'[^A-Za-z0-9_-]', '-', well.well_id)}"):
                st.markdown(f'<span style="color:{colours[well.well_id]}">■</span> **{ui.plain(well.well_id)}** · '
                            f"{ui.status_label(well.status)}", unsafe_allow_html=True)
                st.caption(f"score {ui.number(well.last_score, 3)} · {ui.number(well.pressure_bar, 1, 'bar')} · "
                           f"{ui.number(well.temperature_c, 1, '°C')}")
                st.caption(f"latest reading {ui.when(well.last_event)} · landed {ui.age(well.last_ingest, reference)}")
                reason = insights.explain(well, threshold)
                st.caption(f"{reason[:1].upper()}{reason[1:]}.")
                if well.last_event is not None:
                    st.page_link(ui.PAGES / "history.py", label="History", icon=":material/timeline:",
                                 query_params=_history_link(well.well_id, well.last_event, alarms))


def _history_link(well: str, last_event: datetime, alarms: pd.DataFrame) -> dict[str, str]:
    """History around the well's newest alarm if it is still open or ended within the last hour of the
    well's data (what its tile is about), else History of that last hour."""
    newest = time_range.through(last_event)
    recent = time_range.quick_range("1 h", newest)
    mine = alarms[alarms["well_id"] == well] if not alarms.empty else alarms
    if not mine.empty:
        alarm = mine.sort_values("start_time").iloc[-1]
        start, end = _timestamp(alarm.start_time) or newest, _timestamp(alarm.end_time)
        if end is None or end >= recent.start:
            return time_range.history_params(well, time_range.around(start, end or newest), str(alarm.event_id))
    return time_range.history_params(well, recent)


def alarm_table(alarms: pd.DataFrame) -> pd.DataFrame:
    """Alarm events with readable labels (event class names) and their diagnosis for display.

    The likely type reads "2 · spurious closure of DHSV (0.82)", or "unknown (0.41)" when the
    classifier was not confident; the top sensors and the explanation say what moved.
    """
    table = ui.arrow_times(alarms.assign(label=[_class_name(v) for v in alarms["label"]]))
    if "likely_class" not in table:
        return table
    likely = [likely_type(c, p) for c, p in zip(table["likely_class"], table["likely_class_probability"],
                                                 strict=True)]
    table = table.drop(columns=["likely_class", "likely_class_probability"])
    table.insert(1, "likely type", likely)
    return table.rename(columns={"top_sensors": "top sensors"})


def likely_type(code: object, probability: object) -> str:
    """A diagnosis as an operator reads it: class and name with the probability, or unknown."""
    odds = "" if probability is None or pd.isna(probability) else f" ({float(probability):.2f})"
    if code is None or pd.isna(code):
        return f"unknown{odds}" if odds else "—"
    return f"{class_name(int(code))}{odds}"


def _class_name(label: object) -> str:
    if label is None or pd.isna(label):
        return "unlabeled"
    return class_name(int(label))
