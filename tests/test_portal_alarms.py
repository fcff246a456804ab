"""The Alarms page and the Overview's alarm headline, in Streamlit's AppTest over a real local home."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from control_center import widgets
from engine import insights
from engine.alarm_acks import Action
from engine.alarm_board import alarm_board
from engine.schema import ANOMALY_EVENT_VERSIONS_TABLE
from tests.portal_homes import APP, event_version, event_versions, open_home, open_page
from tests.test_portal_pages import clean, metrics, texts

START = datetime(2024, 5, 1, 6, tzinfo=UTC)
#: The alarm tables' times reach Streamlit in a form pyarrow converts without pandas 3.1's deprecation.
pytestmark = pytest.mark.filterwarnings("error::pandas.errors.Pandas4Warning")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three alarms: WELL-A active (two versions landed), WELL-B active, WELL-C cleared with a diagnosis."""
    monkeypatch.setenv("PETROSTREAM_BACKEND", "local")
    monkeypatch.setenv("PETROSTREAM_HOME", str(tmp_path))
    backend = open_home(tmp_path)
    backend.lake.write(ANOMALY_EVENT_VERSIONS_TABLE, "s@1", event_versions(
        event_version("WELL-A", START, timedelta(minutes=1), state="active"),
        event_version("WELL-C", START - timedelta(hours=3), timedelta(minutes=5), state="active")))
    backend.lake.write(ANOMALY_EVENT_VERSIONS_TABLE, "s@2", event_versions(
        event_version("WELL-A", START, timedelta(minutes=40), state="active", peak_score=0.93, revision=1),
        event_version("WELL-B", START + timedelta(minutes=30), timedelta(seconds=45), state="active"),
        event_version("WELL-C", START - timedelta(hours=3), timedelta(minutes=20), state="cleared", revision=1,
                      likely_class=3, top_sensors="P-PDG,T-TPT", label=3)))
    return tmp_path


def board(at: object) -> object:
    (frame,) = [d.value for d in at.dataframe]  # type: ignore[attr-defined]
    return frame


def test_the_board_lists_active_alarms_first_with_their_window_in_history(home: Path) -> None:
    at = clean(open_page("alarms"))
    shown = board(at)
    assert list(shown["well_id"]) == ["WELL-B", "WELL-A"]  # active ones, newest first
    assert list(shown["status"]) == ["active", "active"]
    assert list(shown["duration"]) == ["45 s", "40 min"] and shown["peak_score"].iloc[1] == pytest.approx(0.93)
    event_a = f"WELL-A@{int(START.timestamp() * 1000)}"
    assert shown["history"].iloc[1] == (  # ten minutes either side of its active rows
        f"history?well=WELL-A&from=2024-05-01T05%3A50%3A00Z&to=2024-05-01T06%3A50%3A00Z&alarm=WELL-A%40"
        f"{event_a.split('@')[1]}")
    at.segmented_control(key="alarm-filter").set_value("Cleared").run()
    cleared = board(clean(at))
    assert list(cleared["well_id"]) == ["WELL-C"]
    assert (cleared["likely_cause"].iloc[0], cleared["top_sensors"].iloc[0]) == ("3 · severe slugging", "P-PDG,T-TPT")


