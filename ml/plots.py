"""Plotly figures of evaluation and benchmark reports, for the HTML report and the portal.

The figures are built from the reports' JSON, so the portal draws exactly what a saved
report holds without re-running anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from engine.schema import EVENT_CLASSES


def evaluation_figures(report: dict[str, Any]) -> dict[str, go.Figure]:
    """Detection share and delays per class, and the row-level ROC and PR curves."""
    classes = report["classes"]
    names = [f"{c['class']} {EVENT_CLASSES.get(c['class'], '')}" for c in classes]
    figures = {
        "detection": go.Figure(
            go.Bar(x=names, y=[100 * (c["detected_share"] or 0) for c in classes]),
            layout={"title": "Events alarmed per class (%)", "yaxis": {"range": [0, 100]}},
        ),
        "delay": go.Figure(
            [go.Box(y=[i["delay_seconds"] / 60 for i in report["instances"]
                       if i["event_class"] == c["class"] and i["detected"]], name=name, boxpoints="all")
             for c, name in zip(classes, names, strict=True)],
            layout={"title": "Alarm delay after the transient's onset (minutes)", "showlegend": False},
        ),
    }
    curves = report.get("curves") or {}
    if "roc" in curves:
        figures["roc"] = go.Figure(
            go.Scatter(x=curves["roc"]["fpr"], y=curves["roc"]["tpr"], mode="lines"),
            layout={"title": f"ROC, event rows vs normal rows (AUC {report['summary']['roc_auc']:.3f})",
                    "xaxis": {"title": "false positive rate"}, "yaxis": {"title": "true positive rate"}},
        )
        figures["pr"] = go.Figure(
            go.Scatter(x=curves["pr"]["recall"], y=curves["pr"]["precision"], mode="lines"),
            layout={"title": f"Precision-recall (AUC {report['summary']['pr_auc']:.3f})",
                    "xaxis": {"title": "recall"}, "yaxis": {"title": "precision"}},
        )
    return figures


def write_html(figures: dict[str, go.Figure], path: Path, title: str) -> None:
    """All figures on one self-contained page (plotly.js inlined once, so it opens offline)."""
    parts = [figure.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, figure in enumerate(figures.values())]
    path.write_text(f"<html><head><meta charset='utf-8'><title>{title}</title></head><body>"
                    f"<h1>{title}</h1>{''.join(parts)}</body></html>")
