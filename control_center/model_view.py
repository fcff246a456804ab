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
    show_diagnosis(manifest)


def show_diagnosis(manifest: dict[str, Any]) -> None:
    """The alarm classifier: whether the synthetic prior was used, and its confusion matrix on held-out wells."""
    prior = manifest.get("prior")
    if prior and prior.get("reason"):
        st.warning(f"Trained with the built-in synthetic fleet as normal baseline: {prior['reason']}.")
    validation = (manifest.get("diagnosis") or {}).get("cross_validation")
    if not validation:
        return
    st.caption(f"Alarm diagnosis: likely event type on wells held out of training ({validation['folds']} folds "
               f"by well, training rows where a sensor stands off), accuracy "
               f"{ui.number(validation.get('accuracy'), 3)}; rows are the true class, columns what was said")
    key = f"manifest-confusion-{manifest.get('version', 'candidate')}"
    st.dataframe(confusion_table(validation), key=key)


def confusion_table(confusion: dict[str, Any]) -> pd.DataFrame:
    """A confusion matrix (``ml.diagnosis_training.confusion_report``) with class names, plus recall and precision."""
    names = [_said_title(label) for label in confusion["labels"]]
    table = pd.DataFrame(confusion["matrix"], index=names, columns=names)
    truths = [name for name, label in zip(names, confusion["labels"], strict=True) if label >= 0]
    per_class = confusion.get("per_class", {})
    table = table.loc[[n for n in truths if per_class.get(n.split(" ")[0], {}).get("support")]]
    if "unknown" not in table:  # nothing fell below the cut-off: still say so
        table["unknown"] = 0
    table["recall"] = [per_class[n.split(" ")[0]]["recall"] for n in table.index]
    table["precision"] = [per_class[n.split(" ")[0]]["precision"] for n in table.index]
    return table


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
    diagnosis = summary.get("diagnosis") or {}
    if diagnosis.get("alarmed_events"):
        st.caption(f"Likely type of the first alarm on each alarmed event ({diagnosis['alarmed_events']}): "
                   "rows are the labeled class, columns what the alarm said")
        st.dataframe(confusion_table(diagnosis), key="evaluation-confusion")
    for name, figure in evaluation_figures(report).items():
        st.plotly_chart(figure, key=f"evaluation-{name}")


def _said_title(label: int) -> str:
    return "unknown" if label < 0 else _class_title(str(label))


def _class_title(code: str) -> str:
    return f"{code} {EVENT_CLASSES.get(event_of(int(code)), '')}".strip() if code.isdigit() else code
