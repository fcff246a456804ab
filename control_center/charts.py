"""Plotly figures of the portal, built from the frames the engine returns.

Plain functions from data to figure, so they are testable without a browser and every page
draws the same thing the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine.history import History
from engine.status import ShardStatus

ANOMALY_RED = "#c62828"
_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "legend": {"orientation": "h", "y": -0.2}}


def score_timeline(scores: pd.DataFrame, threshold: float | None, colours: Mapping[str, str]) -> go.Figure:
    """Each well's recent scores against the threshold, aligned on each well's latest observation.

    Every well keeps the colour ``colours`` gives it on every page; above the threshold line is
    flagged, so no marker per flagged bucket hides the lines.

    Wells report on their own clocks (a replay of 2014 next to one of 2017), so the x axis is
    minutes before each well's newest data rather than wall time.
    """
    figure = go.Figure()
    for well, rows in scores.groupby("well_id", sort=True):
        minutes = (rows["bucket"] - rows["bucket"].max()).dt.total_seconds() / 60
        figure.add_scatter(x=minutes, y=rows["score"], mode="lines", name=str(well),
                           line={"color": colours.get(str(well)), "width": 2})
    if threshold is not None:
        figure.add_hline(y=threshold, line_dash="dash", line_color=ANOMALY_RED,
                         annotation_text=f"threshold {threshold:.3f}")
    figure.update_layout(title="Anomaly score, last minutes of each well", height=360,
                         xaxis_title="minutes before the well's latest observation", yaxis_title="score", **_LAYOUT)
    return figure


ALARM_BAND = "rgba(198, 40, 40, 0.14)"
PANEL_HEIGHT = 200


def history_panels(history: History, threshold: float | None, alarm: tuple[datetime, datetime] | None = None,
                   alarm_label: str = "alarm") -> go.Figure:
    """One panel per sensor and one of the score, on a shared time axis: zooming one zooms all.

    Each sensor is its average per bucket inside its min–max band. Buckets holding flagged rows
    show as red bars in the score panel (not a marker on every chart), and the alarm being looked
    at is one shaded band across all panels.
    """
    frame, sensors = history.frame, history.sensors
    titles = [f"{s.tag} · {s.meaning} ({s.unit})" for s in sensors] + ["Anomaly score (max per bucket)"]
    figure = make_subplots(rows=len(sensors) + 1, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                           subplot_titles=titles)
    for row, sensor in enumerate(sensors, start=1):
        column = sensor.column
        figure.add_scatter(x=frame["bucket"], y=frame[f"{column}__max"], mode="lines", line={"width": 0},
                           showlegend=False, hoverinfo="skip", row=row, col=1)
        figure.add_scatter(x=frame["bucket"], y=frame[f"{column}__min"], mode="lines", line={"width": 0},
                           fill="tonexty", fillcolor="rgba(21, 101, 192, 0.15)", showlegend=False, hoverinfo="skip",
                           row=row, col=1)
        figure.add_scatter(x=frame["bucket"], y=frame[column], mode="lines", name=sensor.label,
                           line={"color": "#1565c0"}, showlegend=False, row=row, col=1,
                           hovertemplate=f"%{{y:.4g}} {sensor.unit}<extra>{sensor.tag}</extra>")
        figure.update_yaxes(title_text=sensor.unit, row=row, col=1)
    score_row = len(sensors) + 1
    flagged = frame["anomalies"] > 0
    figure.add_bar(x=frame["bucket"][flagged], y=frame["max_score"][flagged], marker_color=ANOMALY_RED, opacity=0.35,
                   name="buckets with flagged rows", customdata=frame["anomalies"][flagged], row=score_row, col=1,
                   hovertemplate="%{customdata} flagged rows<extra></extra>")
    figure.add_scatter(x=frame["bucket"], y=frame["max_score"], mode="lines", name="score", showlegend=False,
                       line={"color": "#424242"}, row=score_row, col=1)
    if threshold is not None:
        figure.add_hline(y=threshold, line_dash="dash", line_color=ANOMALY_RED, row=score_row, col=1,
                         annotation_text=f"threshold {threshold:.3f}")
    if alarm is not None:
        figure.add_vrect(x0=alarm[0], x1=alarm[1], fillcolor=ALARM_BAND, line_width=0, layer="below", row="all",
                         col=1)
        figure.add_annotation(x=alarm[0], y=1.0, yref=f"y{score_row} domain", text=alarm_label, showarrow=False,
                              xanchor="left", yanchor="top", font={"color": ANOMALY_RED},
                              bgcolor="rgba(255, 255, 255, 0.85)")
    figure.update_yaxes(title_text="score", row=score_row, col=1)
    figure.update_xaxes(title_text="event time (UTC)", row=score_row, col=1)
    figure.update_layout(height=PANEL_HEIGHT * (len(sensors) + 1) + 60, bargap=0, hovermode="x unified",
                         uirevision="history", **_LAYOUT)
    return figure


def shard_lag(shards: Sequence[ShardStatus]) -> go.Figure:
    """Records waiting per shard, or seconds behind where the stream does not count records (Kinesis)."""
    counted = all(s.lag_records is not None for s in shards)
    lags = [s.lag_records if counted else s.lag_seconds for s in shards]
    figure = go.Figure(go.Bar(x=[s.shard_id for s in shards], y=lags, marker_color="#1565c0"))
    figure.update_layout(title="Stream lag per shard", height=280,
                         yaxis_title="records behind" if counted else "seconds behind", **_LAYOUT)
    return figure


def score_distribution(histogram: pd.DataFrame, bin_width: float, threshold: float | None) -> go.Figure:
    """Rows per score bin, normal and event rows overlaid, with the threshold."""
    figure = go.Figure()
    for column, name, colour in (("normal_rows", "normal rows", "#1565c0"), ("event_rows", "event rows", ANOMALY_RED),
                                 ("unlabeled_rows", "unlabeled rows", "#9e9e9e")):
        if histogram[column].sum() > 0:
            figure.add_bar(x=histogram["bin"] + bin_width / 2, y=histogram[column], name=name, opacity=0.7,
                           marker_color=colour, width=bin_width)
    if threshold is not None:
        figure.add_vline(x=threshold, line_dash="dash", line_color=ANOMALY_RED, annotation_text="threshold")
    figure.update_layout(title="Score distribution in the lake", barmode="overlay", height=320, xaxis_title="score",
                         yaxis_title="rows", **_LAYOUT)
    return figure