def test_an_operator_acknowledges_and_shelves_with_the_buttons_blocked_until_the_input_is_valid(home: Path) -> None:
    at = clean(open_page("alarms"))
    event_b = at.selectbox(key="alarm-pick").value
    assert event_b.startswith("WELL-B@")
    assert at.button(key="alarm-acknowledge").disabled and "operator: required" in texts(at)
    at.text_input(key="alarm-operator").input("Ana Souza")
    at.text_area(key="alarm-comment").input("called the platform")
    at.run()
    assert not at.button(key="alarm-acknowledge").disabled
    assert at.button(key="alarm-shelve").disabled is False and at.button(key="alarm-unshelve").disabled
    at.button(key="alarm-acknowledge").click().run()
    assert f"Alarm {event_b} acknowledged by Ana Souza." in texts(clean(at))
    ack = open_home(home).alarm_acks.handling(event_b).acknowledgement
    assert ack is not None and (ack.by, ack.comment) == ("Ana Souza", "called the platform")

    reloaded = clean(open_page("alarms"))  # a new session: what is stored, not what the page remembers
    shown = board(reloaded)
    assert shown.set_index("well_id").loc["WELL-B", ["status", "acknowledged_by"]].tolist() == [
        "acknowledged", "Ana Souza"]
    reloaded.selectbox(key="alarm-pick").set_value(event_b)
    reloaded.text_input(key="alarm-operator").input("Bruno").run()
    assert reloaded.button(key="alarm-acknowledge").disabled
    assert "already acknowledged by Ana Souza" in texts(reloaded)

    event_a = f"WELL-A@{int(START.timestamp() * 1000)}"
    reloaded.selectbox(key="alarm-pick").set_value(event_a).run()
    assert reloaded.button(key="alarm-shelve").disabled and "say why in the comment" in texts(reloaded)
    reloaded.text_area(key="alarm-comment").input("choke maintenance until noon")
    reloaded.selectbox(key="alarm-shelve-for").set_value("4 h").run()
    reloaded.button(key="alarm-shelve").click().run()
    assert "shelved for 4 h by Bruno" in texts(clean(reloaded))
    statuses = alarm_board(open_home(home).sql, open_home(home).alarm_acks, datetime.now(UTC))
    assert dict(zip(statuses["well_id"], statuses["status"], strict=True)) == {
        "WELL-A": "shelved", "WELL-B": "acknowledged", "WELL-C": "cleared"}
    log = open_home(home).alarm_acks.handling(event_a).log
    assert [(a.action, a.by) for a in log] == [(Action.SHELVE, "Bruno")]


def test_overview_headline_counts_alarms_and_who_still_needs_to_act(home: Path) -> None:
    shown = metrics(clean(open_page("overview")))
    assert (shown["Active alarms"], shown["Unacknowledged"], shown["Alarms (last 24 h)"]) == ("2", "2", "3")
    event_b = f"WELL-B@{int((START + timedelta(minutes=30)).timestamp() * 1000)}"
    open_home(home).alarm_acks.acknowledge(event_b, "Ana")
    shown = metrics(clean(open_page("overview")))
    assert (shown["Active alarms"], shown["Unacknowledged"]) == ("2", "1")


def test_a_link_with_an_alarm_id_opens_the_page_on_that_alarm(home: Path) -> None:
    event_c = f"WELL-C@{int((START - timedelta(hours=3)).timestamp() * 1000)}"
    at = AppTest.from_file(str(APP), default_timeout=60)  # a fresh session opened from the link
    at.query_params["alarm"] = event_c
    at.run()
    at.switch_page("../pages/alarms.py")
    at.run()
    assert clean(at).selectbox(key="alarm-pick").value == event_c
    assert at.button(key="alarm-shelve").disabled and "only an active alarm can be shelved" in texts(at)


def test_overview_lists_the_alarms_needing_action_first_with_links_to_history(home: Path) -> None:
    open_home(home).alarm_acks.acknowledge(f"WELL-B@{int((START + timedelta(minutes=30)).timestamp() * 1000)}", "Ana")
    at = clean(open_page("overview"))
    (top,) = [d.value for d in at.dataframe if "history" in d.value.columns]
    assert list(zip(top["status"], top["well_id"], strict=True)) == [
        ("active", "WELL-A"), ("acknowledged", "WELL-B"), ("cleared", "WELL-C")]
    assert top["history"].str.startswith("history?well=WELL-").all()
    assert list(top["duration"]) == ["40 min", "45 s", "20 min"]


def test_the_live_pages_alarm_table_reaches_arrow_without_a_deprecation_and_keeps_its_times(home: Path) -> None:
    alarms = insights.alarms(open_home(home).sql)
    assert isinstance(alarms["start_time"].dtype, pd.DatetimeTZDtype)  # as the lake's SQL returns it
    table = pa.Table.from_pandas(widgets.alarm_table(alarms))  # what st.dataframe does (warnings are errors here)
    zoned = alarms["start_time"].dtype
    assert table.schema.field("start_time").type == pa.timestamp(zoned.unit, tz=str(zoned.tz))  # the same type
    assert table["start_time"].to_pylist() == list(alarms["start_time"])
