"""The operating pages act on real processes: Start/Stop replay, the consumer count, the scaling
policy, and the Overview's one-click demo pipeline."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from engine.backend import Backend
from engine.demo_pipeline import reset_demo
from engine.errors import BackendError
from tests.polling import wait_for
from tests.portal_homes import open_home, open_page, pids, populate, stop_workers, with_demo_data

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    """A home with demo data, no model, nothing running; every process started is stopped after."""
    monkeypatch.setenv("PETROSTREAM_BACKEND", "local")
    monkeypatch.setenv("PETROSTREAM_HOME", str(tmp_path))
    with_demo_data(tmp_path)
    yield open_home(tmp_path)
    stop_workers(tmp_path)


def alive(pid: int) -> bool:
    return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE


def test_start_replay_starts_a_producer_and_stop_stops_it(home: Backend) -> None:
    control = home.replay_control
    assert control is not None
    at = open_page("replay")
    at.multiselect(key="replay-wells").set_value(["WELL-00002"])
    at.number_input(key="replay-speed").set_value(1.0)
    at.button(key="replay-start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Replay started" in s.value for s in at.success)
    state = control.state()
    assert state.running
    wait_for(lambda: control.state().progress is not None)
    progress = control.state().progress
    producer = progress.pid
    assert alive(producer) and all("WELL-00002" in Path(f).name for f in progress.files)

    reloaded = open_page("replay")  # a new browser session: the replay is still there
    assert {m.label: m.value for m in reloaded.metric}["Replay"] == "running"
    reloaded.button(key="replay-stop").click().run()
    assert not reloaded.exception
    assert not control.state().running and not alive(producer)
    assert {m.label: m.value for m in reloaded.metric}["Replay"] == "stopped"


def test_consumer_count_form_starts_and_stops_workers(home: Backend) -> None:
    at = open_page("scaling")
    at.number_input(key="scaling-count").set_value(2)
    at.button(key="scaling-apply").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    started = pids(home)
    assert len(started) == 2 and all(alive(p) for p in started)
    assert {m.label: m.value for m in at.metric}["Running"] == "2"

    at.number_input(key="scaling-count").set_value(0)
    at.button(key="scaling-apply").click().run()
    assert pids(home) == [] and not any(alive(p) for p in started)


def test_scaling_policy_is_saved_and_applied(home: Backend) -> None:
    assert home.scaling is not None
    at = open_page("scaling")
    at.toggle(key="policy-enabled").set_value(True)
    at.number_input(key="policy-min").set_value(1)
    at.number_input(key="policy-max").set_value(2)
    at.number_input(key="policy-cpu").set_value(50.0)
    next(b for b in at.button if b.label == "Save policy").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    policy = home.scaling.policy()
    assert (policy.enabled, policy.min_workers, policy.max_workers, policy.cpu_target) == (True, 1, 2, 50.0)
    assert len(pids(home)) == 1

    at.number_input(key="scaling-count").set_value(5).run()  # outside the policy's bounds
    assert at.button(key="scaling-apply").disabled and len(pids(home)) == 1
    assert any("between 1 and 2" in c.value for c in at.caption)  # the reason, next to the button

    at.number_input(key="policy-min").set_value(3).run()  # minimum above maximum
    assert at.button(key="policy-save").disabled and home.scaling.policy().min_workers == 1
    assert any("Cannot save" in c.value and "minimum ≤ maximum" in c.value for c in at.caption)


def test_demo_pipeline_starts_with_one_click_and_stops_with_another(home: Backend) -> None:
    control, scaler = home.replay_control, home.scaling
    assert control is not None and scaler is not None
    at = open_page("overview")
    at.button(key="start-demo").click().run(timeout=180)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("demo replay started" in s.value for s in at.success)
    assert home.models.active_version() is not None  # trained on the demo data it found
    assert control.state().running and len(pids(home)) == 1

    at.button(key="stop-pipeline").click().run()
    assert not at.exception
    assert any("replay stopped; consumers stopped" in s.value for s in at.success)
    assert not control.state().running and pids(home) == []


def test_reset_demo_erases_the_pipeline_data_and_plays_the_demo_from_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PETROSTREAM_BACKEND", "local")
    monkeypatch.setenv("PETROSTREAM_HOME", str(tmp_path))
    home = populate(tmp_path)  # the demo ran to its end: a second start would send nothing
    try:
        model = home.models.active_version()
        event_id = home.sql.query("SELECT event_id FROM anomaly_events LIMIT 1")["event_id"].iloc[0]
        home.alarm_acks.acknowledge(event_id, by="operator", comment="seen")
        assert home.lake.row_count("well_data") > 0 and home.leases.leases()

        at = open_page("overview")
        assert at.button(key="reset-demo").disabled  # nothing is erased without the confirmation
        at.checkbox(key="reset-demo-confirm").check().run()
        at.button(key="reset-demo").click().run(timeout=180)
        assert not at.exception and not at.error, [e.value for e in at.error]
        message = next(s.value for s in at.success if "data erased" in s.value)
        assert "demo replay started" in message, message

        assert home.alarm_acks.handling(event_id).acknowledgement is None  # the operators' log went with the data
        assert home.models.active_version() == model  # models stay
        assert home.replay_control.state().running and len(pids(home)) == 1
        wait_for(lambda: home.lake.row_count("well_data") > 0, seconds=120)  # the demo lands again
    finally:
        stop_workers(tmp_path)


def test_reset_demo_refuses_a_backend_whose_data_it_must_not_erase(home: Backend) -> None:
    kept = dataclasses.replace(home, erase_data=None)
    with pytest.raises(BackendError, match="keeps its data"):
        reset_demo(kept)
    assert pids(home) == []  # refused before stopping or starting anything
