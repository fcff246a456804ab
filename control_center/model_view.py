"""How the Model page shows a model: its manifest summary, the version list, an evaluation report.

Manifests and reports are JSON written by ``ml/``; what is read here is read with defaults,
so an older manifest (fewer fields) still shows what it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from control_center import ui
from engine.model_store import ModelVersion
from engine.schema import EVENT_CLASSES, event_of
from ml.plots import evaluation_figures


def versions_table(versions: Sequence[ModelVersion]) -> pd.DataFrame:
    return pd.DataFrame({
        "version": [v.version for v in versions],
        "active": ["✓" if v.active else "" for v in versions],
        "published": [v.published_at for v in versions],
        "threshold": [round(v.threshold, 4) for v in versions],
        "normal rows used": [v.summary.get("normal_rows_used") for v in versions],
        "wells": [len(v.summary.get("rows_by_well_and_class", {})) for v in versions],
    })


def show_manifest(manifest: dict[str, Any]) -> None:
    """Threshold, false-alarm budget, training data and calibration of one model."""
    training = manifest.get("training", {})
    calibration = manifest.get("calibration", {})
    columns = st.columns(4)
    columns[0].metric("Threshold", ui.number(manifest.get("threshold"), 4))
    rate = manifest.get("false_alarm_rate")
    columns[1].metric("False-alarm budget (rows)", "—" if rate is None else f"{100 * rate:.2f} %")
    columns[2].metric("Normal rows used", ui.number(training.get("normal_rows_used")))
    columns[3].metric("Alarm events per normal hour", ui.number(calibration.get("alarm_events_per_hour"), 3),
                      help="On the training data, after calibration")
    rows = training.get("rows_by_well_and_class", {})
    if rows:
        table = pd.DataFrame(rows).T.fillna(0).astype(int)
        table = table[sorted(table.columns, key=lambda c: (not c.isdigit(), int(c) if c.isdigit() else 0))]
        table.columns = [_class_title(c) for c in table.columns]
        st.caption("Training rows per well and class")
        st.dataframe(table, key=f"manifest-rows-{manifest.get('version', 'candidate')}")


def show_evaluation(report: dict[str, Any]) -> None:
    """An ``ml.evaluate`` report: headline metrics, per-class detection and its figures."""
    summary = report.get("summary", {})
    columns = st.columns(4)
    share = summary.get("detected_share")
    columns[0].metric("Transient events alarmed", "—" if share is None else f"{100 * share:.0f} %",
                      f"{summary.get('detected', 0)} of {summary.get('events', 0)}", delta_color="off")
    delay = summary.get("delay_median_s")
    columns[1].metric("Median delay", "—" if delay is None else f"{delay / 60:.1f} min")
    columns[2].metric("False alarms per hour", ui.number(summary.get("false_alarms_per_hour"), 2))
    columns[3].metric("ROC-AUC / PR-AUC", f"{ui.number(summary.get('roc_auc'), 3)} / "
                                          f"{ui.number(summary.get('pr_auc'), 3)}")
    classes = report.get("classes", [])
    if classes:
        table = pd.DataFrame(classes)
        table.insert(1, "event", [EVENT_CLASSES.get(int(c), "?") for c in table["class"]])
        st.dataframe(table, hide_index=True, key="evaluation-classes")
    for name, figure in evaluation_figures(report).items():
        st.plotly_chart(figure, key=f"evaluation-{name}")


def _class_title(code: str) -> str:
    return f"{code} {EVENT_CLASSES.get(event_of(int(code)), '')}".strip() if code.isdigit() else code
