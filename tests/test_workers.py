"""Detached producer and consumer processes of the local backend, as the portal drives them."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from engine.errors import InputError
from engine.producer import Producer, ReplayOptions, count_rows
from engine.readers import discover
from engine.replay_control import ReplayRequest, ReplayState
from engine.replay_log import ReplayProgress
from engine.scaling import ScalingPolicy, target_tracking
from tests.polling import wait_for
from tests.portal_homes import open_home, pids, stop_workers


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    stop_workers(tmp_path)


def test_a_replay_runs_detached_survives_a_portal_restart_and_stops(home: Path, demo_dir: Path) -> None:
    backend = open_home(home)
    control = backend.replay_control
    assert control is not None and control.state().phase == "idle"
    launch = control.start(ReplayRequest(tuple(f.path for f in discover([demo_dir])), speed=1.0))
    process = psutil.Process(int(launch.ident))
    assert process.is_running() and os.getsid(process.pid) != os.getsid(0)  # its own session: no Ctrl-C from us
    wait_for(lambda: "replay" in process.cmdline())  # between fork and exec it still shows the parent's command
    wait_for(lambda: control.state().progress is not None)
    assert control.state().phase == "running" and control.state().progress.pid == process.pid

    restarted = open_home(home).replay_control  # a new portal process opens the same home
    assert restarted is not None and restarted.state().running
    with pytest.raises(InputError, match="already running"):
        restarted.start(ReplayRequest(tuple(f.path for f in discover([demo_dir])), speed=1.0))
    assert restarted.stop() is True
    assert not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    assert restarted.state().phase == "stopped"  # the producer saved its progress on SIGTERM
    assert restarted.stop() is False


def test_a_killed_replay_shows_as_interrupted(home: Path, demo_dir: Path) -> None:
    control = open_home(home).replay_control
    assert control is not None
    launch = control.start(ReplayRequest(tuple(f.path for f in discover([demo_dir])), speed=1.0))
    wait_for(lambda: control.state().progress is not None)
    os.kill(int(launch.ident), signal.SIGKILL)
    wait_for(lambda: not control.state().running)
    assert control.state().phase == "interrupted"


def test_a_failing_replay_reports_why(home: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    bad = tmp_path_factory.mktemp("bad") / "WELL-00001_20240101000000.csv"
    bad.write_text("timestamp,P-PDG\nnot-a-time,1\n")
    control = open_home(home).replay_control
    assert control is not None
    control.start(ReplayRequest((bad,), speed=0))
    wait_for(lambda: not control.state().running)
    assert "unreadable timestamp" in control.state().note


@pytest.mark.parametrize(("request_", "message"), [
    (ReplayRequest(()), "at least one file"),
    (ReplayRequest((Path("/no/such.parquet"),)), "no such file"),
    (ReplayRequest((Path(__file__),), speed=-1), "speed"),
    (ReplayRequest((Path(__file__),), speed=float("nan")), "speed"),
    (ReplayRequest((Path(__file__),), max_rows=0), "row limit"),
])
def test_replay_requests_are_validated(home: Path, request_: ReplayRequest, message: str) -> None:
    control = open_home(home).replay_control
    assert control is not None
    with pytest.raises(InputError, match=message):
        control.start(request_)
    assert not control.state().running


def test_consumer_count_starts_and_stops_worker_processes(home: Path) -> None:
    backend = open_home(home)
    scaler = backend.scaling
    assert scaler is not None and scaler.state().running == 0
    scaler.set_desired(2)
    started = pids(backend)
    assert len(started) == 2
    # A child shows the parent's command line between fork and exec: wait for it to become a consumer.
    wait_for(lambda: all("consume" in psutil.Process(p).cmdline() for p in started))
    wait_for(lambda: len(backend.leases.live_workers()) == 2)  # they are real consumers: they hold leases
    scaler.set_desired(1)
    assert pids(backend) == started[:1]  # the newest stop first
    assert not psutil.pid_exists(started[1]) or psutil.Process(started[1]).status() == psutil.STATUS_ZOMBIE
    scaler.set_desired(0)
    assert pids(backend) == [] and scaler.desired() == 0


def test_reconcile_restarts_a_consumer_that_died(home: Path) -> None:
    backend = open_home(home)
    assert backend.scaling is not None
    backend.scaling.set_desired(1)
    (first,) = pids(backend)
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: pids(backend) == [])
    state = backend.scaling.reconcile()
    assert state.running == 1 and pids(backend) != [first]


def test_policy_bounds_the_count_and_stop_all_turns_it_off(home: Path) -> None:
    scaler = open_home(home).scaling
    assert scaler is not None
    scaler.set_policy(ScalingPolicy(min_workers=1, max_workers=2, cpu_target=60, enabled=True))
    assert scaler.desired() == 1 and scaler.state().running == 1  # turning it on moved desired into bounds
    with pytest.raises(InputError, match="between 1 and 2"):
        scaler.set_desired(3)
    scaler.stop_all()
    assert scaler.state().running == 0 and not scaler.policy().enabled
    assert scaler.policy().max_workers == 2  # the bounds are kept for next time


@pytest.mark.parametrize("policy", [
    ScalingPolicy(min_workers=3, max_workers=2), ScalingPolicy(min_workers=-1), ScalingPolicy(max_workers=99),
    ScalingPolicy(cpu_target=100.0), ScalingPolicy(cpu_target=float("nan"))])
def test_bad_policies_are_refused(home: Path, policy: ScalingPolicy) -> None:
    scaler = open_home(home).scaling
    assert scaler is not None
    with pytest.raises(InputError):
        scaler.set_policy(policy)
    assert scaler.policy() == ScalingPolicy()


def test_target_tracking_scales_by_measured_over_target() -> None:
    policy = ScalingPolicy(min_workers=1, max_workers=6, cpu_target=50, enabled=True)
    assert target_tracking(2, 100.0, policy) == 4
    assert target_tracking(4, 10.0, policy) == 1
    assert target_tracking(4, 200.0, policy) == 6
    assert target_tracking(0, None, policy) == 1
    assert target_tracking(3, None, policy) == 3


def test_files_replayed_to_their_end_are_not_started_again_unless_from_the_start(home: Path, demo_dir: Path) -> None:
    backend = open_home(home)
    control = backend.replay_control
    assert control is not None
    files = discover([demo_dir])[:1]
    Producer(backend, files, ReplayOptions(speed=0)).run(threading.Event())
    paths = tuple(f.path for f in files)
    assert control.stored(paths).status == "finished"
    with pytest.raises(InputError, match="already replayed to their end"):
        control.start(ReplayRequest(paths))  # resuming would send nothing: no "Replay started"
    assert not control.state().running
    control.start(ReplayRequest(paths, speed=0, from_start=True))
    wait_for(lambda: control.state().phase == "finished")
    assert control.state().progress.sent_rows == count_rows(files)


def test_the_eta_counts_to_the_row_limit_at_the_current_rate() -> None:
    progress = ReplayProgress("r", [], 60.0, total_rows=10_000, sent_rows=2_000, rate=100.0, stop_at=5_000)
    assert ReplayState(True, progress).eta_seconds == pytest.approx(30.0)
    assert ReplayState(True, replace(progress, stop_at=None)).eta_seconds == pytest.approx(80.0)
    assert ReplayState(False, progress).eta_seconds is None  # nothing is running, nothing to wait for
