"""The well map: a Leaflet map that draws without internet, and a marker layer replaced on every refresh.

Offline first: Leaflet's script and style come from the portal itself (``control_center/static``,
served by Streamlit's static file serving), never from a CDN, and the base map is a small,
hand-drawn vector layer (the south-east Brazilian coast and the Campos and Santos basins) in
``static/basemap.geojson``. Online map tiles are added on top and dropped by the browser at their
first failed tile, so an air-gapped control room sees the vector base map instead of grey.

streamlit-folium keeps a map mounted as long as its base script is unchanged and only swaps
a ``feature_group_to_add`` layer, so live refreshes recolour markers without redrawing the
map (the user's zoom and pan stay where they were). It swaps the layer only when the layer's
script differs from the last one it drew, so the script is a function of what it shows (no
random element ids): a refresh with nothing new leaves the markers, and an open popup, alone.
Swapping the layer closes its open popup; the new layer opens it again (:class:`_KeepPopupOpen`).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

import folium
import pandas as pd
from branca.element import Element, MacroElement
from jinja2 import Template

from control_center.time_range import history_params, quick_range, through
from control_center.ui import STATUS_COLOURS, age, number, when
from engine.insights import WellSnapshot, WellStatus, explain
from engine.well_registry import WellLocation

#: Where the map opens when no well can be placed: offshore south-east Brazil.
DEFAULT_CENTRE = (-23.5, -41.5)
STATIC = Path(__file__).resolve().parent / "static"
#: Files the map needs from the portal's static folder (served at ``<base>/app/static/``).
LEAFLET_FILES = ("leaflet/leaflet.js", "leaflet/leaflet.css")
BASEMAP = STATIC / "basemap.geojson"
ONLINE_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
ONLINE_ATTRIBUTION = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
_SEA = "#d4e6f1"


def static_url(base_path: str, name: str) -> str:
    """The URL path of a file of ``control_center/static`` under the portal's ``server.baseUrlPath``."""
    prefix = "/" + base_path.strip("/") if base_path.strip("/") else ""
    return f"{prefix}/app/static/{name}"


def missing_assets() -> list[str]:
    """Static files the map needs that are not where the portal serves them from (empty when all are)."""
    return [name for name in (*LEAFLET_FILES, BASEMAP.name) if not (STATIC / name).is_file()]


