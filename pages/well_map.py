"""Well map: every well where the registry places it, coloured by its live status."""

from __future__ import annotations

import streamlit as st
from streamlit_folium import st_folium

from control_center import ui, well_map
from engine import insights
from engine.errors import InputError
from engine.well_registry import forget_registry, load_registry, parse_registry, save_registry

backend = ui.backend()
refresh = ui.refresh_seconds(10, backend)
home = backend.settings.home
st.title("Well map")

registry = None
with ui.shielded("Reading the well registry"):
    registry = load_registry(home)
    if registry.illustrative:
        st.info("Positions are **illustrative demo coordinates** offshore Brazil (Campos and Santos basins), not "
                "real well locations. Upload your own registry below to place your wells.", icon=":material/map:")
    else:
        st.caption(f"Well positions from {registry.source}.")


@st.fragment(run_every=refresh)
def live_map() -> None:
    """Only the marker layer changes between refreshes (and only when a marker does); the map itself is
    not redrawn, and a popup the operator has open stays open."""
    if registry is None:
        return
    now = ui.now()
    with ui.shielded("Reading the wells' status"):
        view = insights.live_view(backend, now)
        snapshots = {s.well_id: s for s in view.wells.snapshots}
        located, unplaced = registry.locate(sorted(snapshots))
        if not located:
            ui.empty_state("No wells to show yet: the lake has no data and the registry lists no wells.",
                           "Start the demo pipeline on the Overview page, or upload a well registry below.")
            return
        missing = well_map.missing_assets()
        if missing or not st.get_option("server.enableStaticServing"):
            st.warning("The map cannot draw here: "
                       + (f"its files are missing ({', '.join(missing)})" if missing else
                          "the portal does not serve its static files (set `server.enableStaticServing = true`)")
                       + ". The wells are listed below instead.")
        else:
            base = st.get_option("server.baseUrlPath") or ""
            colours = ui.well_colours(list(snapshots))
            st_folium(well_map.base_map(located, base), key="well-map", height=520, use_container_width=True,
                      feature_group_to_add=well_map.markers(located, snapshots, colours, view.threshold, now,
                                                                     base),
                      returned_objects=[])
            st.caption("A marker's fill is the well's status, its rim the well's own colour (as on the tiles and "
                       "charts). Offline base map (coast and basin outlines, approximate); street tiles appear on "
                       "top when this browser can reach OpenStreetMap. Click a well for its readings and History.")
        ui.status_summary(view.wells.snapshots)
        st.dataframe(well_map.well_table(located, snapshots), hide_index=True, key="map-wells")
        if unplaced:
            st.warning(f"Not in the registry, so not on the map: {', '.join(map(ui.plain, unplaced))}")
        st.caption(f"Refreshes every {refresh} s · {ui.when(now)}")


live_map()

with st.expander("Use your own well registry"):
    st.markdown("A **CSV** with columns `well_id`, `latitude`, `longitude` (optional `name`, `field`), or a "
                "**GeoJSON** FeatureCollection of Points with a `well_id` property. It is validated, then kept "
                "under the backend's home.")
    upload = st.file_uploader("Registry file", type=["csv", "geojson", "json"], key="registry-upload")
    if upload is not None:
        problem = None
        try:
            wells_in_file = len(parse_registry(upload.name, upload.getvalue()))
        except InputError as exc:
            problem = ui.without_internal_paths(str(exc))
        if st.button("Use this registry", key="registry-save", disabled=problem is not None):
            with ui.shielded("Reading the registry"):
                save_registry(home, upload.name, upload.getvalue())
                st.rerun()
        st.caption(f":orange[Cannot use this file: {ui.plain(problem)}]" if problem else
                   f"{wells_in_file} well(s) in {ui.plain(upload.name)}.")
    if registry is not None and registry.uploaded and st.button("Forget the uploaded registry",
                                                                key="registry-forget"):
        forget_registry(home)
        st.rerun()
