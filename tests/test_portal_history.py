"""History as operators use it: links from tiles and alarms, the time picker, every sensor, live mode.

A small lake with known rows and one alarm event, so the window, band and links can be checked exactly.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from engine.backend import Backend
from engine.schema import ANOMALY_EVENT_VERSIONS_TABLE, WELL_DATA_TABLE
from tests.portal_homes import APP, event_version, event_versions, observations, open_home

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

START = datetime(2024, 5, 1, tzinfo=UTC)
ALARM_START, ALARM_END = START + timedelta(minutes=100), START + timedelta(minutes=110)
ALARM_ID = f"WELL-A@{int(ALARM_START.timestamp() * 1000)}"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """WELL-A: 3 h at 1 Hz with P-PDG too, flagged 100–110 min in (one closed alarm); WELL-B: 1 h, calm."""
    monkeypatch.setenv("PETROSTREAM_BACKEND", "local")
    monkeypatch.setenv("PETROSTREAM_HOME", str(tmp_path))
    backend = open_home(tmp_path)
    now = datetime.now(UTC)
    rows = observations("WELL-A", START, 3 * 3600, ingest=now, pressure_pa=1e7, temperature=80.0,
                        flagged=range(6000, 6600))
    rows = rows.set_column(rows.schema.get_field_index("p_pdg"), "p_pdg", pa.array([2e7] * rows.num_rows, pa.float32()))
    backend.lake.write(WELL_DATA_TABLE, "a", rows)
    backend.lake.write(WELL_DATA_TABLE, "b", observations("WELL-B", START, 3600, ingest=now, pressure_pa=1e7,
                                                          temperature=70.0))
    backend.lake.write(ANOMALY_EVENT_VERSIONS_TABLE, "events", event_versions(
        event_version("WELL-A", ALARM_START, ALARM_END - ALARM_START, state="cleared")))
    return backend


def history_page(**params: str) -> AppTest:
    """History opened from a URL carrying ``params`` (a tile, the map, a shared link)."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.switch_page("../pages/history.py")
    at.query_params.update(params)
    return at.run()


def figure(at: AppTest) -> dict:
    assert not at.exception, [e.message for e in at.exception]
    (chart,) = at.get("plotly_chart")
    return json.loads(chart.proto.spec)


def test_an_alarm_link_opens_its_well_around_the_alarm_with_the_window_shaded(home: Backend) -> None:
    at = history_page(well="WELL-A", alarm=ALARM_ID)
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="history-well").value == "WELL-A"
    assert at.segmented_control(key="history-range").value == "around this alarm"
    shapes = figure(at)["layout"]["shapes"]
    bands = {(s["x0"][:19], s["x1"][:19]) for s in shapes if s["type"] == "rect"}
    assert bands == {("2024-05-01T01:40:00", "2024-05-01T01:50:00")}  # one band (across the panels), no markers
    # the window: the alarm with half its duration (at least 5 min) either side, written back into the URL
    assert (at.query_params["from"], at.query_params["to"]) == ("2024-05-01T01:35:00Z", "2024-05-01T01:55:00Z")
    assert at.query_params["alarm"] == ALARM_ID


def test_a_link_with_a_window_opens_exactly_that_window(home: Backend) -> None:
    at = history_page(well="WELL-A", **{"from": "2024-05-01T00:10:00Z", "to": "2024-05-01T00:40:00Z"})
    assert at.segmented_control(key="history-range").value == "custom"
    frame = figure(at)["data"][0]["x"]
    assert frame[0].startswith("2024-05-01T00:10:00") and frame[-1] < "2024-05-01T00:40:00"


@pytest.mark.parametrize(("params", "reason"), [
    ({"well": "WELL-A", "from": "yesterday", "to": "2024-05-01T00:40:00Z"}, "“from” is not an ISO 8601 time"),
    ({"well": "WELL-A", "from": "2024-05-01T01:00:00Z", "to": "2024-05-01T00:40:00Z"}, "must come after"),
    ({"well": "WELL-A", "live": "forever"}, "“live” must be one of 15min, 1h, 6h, 24h, 7d"),
])
def test_a_broken_link_says_why_and_shows_the_latest_data(home: Backend, params: dict[str, str], reason: str) -> None:
    at = history_page(**params)
    assert not at.exception
    assert any(reason in e.value for e in at.error)
    assert at.segmented_control(key="history-range").value == "1 h"  # the page still works
    assert len(at.get("plotly_chart")) == 1