class _OnlineTiles(MacroElement):
    """OpenStreetMap tiles, removed at the first tile that fails to load (no network, or blocked)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function (map) {
            var tiles = L.tileLayer({{ this.url|tojson }}, {attribution: {{ this.attribution|tojson }}, maxZoom: 18});
            tiles.on("tileerror", function () { if (map.hasLayer(tiles)) { map.removeLayer(tiles); } });
            tiles.addTo(map);
        })({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, url: str, attribution: str) -> None:
        super().__init__()
        self._name = "OnlineTiles"
        self.url, self.attribution = url, attribution


class _HtmlParser(MacroElement):
    """The one jQuery call folium's popups make, ``$(html)[0]``, without shipping jQuery."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        window.$ = window.$ || function (markup) {
            var template = document.createElement("template");
            template.innerHTML = markup.trim();
            return [template.content.firstChild];
        };
        {% endmacro %}
    """)


def base_map(locations: Sequence[WellLocation], base_path: str = "") -> folium.Map:
    """The map without markers: local Leaflet, the vector base map, online tiles when they load."""
    if locations:
        centre = (sum(w.latitude for w in locations) / len(locations),
                  sum(w.longitude for w in locations) / len(locations))
    else:
        centre = DEFAULT_CENTRE
    figure = folium.Map(location=centre, zoom_start=6, tiles=None, control_scale=True)
    figure.default_js = [("leaflet", static_url(base_path, LEAFLET_FILES[0]))]
    figure.default_css = [("leaflet_css", static_url(base_path, LEAFLET_FILES[1]))]
    figure.get_root().header.add_child(Element(f"<style>.leaflet-container {{ background: {_SEA}; }}</style>"))
    folium.GeoJson(
        json.loads(BASEMAP.read_text()), name="base map", interactive=False,
        style_function=lambda feature: {
            "color": "#8d8d8d" if feature["properties"]["kind"] == "land" else "#1565c0",
            "weight": 1, "fillColor": "#f2efe9" if feature["properties"]["kind"] == "land" else "#1565c0",
            "fillOpacity": 1.0 if feature["properties"]["kind"] == "land" else 0.06,
            "dashArray": None if feature["properties"]["kind"] == "land" else "4 4"},
    ).add_to(figure)
    _HtmlParser().add_to(figure)
    _OnlineTiles(ONLINE_TILES, ONLINE_ATTRIBUTION).add_to(figure)
    return figure


class _KeepPopupOpen(MacroElement):
    """Opens, on a new marker layer, the popup of the well whose popup the layer it replaces had open.

    Removing a layer closes its open popup (streamlit-folium issue 257), so an operator reading a
    popup lost it at the next refresh that changed a marker. The map remembers the well of the open
    popup (the popup's ``wellId`` option): a popup the operator closed (its marker still on the map)
    is forgotten, one closed by its layer's removal is not, and the next layer added opens that
    well's popup with its new content (panning the map, as a first opening does, only if the new
    content no longer fits). The old popup goes and the new one comes without Leaflet's fades, so
    the operator sees the content change in place rather than the popup blink.

    It also empties streamlit-folium's list of drawn layers (``window.feature_group``), which it
    only ever appends to: the layers it holds were removed from the map before this script runs,
    and a page left open in a control room would otherwise keep every replaced layer in memory.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        window.feature_group = [];
        (function (layer) {
            layer.once("add", function () {
                var map = layer._map, open = map.petrostreamOpenWell;
                if (!open) {
                    open = map.petrostreamOpenWell = {well: null};
                    map.on("popupopen", function (e) { open.well = e.popup.options.wellId || null; });
                    map.on("popupclose", function (e) {
                        if (!e.popup._source || map.hasLayer(e.popup._source)) {
                            open.well = null;
                        } else {
                            L.DomUtil.remove(e.popup.getElement());  // now, not after a fade-out
                        }
                    });
                }
                var well = open.well;
                open.well = null;
                layer.eachLayer(function (marker) {
                    var popup = marker.getPopup();
                    if (well !== null && popup && popup.options.wellId === well) {
                        var fade = map._fadeAnimated;
                        map._fadeAnimated = false;  // in place of the old one, not faded in
                        marker.openPopup();
                        map._fadeAnimated = fade;
                    }
                });
            });
        })({{ this._parent.get_name() }});
        {% endmacro %}
    """)


def markers(locations: Sequence[WellLocation], snapshots: Mapping[str, WellSnapshot], colours: Mapping[str, str],
            threshold: float | None, now: datetime, base_path: str = "") -> folium.FeatureGroup:
    """One circle per well: filled with its status colour, rimmed with the well's own colour.

    Ages in the popups are counted to ``now`` (the refresh's time), so the layer is the same for
    the same data and moment, and streamlit-folium leaves an unchanged layer on the map.
    """
    layer = folium.FeatureGroup(name="wells")
    for index, location in enumerate(locations):
        snapshot = snapshots.get(location.well_id, WellSnapshot(location.well_id, WellStatus.NO_DATA))
        content = folium.Html(popup_html(location, snapshot, threshold, now, base_path), script=True)
        content._id = f"well{index}"  # folium names it by a random id, which would change the layer every time
        folium.CircleMarker(
            location=(location.latitude, location.longitude), radius=9, weight=3,
            color=colours.get(location.well_id, "#424242"), fill=True, fill_color=STATUS_COLOURS[snapshot.status],
            fill_opacity=0.9,
            popup=folium.Popup(content, max_width=340, well_id=location.well_id),
            tooltip=_inert(html.escape(f"{location.well_id} · {snapshot.status.value}")),
        ).add_to(layer)
    _KeepPopupOpen().add_to(layer)
    return layer


def _inert(markup: str) -> str:
    """HTML that stays text inside the JavaScript template literal folium wraps popups and tooltips in.

    ``html.escape`` leaves `` ` ``, ``$`` and ``\\`` alone, and in a template literal they end the
    string, start a ``${...}`` expression or an escape: a registry's well named ``${...}`` would
    run script in the map, or break its marker layer. As character references they are plain text.
    """
    return markup.replace("\\", "&#92;").replace("`", "&#96;").replace("$", "&#36;")


def well_table(locations: Sequence[WellLocation], snapshots: Mapping[str, WellSnapshot]) -> pd.DataFrame:
    """The map as a table: readable when the map cannot draw, and by screen readers."""
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


def popup_html(location: WellLocation, snapshot: WellSnapshot, threshold: float | None, now: datetime,
               base_path: str = "") -> str:
    """The popup of one well at ``now``, with a link to its History; every value is escaped (registry files
    are user input), for HTML and for the script that carries it (:func:`_inert`)."""
    lines = [
        f"<b>{html.escape(location.name)}</b> ({html.escape(location.well_id)})",
        f"status: <b>{html.escape(snapshot.status.value)}</b>: {html.escape(explain(snapshot, threshold))}",
        f"latest reading: {html.escape(when(snapshot.last_event))}",
        f"landed: {html.escape(age(snapshot.last_ingest, now))}",
        f"score: {number(snapshot.last_score, 3)} · pressure {number(snapshot.pressure_bar, 1, 'bar')} · "
        f"temperature {number(snapshot.temperature_c, 1, '°C')}",
        f"anomalous rows: {number(snapshot.anomalies)} of {number(snapshot.observations)}",
    ]
    if location.field:
        lines.insert(1, html.escape(location.field) + (" (illustrative position)" if location.illustrative else ""))
    if snapshot.last_event is not None:
        prefix = "/" + base_path.strip("/") if base_path.strip("/") else ""
        query = urlencode(history_params(location.well_id, quick_range("1 h", through(snapshot.last_event))))
        href = html.escape(f"{prefix}/history?{query}")  # a new tab: the map's frame may not navigate the page
        lines.append(f'<a href="{href}" target="_blank" rel="noopener">History of the last hour ↗</a>')
    return _inert("<br>".join(lines))
