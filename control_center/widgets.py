"""Composite widgets more than one page uses: the data picker, well tiles, the alarm table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from control_center import ui
from engine.data_sources import data_roots, demo_folder, save_upload, uploads_folder, user_files
from engine.insights import WellSnapshot
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


def well_tiles(snapshots: Sequence[WellSnapshot], reference: datetime, per_row: int = 4) -> None:
    """One bordered tile per well: status, latest score and readings, and how fresh they are."""
    for start in range(0, len(snapshots), per_row):
        for column, well in zip(st.columns(per_row), snapshots[start:start + per_row], strict=False):
            with column.container(border=True):
                st.markdown(f"**{ui.plain(well.well_id)}** · {ui.status_label(well.status)}")
                st.caption(f"score {ui.number(well.last_score, 3)} · {ui.number(well.pressure_bar, 1, 'bar')} · "
                           f"{ui.number(well.temperature_c, 1, '°C')}")
                st.caption(f"latest reading {ui.when(well.last_event)} · landed {ui.age(well.last_ingest, reference)}")


def alarm_table(alarms: pd.DataFrame) -> pd.DataFrame:
    """Alarm events with readable labels (event class names) for display."""
    return alarms.assign(label=[_class_name(v) for v in alarms["label"]])


def _class_name(label: object) -> str:
    if label is None or pd.isna(label):
        return "unlabeled"
    return class_name(int(label))