def test_a_quick_range_ends_at_the_chosen_to(home: Backend) -> None:
    at = history_page(well="WELL-A")
    at.segmented_control(key="history-range").set_value("15 min").run()
    at.date_input(key="history-to-date").set_value(START.date()).run()
    at.time_input(key="history-to-time").set_value(time(1, 0)).run()
    assert (at.query_params["from"], at.query_params["to"]) == ("2024-05-01T00:45:00Z", "2024-05-01T01:00:00Z")
    buckets = figure(at)["data"][0]["x"]
    assert buckets[0].startswith("2024-05-01T00:45:00") and buckets[-1].startswith("2024-05-01T00:59:59")


def test_an_impossible_custom_range_blocks_the_chart_and_says_why(home: Backend) -> None:
    at = history_page(well="WELL-A", **{"from": "2024-05-01T00:10:00Z", "to": "2024-05-01T00:40:00Z"})
    at.time_input(key="history-from-time").set_value(time(0, 50)).run()
    assert any("“From” must come before “To”" in e.value for e in at.error)
    assert not at.get("plotly_chart")


def test_every_sensor_of_the_well_can_be_charted_with_its_tag_and_unit(home: Backend) -> None:
    at = history_page(well="WELL-A")
    sensors = at.multiselect(key="history-sensors")
    assert sensors.options == ["P-PDG · permanent downhole gauge pressure (bottom-hole) (bar)",
                               "P-TPT · temperature-pressure transducer pressure (bar)",
                               "T-TPT · temperature-pressure transducer temperature (°C)"]  # the tags with data
    assert sensors.value == ["p_tpt", "t_tpt"]
    assert any("`pressure` column is **P-TPT**" in c.value for c in at.caption)
    sensors.set_value(["p_tpt", "p_pdg"]).run()
    spec = figure(at)
    assert [a["text"] for a in spec["layout"]["annotations"]][:3] == [
        "P-TPT · temperature-pressure transducer pressure (bar)",
        "P-PDG · permanent downhole gauge pressure (bottom-hole) (bar)", "Anomaly score (max per bucket)"]
    assert [t["name"] for t in spec["data"] if t.get("name", "").endswith("(bar)")] == ["P-TPT (bar)", "P-PDG (bar)"]


def test_live_mode_follows_the_newest_reading(home: Backend) -> None:
    at = history_page(well="WELL-B")
    at.toggle(key="history-live").set_value(True).run()
    assert any(c.value.startswith("Live:") for c in at.caption)
    assert at.query_params["to"] == "2024-05-01T01:00:00Z"  # newest reading 00:59:59, included
    assert at.query_params["live"] == "1h"  # the URL reopens the live view
    shared = history_page(**at.query_params)
    assert shared.toggle(key="history-live").value and shared.segmented_control(key="history-range").value == "1 h"
    assert not at.get("date_input")  # no "To" to pick while following the data
    at.segmented_control(key="history-range").set_value("custom").run()
    assert at.toggle(key="history-live").disabled


def test_leaving_live_mode_picks_up_at_the_wells_data_not_today(home: Backend) -> None:
    at = history_page(well="WELL-B")
    at.toggle(key="history-live").set_value(True).run()
    at.run()  # a run without the From/To inputs: Streamlit forgets their state
    at.toggle(key="history-live").set_value(False).run()
    at.segmented_control(key="history-range").set_value("custom").run()
    assert not at.error, [e.value for e in at.error]
    assert at.date_input(key="history-from-date").value == START.date()
    assert len(at.get("plotly_chart")) == 1


def test_a_link_to_an_unknown_alarm_says_so_and_shows_the_links_range(home: Backend) -> None:
    at = history_page(well="WELL-A", alarm="WELL-A@gone", **{"from": "2024-05-01T00:10:00Z",
                                                            "to": "2024-05-01T00:40:00Z"})
    assert any("not in the alarm log" in w.value for w in at.warning)
    assert at.segmented_control(key="history-range").value == "custom"
    assert not [s for s in figure(at)["layout"].get("shapes", []) if s["type"] == "rect"]  # no band to shade


def test_an_alarm_link_with_a_window_keeps_that_window_and_shades_the_alarm_in_it(home: Backend) -> None:
    """As the Overview's and Alarms page's links open it: the link's exact window reopens."""
    window = {"from": "2024-05-01T01:30:00Z", "to": "2024-05-01T02:00:00Z"}
    at = history_page(well="WELL-A", alarm=ALARM_ID, **window)
    assert at.segmented_control(key="history-range").value == "custom"
    assert {k: at.query_params[k] for k in window} == window
    bands = {(s["x0"][:19], s["x1"][:19]) for s in figure(at)["layout"]["shapes"] if s["type"] == "rect"}
    assert bands == {("2024-05-01T01:40:00", "2024-05-01T01:50:00")}
    at.segmented_control(key="history-range").set_value("around this alarm").run()
    assert (at.query_params["from"], at.query_params["to"]) == ("2024-05-01T01:35:00Z", "2024-05-01T01:55:00Z")
