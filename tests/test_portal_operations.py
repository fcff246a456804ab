"""The operating pages act on real processes: Start/Stop replay, the consumer count, the scaling
policy, and the Overview's one-click demo pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from engine.backend import Backend
from tests.polling import wait_for
from tests.portal_homes import open_home, open_page, pids, stop_workers, with_demo_data

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
