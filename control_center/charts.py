"""Plotly figures of the portal, built from the frames the engine returns.

Plain functions from data to figure, so they are testable without a browser and every page
draws the same thing the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from engine.status import ShardStatus

ANOMALY_RED = "#c62828"
_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "legend": {"orientation": "h", "y": -0.2}}


def score_timeline(scores: pd.DataFrame, threshold: float | None) -> go.Figure:
    """Each well's recent scores against the threshold, aligned on each well's latest observation.

    Wells report on their own clocks (a replay of 2014 next to one of 2017), so the x axis is
    minutes before each well's newest data rather than wall time.
    """
    figure = go.Figure()
    for well, rows in scores.groupby("well_id", sort=True):
        minutes = (rows["bucket"] - rows["bucket"].max()).dt.total_seconds() / 60
        figure.add_scatter(x=minutes, y=rows["score"], mode="lines", name=str(well))
        flagged = rows["flag"].fillna(0) > 0
        figure.add_scatter(x=minutes[flagged], y=rows["score"][flagged], mode="markers", showlegend=False,
                           marker={"color": ANOMALY_RED, "size": 7, "symbol": "x"}, name=f"{well} flagged")
    if threshold is not None:
        figure.add_hline(y=threshold, line_dash="dash", line_color=ANOMALY_RED,
                         annotation_text=f"threshold {threshold:.3f}")
    figure.update_layout(title="Anomaly score, last minutes of each well", height=360,
                         xaxis_title="minutes before the well's latest observation", yaxis_title="score", **_LAYOUT)
    return figure


#: History chart per sensor: (average, minimum, maximum) columns of the engine's frame, label, unit.
SENSORS: dict[str, tuple[str, str, str, str, str]] = {
    "pressure": ("pressure_bar", "pressure_min_bar", "pressure_max_bar", "Pressure", "bar"),
    "temperature": ("temperature_c", "temperature_min_c", "temperature_max_c", "Temperature", "°C"),
}


def sensor_history(frame: pd.DataFrame, sensor: str) -> go.Figure:
    """Average per bucket with its min–max band, and the buckets holding flagged rows marked."""
    average, low, high, label, unit = SENSORS[sensor]
    figure = go.Figure()
    figure.add_scatter(x=frame["bucket"], y=frame[high], mode="lines", line={"width": 0}, showlegend=False,
                       hoverinfo="skip")
    figure.add_scatter(x=frame["bucket"], y=frame[low], mode="lines", line={"width": 0}, fill="tonexty",
                       fillcolor="rgba(21, 101, 192, 0.15)", name="min–max", hoverinfo="skip")
    figure.add_scatter(x=frame["bucket"], y=frame[average], mode="lines", name=f"average ({unit})",
                       line={"color": "#1565c0"})
    anomalous = frame["anomalies"] > 0
    figure.add_scatter(x=frame["bucket"][anomalous], y=frame[average][anomalous], mode="markers", name="anomaly",
                       marker={"color": ANOMALY_RED, "size": 8, "symbol": "x"},
                       customdata=frame["anomalies"][anomalous], hovertemplate="%{customdata} flagged rows")
    figure.update_layout(title=f"{label} ({unit})", height=320, yaxis_title=unit, xaxis_title="event time (UTC)",
                         **_LAYOUT)
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
