"""The well map: a folium base map drawn once, and a marker layer replaced on every refresh.

streamlit-folium keeps a map mounted as long as its base script is unchanged and only swaps
a ``feature_group_to_add`` layer, so live refreshes recolour markers without redrawing the
map (the user's zoom and pan stay where they were).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import folium
import pandas as pd

from control_center.ui import STATUS_COLOURS, age, number, when
from engine.insights import WellSnapshot, WellStatus
from engine.well_registry import WellLocation

#: Where the map opens when no well can be placed: offshore south-east Brazil.
DEFAULT_CENTRE = (-23.5, -41.5)


def base_map(locations: Sequence[WellLocation]) -> folium.Map:
    """Tiles and view only; markers come as a separate layer (see :func:`markers`)."""
    if locations:
        centre = (sum(w.latitude for w in locations) / len(locations),
                  sum(w.longitude for w in locations) / len(locations))
    else:
        centre = DEFAULT_CENTRE
    return folium.Map(location=centre, zoom_start=6, tiles="OpenStreetMap", control_scale=True)


def markers(locations: Sequence[WellLocation], snapshots: dict[str, WellSnapshot]) -> folium.FeatureGroup:
    """One circle per well, coloured by status, with a popup of its latest readings."""
    layer = folium.FeatureGroup(name="wells")
    for location in locations:
        snapshot = snapshots.get(location.well_id, WellSnapshot(location.well_id, WellStatus.NO_DATA))
        colour = STATUS_COLOURS[snapshot.status]
        folium.CircleMarker(
            location=(location.latitude, location.longitude), radius=9, color=colour, weight=2, fill=True,
            fill_color=colour, fill_opacity=0.85, popup=folium.Popup(popup_html(location, snapshot), max_width=320),
            tooltip=html.escape(f"{location.well_id} · {snapshot.status.value}"),
        ).add_to(layer)
    return layer


def well_table(locations: Sequence[WellLocation], snapshots: dict[str, WellSnapshot]) -> pd.DataFrame:
    """The map as a table: readable without map tiles (offline) and by screen readers."""
    rows = [snapshots.get(w.well_id, WellSnapshot(w.well_id, WellStatus.NO_DATA)) for w in locations]
    return pd.DataFrame({
        "well": [w.well_id for w in locations],
        "status": [s.status.value for s in rows],
        "latitude": [round(w.latitude, 4) for w in locations],
        "longitude": [round(w.longitude, 4) for w in locations],
        "field": [w.field + (" (illustrative)" if w.illustrative else "") for w in locations],
        "latest reading": [when(s.last_event) for s in rows],
        "landed": [age(s.last_ingest) for s in rows],
    })


def popup_html(location: WellLocation, snapshot: WellSnapshot) -> str:
    """The popup of one well; every value is escaped (registry files are user input)."""
    lines = [
        f"<b>{html.escape(location.name)}</b> ({html.escape(location.well_id)})",
        f"status: <b>{html.escape(snapshot.status.value)}</b>",
        f"latest reading: {html.escape(when(snapshot.last_event))}",
        f"landed: {html.escape(age(snapshot.last_ingest))}",
        f"score: {number(snapshot.last_score, 3)} · pressure {number(snapshot.pressure_bar, 1, 'bar')} · "
        f"temperature {number(snapshot.temperature_c, 1, '°C')}",
        f"anomalous rows: {number(snapshot.anomalies)} of {number(snapshot.observations)}",
    ]
    if location.field:
        lines.insert(1, html.escape(location.field) + (" (illustrative position)" if location.illustrative else ""))
    return "<br>".join(lines)
