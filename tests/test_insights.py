"""The portal's SQL: KPIs, live status, score timelines, alarms, history and executive views.

A small lake is written row by row with known values (through the lake port, as the consumer
writes it), so every number the portal would show can be checked exactly.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine import history, insights
from engine.backend import Backend
from engine.errors import InputError
from engine.insights import WellStatus
from engine.scan_window import BI_DAYS_ENV, WELL_DATA_DAYS_ENV, ScanWindow
from engine.schema import ANOMALY_EVENT_VERSIONS_TABLE, WELL_DATA_TABLE
from tests.portal_homes import VERSION, event_version, event_versions, observations, open_home

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
ALARM_START = datetime(2024, 3, 31, 23, 50, tzinfo=UTC)  # 20 minutes across midnight: two date partitions
CALM_START = datetime(2024, 4, 1, tzinfo=UTC)
OLD_START = datetime(2023, 12, 31, 23, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    """W-ALARM: flagged in its last minute; W-CALM: never flagged; W-OLD: flagged long ago, silent for 2 h."""
    backend = open_home(Path(tmp_path_factory.mktemp("insights")))
    backend.lake.write(WELL_DATA_TABLE, "alarm", observations(
        "W-ALARM", ALARM_START, 1200, ingest=NOW - timedelta(minutes=1), pressure_pa=1.5e7, temperature=90.0,
        flagged=range(1140, 1200), label_flagged=3))
    backend.lake.write(WELL_DATA_TABLE, "calm", observations(
        "W-CALM", CALM_START, 600, ingest=NOW - timedelta(seconds=30), pressure_pa=1.0e7, temperature=70.0))
    backend.lake.write(WELL_DATA_TABLE, "old", observations(
        "W-OLD", OLD_START, 300, ingest=NOW - timedelta(hours=2), pressure_pa=2.0e7, temperature=60.0,
        flagged=range(10)))
    return backend


def test_kpis_count_the_look_back_window_and_what_landed_recently(
        lake: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    kpis = insights.kpis(lake.sql, NOW)  # the newest partition and the day before: W-OLD's day is 92 days back
    assert (kpis.observations, kpis.anomalies, kpis.recent_anomalies) == (1800, 60, 60)
    assert (kpis.wells, kpis.active_wells, kpis.last_ingest) == (2, 2, NOW - timedelta(seconds=30))
    monkeypatch.setenv(WELL_DATA_DAYS_ENV, "366")  # a longer look-back reaches it
    kpis = insights.kpis(lake.sql, NOW)
    assert (kpis.observations, kpis.anomalies, kpis.recent_anomalies) == (2100, 70, 60)
    assert (kpis.wells, kpis.active_wells) == (3, 2)
    assert kpis.last_ingest == NOW - timedelta(seconds=30)
    monkeypatch.setenv(WELL_DATA_DAYS_ENV, "3650")
    with pytest.raises(InputError, match=WELL_DATA_DAYS_ENV):
        insights.kpis(lake.sql, NOW)


def test_kpis_of_an_empty_lake_are_zero(tmp_path: Path) -> None:
    kpis = insights.kpis(open_home(tmp_path).sql, NOW)
    assert (kpis.observations, kpis.anomalies, kpis.wells, kpis.last_ingest) == (0, 0, 0, None)


def test_live_status_per_well(lake: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WELL_DATA_DAYS_ENV, "366")  # W-OLD's last data is 92 days before the newest
    snapshots = {s.well_id: s for s in insights.live_wells(lake.sql, NOW, known_wells=("W-NEW", "W-CALM")).snapshots}
    assert {w: s.status for w, s in snapshots.items()} == {
        "W-ALARM": WellStatus.ANOMALY, "W-CALM": WellStatus.NORMAL, "W-OLD": WellStatus.STALE,
        "W-NEW": WellStatus.NO_DATA}
    alarm = snapshots["W-ALARM"]
    assert alarm.recent_flags == 60 and alarm.anomalies == 60 and alarm.observations == 1200
    assert alarm.last_event == ALARM_START + timedelta(seconds=1199)
    assert alarm.last_score == pytest.approx(0.8)
    assert alarm.pressure_bar == pytest.approx(150.0) and alarm.temperature_c == pytest.approx(90.0)
    assert snapshots["W-NEW"].observations == 0 and snapshots["W-NEW"].last_ingest is None
    assert alarm.recent_peak == pytest.approx(0.8) and snapshots["W-CALM"].recent_peak == pytest.approx(0.4)
    counts = insights.status_counts(list(snapshots.values()))
    assert counts == {WellStatus.NORMAL: 1, WellStatus.ANOMALY: 1, WellStatus.STALE: 1, WellStatus.NO_DATA: 1}


def test_a_well_in_alarm_with_its_score_back_under_the_threshold_says_why() -> None:
    well = insights.WellSnapshot("W", WellStatus.ANOMALY, recent_flags=12, recent_peak=0.71, last_score=0.41)
    reason = insights.explain(well, threshold=0.55)
    assert reason.startswith("12 flagged row(s) in the last 2 min of its data (peak score 0.710)")
    assert "latest score 0.410 is back under the threshold 0.550" in reason and "clears once 2 min pass" in reason
    assert "back under" not in insights.explain(replace(well, last_score=0.6), threshold=0.55)
    assert insights.explain(replace(well, status=WellStatus.STALE), 0.55).startswith("nothing landed for over 5 min")


def test_the_live_view_counts_the_registrys_wells_too(tmp_path: Path) -> None:
    backend = open_home(tmp_path)
    (tmp_path / "wells.csv").write_text("well_id,latitude,longitude\nW-REG,-22.0,-40.0\n")
    backend.lake.write(WELL_DATA_TABLE, "calm", observations(
        "W-CALM", CALM_START, 60, ingest=NOW - timedelta(seconds=30), pressure_pa=1.0e7, temperature=70.0))
    view = insights.live_view(backend, NOW)
    assert {(s.well_id, s.status) for s in view.wells.snapshots} == {
        ("W-CALM", WellStatus.NORMAL), ("W-REG", WellStatus.NO_DATA)}


def test_stale_beats_anomaly_and_no_data_beats_both() -> None:
    assert insights.classify(NOW - timedelta(minutes=6), 5, NOW) == WellStatus.STALE
    assert insights.classify(NOW - timedelta(minutes=4), 5, NOW) == WellStatus.ANOMALY
    assert insights.classify(NOW - timedelta(minutes=4), 0, NOW) == WellStatus.NORMAL
    assert insights.classify(None, 5, NOW) == WellStatus.NO_DATA


def test_recent_scores_cover_each_wells_last_minutes_in_10_second_buckets(lake: Backend) -> None:
    scores = insights.live_wells(lake.sql, NOW).scores
    alarm = scores[scores["well_id"] == "W-ALARM"]
    assert len(alarm) == 90  # 15 minutes of 10-second buckets before its latest reading
    assert alarm["bucket"].min() >= ALARM_START + timedelta(seconds=1199) - insights.LIVE_WINDOW
    assert list(alarm["flag"].tail(6)) == [1] * 6 and alarm["flag"].head(84).sum() == 0
    assert alarm["score"].max() == pytest.approx(0.8)
    assert len(scores[scores["well_id"] == "W-CALM"]) == 60  # it has only 10 minutes of data


def test_alarms_list_active_then_cleared_events_once_each(tmp_path: Path) -> None:
    backend = open_home(tmp_path)
    assert insights.alarms(backend.sql).empty
    start = datetime(2024, 4, 1, 1, tzinfo=UTC)
    backend.lake.write(ANOMALY_EVENT_VERSIONS_TABLE, "events", event_versions(
        event_version("W-1", start, timedelta(minutes=2), state="active", peak_score=0.6),
        event_version("W-1", start, timedelta(minutes=5), state="cleared", peak_score=0.9, revision=1),
        event_version("W-2", start + timedelta(hours=1), timedelta(minutes=2), state="active", peak_score=0.7)))
    alarms = insights.alarms(backend.sql)
    assert list(alarms["well_id"]) == ["W-2", "W-1"]
    assert list(alarms["state"]) == ["active", "cleared"]
    assert alarms["peak_score"].tolist() == pytest.approx([0.7, 0.9])


def test_an_alarm_window_is_its_newest_version_and_reaches_the_newest_data_while_active(tmp_path: Path) -> None:
    backend = open_home(tmp_path)
    start = datetime(2024, 4, 1, 1, tzinfo=UTC)
    later = start + timedelta(hours=1)
    backend.lake.write(ANOMALY_EVENT_VERSIONS_TABLE, "events", event_versions(
        event_version("W-1", start, timedelta(minutes=1), state="active"),
        event_version("W-1", start, timedelta(minutes=5), state="cleared", revision=1),
        event_version("W-2", later, timedelta(minutes=2), state="active")))
    cleared = history.find_alarm(backend.sql, f"W-1@{int(start.timestamp() * 1000)}")
    assert cleared is not None and (cleared.well_id, cleared.start, cleared.end) == (
        "W-1", start, start + timedelta(minutes=5))
    active = history.find_alarm(backend.sql, f"W-2@{int(later.timestamp() * 1000)}")
    assert active is not None and active.end is None
    newest = later + timedelta(minutes=3)
    assert active.span(newest) == (later, newest)  # an active alarm's band reaches the well's newest data
    assert history.find_alarm(backend.sql, "W-9@0") is None


def test_history_aggregates_in_sql_across_date_partitions(lake: Backend) -> None:
    start, end = ALARM_START - timedelta(minutes=50), ALARM_START + timedelta(minutes=70)  # two hours
    result = history.history(lake.sql, "W-ALARM", start, end)
    assert result.bucket_seconds == 5
    frame = result.frame
    assert len(frame) == 240 and frame["observations"].sum() == 1200  # both dates' partitions read
    assert frame["anomalies"].sum() == 60 and (frame["anomalies"] > 0).sum() == 12
    assert frame["p_tpt"].tolist() == pytest.approx([150.0] * 240)
    assert frame["t_tpt__max"].max() == pytest.approx(90.0)
    assert frame["bucket"].is_monotonic_increasing


def test_history_keeps_to_its_range_and_well(lake: Backend) -> None:
    narrow = history.history(lake.sql, "W-ALARM", CALM_START, CALM_START + timedelta(minutes=5))
    assert narrow.bucket_seconds == 1 and narrow.frame["observations"].sum() == 300
    hostile = history.history(lake.sql, "W-ALARM' OR '1'='1", ALARM_START, ALARM_START + timedelta(hours=1))
    assert hostile.frame.empty
    with pytest.raises(InputError, match="after its start"):
        history.history(lake.sql, "W-ALARM", CALM_START, CALM_START)


@pytest.mark.parametrize(("span", "bucket"), [
    (timedelta(minutes=10), 1), (timedelta(hours=6), 30), (timedelta(days=1), 60), (timedelta(days=30), 1_800),
    (timedelta(days=365), 21_600), (timedelta(days=3650), 86_400)])
def test_resolution_follows_the_range(span: timedelta, bucket: int) -> None:
    assert history.bucket_seconds_for(NOW - span, NOW) == bucket
    assert span.total_seconds() / bucket <= history.MAX_POINTS or bucket == history.BUCKET_SECONDS[-1]


def test_timestamps_must_carry_a_time_zone() -> None:
    with pytest.raises(InputError):
        insights.iso(datetime(2024, 1, 1))


def test_executive_views_aggregate_per_well_and_period(lake: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "2023-12" not in set(insights.executive_view(lake.sql, "well_data_monthly")["month"])  # 31 days back
    monkeypatch.setenv(BI_DAYS_ENV, "366")
    monthly = insights.executive_view(lake.sql, "well_data_monthly").set_index(["well_id", "month"])
    assert monthly.loc[("W-ALARM", "2024-03"), "observations"] == 600
    assert monthly.loc[("W-ALARM", "2024-04"), "anomalies"] == 60
    assert monthly.loc[("W-OLD", "2023-12"), "anomaly_rate"] == pytest.approx(10 / 300)
    assert monthly.loc[("W-CALM", "2024-04"), "avg_pressure_bar"] == pytest.approx(100.0)
    yearly = insights.executive_view(lake.sql, "well_data_yearly").set_index(["well_id", "year"])
    assert yearly.loc[("W-ALARM", "2024"), "observations"] == 1200
    assert yearly.loc[("W-ALARM", "2024"), "days_reporting"] == 2
    assert sorted(yearly.index.get_level_values("year")) == ["2023", "2024", "2024"]


def test_executive_view_statements_are_athena_views() -> None:
    ddl = insights.executive_view_ddl("well_data_monthly", ScanWindow("2024-03-02", "2024-04-01"))
    assert ddl.startswith("CREATE OR REPLACE VIEW well_data_monthly AS") and "GROUP BY well_id" in ddl
    assert """WHERE "date" >= '2024-03-02'""" in ddl  # a view takes no parameters: its bound is written in
    with pytest.raises(InputError, match="no executive view"):
        insights.executive_view_ddl("well_data; DROP TABLE well_data", ScanWindow("2024-03-02", "2024-04-01"))
    with pytest.raises(ValueError):
        insights.executive_view_ddl("well_data_monthly", ScanWindow("2024-03-02' OR 'x", "2024-04-01"))


def test_score_histogram_splits_rows_by_label(lake: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    assert insights.score_histogram(lake.sql, VERSION)["normal_rows"].sum() == 1740  # W-OLD is 92 days back
    monkeypatch.setenv(WELL_DATA_DAYS_ENV, "366")
    histogram = insights.score_histogram(lake.sql, VERSION)
    assert histogram["normal_rows"].sum() == 2040 and histogram["event_rows"].sum() == 60
    assert histogram.loc[histogram["bin"].round(2) == 0.8, "event_rows"].sum() == 60
    assert insights.score_histogram(lake.sql, "no-such-version").empty


def test_active_threshold_comes_from_the_active_version(tmp_path: Path, demo_dir: Path) -> None:
    from ml.train_model import train

    backend = open_home(tmp_path)
    assert insights.active_threshold(backend.models) is None
    payload, manifest = train([demo_dir])
    backend.models.publish(payload, manifest)
    assert insights.active_threshold(backend.models) == pytest.approx(manifest["threshold"])
