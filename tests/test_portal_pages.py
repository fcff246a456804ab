"""Every portal page, on an empty home, on a home the real pipeline filled, and with no backend.

Read-only: the pages' actions are exercised in test_portal_model.py and test_portal_operations.py.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from control_center import well_map
from control_center.ui import STATUS_COLOURS, plain
from engine.backend import Backend
from engine.insights import EXECUTIVE_VIEWS, WellStatus
from engine.schema import ANOMALY_EVENT_VERSIONS_TABLE, WELL_DATA_TABLE
from engine.well_registry import WellLocation
from tests.portal_homes import PAGES, event_version, event_versions, observations, open_home, open_page, populate

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    return populate(tmp_path_factory.mktemp("filled"))


@pytest.fixture
def on_filled(filled: Backend, monkeypatch: pytest.MonkeyPatch) -> Backend:
    monkeypatch.setenv("PETROSTREAM_BACKEND", "local")
    monkeypatch.setenv("PETROSTREAM_HOME", str(filled.settings.home))
    return filled


@pytest.fixture
def on_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PETROSTREAM_BACKEND", "local")
    monkeypatch.setenv("PETROSTREAM_HOME", str(tmp_path))
    return tmp_path


def texts(at: AppTest) -> str:
    """Everything a user reads on the page, as one string."""
    parts = [e.value for kind in ("markdown", "caption", "info", "warning", "success", "error", "title", "subheader")
             for e in getattr(at, kind)]
    parts += [f"{m.label}={m.value}" for m in at.metric]
    return "\n".join(str(p) for p in parts)


def clean(at: AppTest) -> AppTest:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


# -- empty home -------------------------------------------------------------------------------
@pytest.mark.parametrize(("page", "expected"), [
    ("overview", ["No data in the lake yet", "No model is active"]),
    ("alarms", ["No alarm events so far", "Nothing to act on yet"]),
    ("live_anomalies", ["No well has reported yet"]),
    ("well_map", ["illustrative demo coordinates", "No wells to show yet"]),
    ("history", ["No data in the lake yet, so no history"]),
    ("model", ["No model has been published yet", "demo data set has not been generated",
               "Nothing to evaluate yet"]),
    ("replay", ["No replay has run yet"]),
    ("scaling", ["No consumer is running"]),
    ("power_bi", ["No Power BI report is configured", "No data in the lake yet"]),
])
def test_each_page_explains_an_empty_home(on_empty: Path, page: str, expected: list[str]) -> None:
    shown = texts(clean(open_page(page)))
    for text in expected:
        assert text in shown


@pytest.mark.parametrize("page", PAGES)
def test_an_unreachable_backend_is_a_message_not_a_traceback(page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PETROSTREAM_BACKEND", "mainframe")
    at = open_page(page)
    assert not at.exception
    assert any("The backend is unreachable" in e.value and "mainframe" in e.value for e in at.error)


# -- populated home -------------------------------------------------------------------------------
def test_overview_shows_the_lake_and_the_pipeline(on_filled: Backend) -> None:
    at = clean(open_page("overview"))
    shown = metrics(at)
    rows = on_filled.lake.row_count(WELL_DATA_TABLE)
    flagged = int(on_filled.sql.query("SELECT count(*) AS n FROM well_data WHERE anomaly_flag = 1")["n"][0])
    assert flagged > 0
    assert shown["Observations in the lake"] == f"{rows:,}"
    assert shown["Flagged rows (all time)"] == f"{flagged:,}"
    events = on_filled.sql.query("SELECT state, count(*) AS n FROM anomaly_events GROUP BY state")
    active = int(events.loc[events["state"] == "active", "n"].sum())
    assert active > 0 and shown["Active alarms"] == str(active) and shown["Unacknowledged"] == str(active)
    assert shown["Alarms (last 24 h)"] == str(int(events["n"].sum()))  # the demo spans hours
    assert shown["Active wells"] == "3 of 3"
    assert shown["Producer"] == "finished"
    assert shown["Model version"] == on_filled.models.active_version()
    assert shown["Consumers running"] == "0" and shown["Stream lag"] == "0 records"
    assert [b.label for b in at.button] == ["Start demo pipeline", "Stop pipeline", "Erase and restart the demo"]


def test_live_anomalies_shows_tiles_timelines_and_alarms(on_filled: Backend) -> None:
    at = clean(open_page("live_anomalies"))
    assert "Refreshes every 5 s" in texts(at)
    tiles = [m.value for m in at.markdown if "■" in m.value]
    assert [tile.split("**")[1] for tile in tiles] == [plain(f"WELL-0000{n}") for n in (1, 2, 3)]
    assert all("-badge[" in tile for tile in tiles)
    assert len({tile.split('color:')[1][:7] for tile in tiles}) == 3  # a colour of its own per well
    assert len(at.get("plotly_chart")) == 1
    assert "Alarms" in [s.value for s in at.subheader]


def test_well_map_places_every_well_with_its_status(on_filled: Backend) -> None:
    at = clean(open_page("well_map"))
    shown = texts(at)
    assert "illustrative demo coordinates" in shown
    table = at.dataframe[0].value
    assert sorted(table["well"]) == ["WELL-00001", "WELL-00002", "WELL-00003"]
    assert set(table["status"]) <= {"normal", "anomaly", "stale"}
    assert table["field"].str.contains("basin").all()
    counts = next(m.value for m in at.markdown if "normal" in m.value and "no data" in m.value)
    assert sum(int(part.split("**")[1]) for part in counts.split(" · ")) == 3


def test_history_charts_a_well_and_offers_its_csv(on_filled: Backend) -> None:
    at = clean(open_page("history"))
    assert at.selectbox(key="history-well").options == ["WELL-00001", "WELL-00002", "WELL-00003"]
    assert at.segmented_control(key="history-range").value == "1 h"
    assert "points, one per 5 s" in texts(at)  # an hour in at most 2,000 points
    (chart,) = at.get("plotly_chart")
    figure = json.loads(chart.proto.spec)
    assert [a["text"] for a in figure["layout"]["annotations"]][:3] == [
        "P-TPT · temperature-pressure transducer pressure (bar)",
        "T-TPT · temperature-pressure transducer temperature (°C)", "Anomaly score (max per bucket)"]
    assert len(at.get("download_button")) == 1
    newest = on_filled.sql.query("SELECT max(event_time) AS t FROM well_data WHERE well_id = 'WELL-00002'")["t"][0]
    at.selectbox(key="history-well").set_value("WELL-00002").run()
    assert clean(at).query_params["well"] == "WELL-00002"
    to = (pd.Timestamp(newest) + pd.Timedelta(seconds=1)).ceil("min")  # "To" in whole minutes, newest included
    assert at.query_params["to"] == f"{to:%Y-%m-%dT%H:%M:%SZ}"
    assert at.query_params["from"] == f"{to - pd.Timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ}"


def test_model_page_lists_the_active_version(on_filled: Backend) -> None:
    at = clean(open_page("model"))
    active = on_filled.models.active_version()
    assert list(at.dataframe[0].value["version"]) == [active]
    assert f"**Active: `{active}`**" in texts(at)
    threshold = next(v.threshold for v in on_filled.models.versions())
    assert metrics(at)["Threshold"] == f"{threshold:,.4f}"
    assert [b.label for b in at.button if b.label in ("Activate", "Roll back", "Train")] == [
        "Activate", "Roll back", "Train"]


def test_replay_page_shows_the_finished_replay(on_filled: Backend) -> None:
    at = clean(open_page("replay"))
    shown = metrics(at)
    rows = on_filled.lake.row_count(WELL_DATA_TABLE)
    assert shown["Replay"] == "finished" and shown["Rows sent"] == f"{rows:,}"
    assert at.multiselect(key="replay-wells").value == ["WELL-00001", "WELL-00002", "WELL-00003"]


def test_scaling_page_shows_consumers_and_lag_per_shard(on_filled: Backend) -> None:
    at = clean(open_page("scaling"))
    assert metrics(at)["Desired"] == "0" and metrics(at)["Running"] == "0"
    shards = next(d.value for d in at.dataframe if "shard" in d.value.columns)
    assert len(shards) == 4 and set(shards["lag"]) == {"0 records"}


def test_power_bi_page_shows_the_executive_views(on_filled: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    report = "https://app.powerbi.com/reports/petrostream"
    monkeypatch.setenv("PETROSTREAM_POWERBI_URL", report)
    at = clean(open_page("power_bi"))
    views = [d.value for d in at.dataframe if "well_id" in d.value.columns]
    assert len(views) == len(EXECUTIVE_VIEWS)
    assert views[0]["observations"].sum() == on_filled.lake.row_count(WELL_DATA_TABLE)
    labels = [b.label for b in at.get("download_button")]
    assert labels.count("Export CSV") == 2 and labels.count("Export Parquet") == 2
    assert "Download connection file (.dsn)" in labels
    assert [b.proto.url for b in at.get("link_button")] == [report]


# -- the map recolours without redrawing --------------------------------------------------------
def test_a_refresh_recolours_markers_but_keeps_the_mounted_map(on_empty: Path) -> None:
    """streamlit-folium remounts (redraws) a map only when its component key changes; the markers
    travel separately as ``feature_group``, which the mounted map swaps in place."""
    backend = open_home(on_empty)
    start, now = datetime(2024, 5, 1, tzinfo=UTC), datetime.now(UTC)
    backend.lake.write(WELL_DATA_TABLE, "calm", observations("WELL-A", start, 300, ingest=now, pressure_pa=1e7,
                                                             temperature=80.0))
    at = clean(open_page("well_map"))
    (before,) = [json.loads(c.proto.json_args) for c in at.get("component_instance")]
    assert STATUS_COLOURS[WellStatus.NORMAL] in before["feature_group"]

    backend.lake.write(WELL_DATA_TABLE, "alarm", observations(
        "WELL-A", start + timedelta(seconds=300), 60, ingest=now, pressure_pa=1e7, temperature=80.0,
        flagged=range(60)))
    at.run()  # the next refresh
    (after,) = [json.loads(c.proto.json_args) for c in clean(at).get("component_instance")]
    assert STATUS_COLOURS[WellStatus.ANOMALY] in after["feature_group"]
    assert STATUS_COLOURS[WellStatus.NORMAL] not in after["feature_group"]
    assert after["key"] == before["key"] and after["script"] == before["script"]


def test_a_refresh_with_nothing_new_sends_the_same_marker_layer(on_empty: Path) -> None:
    """streamlit-folium replaces the marker layer (closing an open popup) only when its script changed:
    the same data must give the same script, whatever random ids folium would give its elements."""
    backend = open_home(on_empty)
    landed = datetime.now(UTC) - timedelta(days=2)  # "2 days ago" reads the same on the next refresh
    backend.lake.write(WELL_DATA_TABLE, "quiet", observations("WELL-A", datetime(2024, 5, 1, tzinfo=UTC), 300,
                                                              ingest=landed, pressure_pa=1e7, temperature=80.0))
    at = clean(open_page("well_map"))
    (before,) = [json.loads(c.proto.json_args)["feature_group"] for c in at.get("component_instance")]
    (after,) = [json.loads(c.proto.json_args)["feature_group"] for c in clean(at.run()).get("component_instance")]
    assert '"wellId": "WELL-A"' in before and "landed: 2 days ago" in before
    assert after == before


def test_registry_text_cannot_run_script_in_the_map() -> None:
    """folium puts popups and tooltips in JavaScript template literals, where `${...}` is code."""
    hostile = WellLocation("W`${document.title}\\", -22.0, -40.0, "${alert(1)}`", "${x}", illustrative=False)
    figure = well_map.base_map([hostile])
    well_map.markers([hostile], {}, {}, None, datetime.now(UTC)).add_to(figure)
    rendered = figure.get_root().render()
    option = f'"wellId": {json.dumps(hostile.well_id)},'  # a JSON string: plain data in a script
    assert rendered.count(option) == 1
    literals = rendered.replace(option, "")  # the rest: popup and tooltip template literals, and markup
    assert "${" not in literals and "W`" not in literals
    assert "&#36;{alert(1)}&#96;" in rendered and "W&#96;&#36;{document.title}&#92;" in rendered


def test_live_page_lists_alarm_events_by_class_name(on_empty: Path) -> None:
    backend = open_home(on_empty)
    start, now = datetime(2024, 5, 1, tzinfo=UTC), datetime.now(UTC)
    backend.lake.write(WELL_DATA_TABLE, "rows", observations("WELL-A", start, 300, ingest=now, pressure_pa=1e7,
                                                             temperature=80.0, flagged=range(200, 300)))
    backend.lake.write(ANOMALY_EVENT_VERSIONS_TABLE, "events", event_versions(event_version(
        "WELL-A", start + timedelta(seconds=200), timedelta(seconds=99), state="cleared", label=102,
        likely_class=2, top_sensors="P-TPT,T-TPT")))
    at = clean(open_page("live_anomalies"))
    (alarms,) = [d.value for d in at.dataframe if "event_id" in d.value.columns]
    assert list(alarms["label"]) == ["102 · spurious closure of DHSV (transient)"]
    assert list(alarms["state"]) == ["cleared"]
    assert list(alarms["likely type"]) == ["2 · spurious closure of DHSV (0.80)"]
    assert list(alarms["top sensors"]) == ["P-TPT,T-TPT"]


# -- the map draws offline -------------------------------------------------------------------------
def test_the_map_loads_leaflet_from_the_portal_not_a_cdn(on_filled: Backend) -> None:
    at = clean(open_page("well_map"))
    (args,) = [json.loads(c.proto.json_args) for c in at.get("component_instance")]
    assert args["js_links"] == ["/app/static/leaflet/leaflet.js"]
    assert args["css_links"] == ["/app/static/leaflet/leaflet.css"]
    static = Path(__file__).resolve().parents[1] / "control_center" / "static"
    assert all((static / link.removeprefix("/app/static/")).is_file() for link in args["js_links"] + args["css_links"])
    assert "://" not in args["header"]  # nothing else fetched from elsewhere
    assert "Campos basin" in args["script"] and "Santos basin" in args["script"]  # the offline vector base map
    assert "tileerror" in args["script"]  # online tiles drop out at their first failure
    assert args["feature_group"].count("L.circleMarker(") == 3  # a marker per well
    assert "/history?well=WELL-00001" in args["feature_group"]  # each popup links to the well's History


def test_without_static_files_the_map_says_it_cannot_draw_and_lists_the_wells(on_filled: Backend) -> None:
    from streamlit import config

    config.set_option("server.enableStaticServing", False)
    try:
        at = open_page("well_map")
    finally:
        config.set_option("server.enableStaticServing", True)
    assert not at.exception and not at.get("component_instance")
    assert any("The map cannot draw here" in w.value for w in at.warning)
    assert sorted(at.dataframe[0].value["well"]) == ["WELL-00001", "WELL-00002", "WELL-00003"]


def test_overview_tiles_link_each_well_to_its_history(on_filled: Backend) -> None:
    at = clean(open_page("overview"))
    links = [link.proto for link in at.get("page_link") if link.proto.label == "History"]
    assert [parse_qs(link.query_string)["well"] for link in links] == [[f"WELL-0000{n}"] for n in (1, 2, 3)]
    assert all(link.page.endswith("history") or "history" in link.page for link in links)
    assert "of **3** well(s)" in texts(at)


# -- actions that cannot work are disabled, saying why ----------------------------------------------
def test_files_replayed_to_their_end_cannot_be_resumed_only_replayed_from_the_start(on_filled: Backend) -> None:
    at = clean(open_page("replay"))
    assert "Rate (rows/s)" not in metrics(at) and "Time left" not in metrics(at)  # not running: no stale rate
    resume, restart = at.button(key="replay-start"), at.button(key="replay-restart")
    assert (resume.label, resume.disabled, restart.disabled) == ("Resume replay", True, False)
    assert any("already replayed to their end" in c.value for c in at.caption)
    at.multiselect(key="replay-wells").set_value([]).run()
    assert at.button(key="replay-start").disabled and at.button(key="replay-restart").disabled
    assert any("Choose at least one file to replay." in c.value for c in at.caption)


def test_error_messages_show_no_internal_paths(on_filled: Backend) -> None:
    from control_center.ui import without_internal_paths

    upload = on_filled.settings.home / "uploads" / "WELL-1_20240101.csv"
    scratch = Path(tempfile.gettempdir()) / "petrostream-xyz" / "part-0.parquet"
    message = f"cannot read {upload}: bad header; see {scratch} (was /data/3W/x.csv)"
    assert without_internal_paths(message) == "cannot read WELL-1_20240101.csv: bad header; see part-0.parquet " \
                                               "(was /data/3W/x.csv)"


def test_overview_live_anomalies_and_the_map_agree_on_every_wells_status(on_filled: Backend) -> None:
    summaries = []
    for page in ("overview", "live_anomalies", "well_map"):
        at = clean(open_page(page))
        summaries.append(next(m.value for m in at.markdown if m.value.endswith("well(s)")))
    assert len(set(summaries)) == 1 and summaries[0].endswith("of **3** well(s)")


def test_an_invalid_registry_upload_disables_its_button_with_the_reason(on_empty: Path) -> None:
    at = clean(open_page("well_map"))
    at.file_uploader(key="registry-upload").set_value(("wells.csv", b"well_id,latitude\nW1,95\n", "text/csv")).run()
    assert at.button(key="registry-save").disabled
    assert any("Cannot use this file" in c.value for c in at.caption)
    at.file_uploader(key="registry-upload").set_value(
        ("wells.csv", b"well_id,latitude,longitude\nW1,-22.1,-40.0\n", "text/csv")).run()
    assert not at.button(key="registry-save").disabled
    assert any("1 well(s) in wells" in c.value for c in at.caption)
