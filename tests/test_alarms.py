"""Alarm events: k-of-n debouncing, merging, exact continuation across micro-batches, versions, the lake view."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from engine import alarms
from engine.alarms import AlarmPolicy, cleared, close_all, count_events, update_alarms
from engine.backend import Backend
from engine.consumer import Consumer, ConsumerOptions
from engine.features import WellState, decode_states, encode_states
from engine.leases import LeaseStore
from engine.model import load
from engine.producer import Producer, ReplayOptions
from engine.readers import discover
from engine.schema import (
    ANOMALY_EVENT_VERSIONS_SCHEMA,
    ANOMALY_EVENT_VERSIONS_TABLE,
    ANOMALY_EVENTS_SCHEMA,
    EVENT_TIME_TYPE,
)
from ml.evaluate import stream_wells
from ml.train_model import train
from tests.backends import fast_kinesis_reads

POLICY = AlarmPolicy(window_rows=10, min_flags=5, min_gap_seconds=30)


def rows(well: str, flags: list[int] | np.ndarray, start_s: int = 0, labels: list[int] | None = None,
         scores: list[float] | None = None) -> pa.Table:
    """Scored rows of one well at 1 Hz, as ``score_observations`` returns them (the columns alarms read)."""
    flags = np.asarray(flags)
    n = len(flags)
    return pa.table({
        "well_id": pa.array([well] * n),
        "event_time": pa.array((start_s + np.arange(n)) * 1000, pa.int64()).cast(EVENT_TIME_TYPE),
        "anomaly_score": pa.array(scores if scores is not None else flags * 0.8, pa.float64()),
        "anomaly_flag": pa.array(flags, pa.int8()),
        "class": pa.array(labels if labels is not None else [0] * n, pa.int16()),
        "model_version": pa.array(["v1"] * n),
    })


def run(table: pa.Table, cuts: list[int] = (), policy: AlarmPolicy = POLICY) -> list[dict[str, object]]:
    """All events of ``table`` fed in pieces (states checkpointed as JSON in between), flushed at the end:
    the final version of each, without its revision."""
    states: dict[str, WellState] = {}
    events = []
    for start, stop in itertools.pairwise([0, *cuts, table.num_rows]):
        piece = table.slice(start, stop - start)
        for well in set(piece["well_id"].to_pylist()):
            states.setdefault(well, WellState())
        events.append(update_alarms(piece, states, policy))
        states = decode_states(encode_states(states))
    events.append(close_all(states))
    final = cleared(pa.concat_tables(events)).drop_columns(["revision"])  # how many versions depends on the cuts
    return final.sort_by([("well_id", "ascending"), ("start_time", "ascending")]).to_pylist()


def test_isolated_flags_raise_nothing_and_a_dense_run_raises_one_event() -> None:
    noisy = [1, 0, 0, 0, 1, 0, 0, 1, 0, 0] * 10  # 3 of every 10: below 5 of 10
    assert run(rows("W", noisy)) == []
    flags = [0] * 50 + [1] * 20 + [0] * 50
    (event,) = run(rows("W", flags, labels=[0] * 55 + [102] * 65, scores=list(np.linspace(0, 1, 120))))
    assert event["start_time"].timestamp() == 54  # the 5th flag in the window raises it
    assert event["end_time"].timestamp() == 74  # still 5 of the last 10 flagged five rows after the run
    assert event["label"] == 102 and event["state"] == "cleared"
    assert event["peak_time"].timestamp() == 74 and event["active_rows"] == 21


def test_bursts_closer_than_the_gap_are_one_event_farther_apart_two() -> None:
    burst = [1] * 10
    assert len(run(rows("W", burst + [0] * 20 + burst + [0] * 60))) == 1
    assert len(run(rows("W", burst + [0] * 45 + burst + [0] * 60))) == 2
    assert count_events(np.arange(200) * 1000, np.array(burst + [0] * 45 + burst + [0] * 135), POLICY) == 2


def test_flags_before_a_silence_do_not_count_after_it() -> None:
    before = rows("W", [1] * 8)
    after = rows("W", [1, 1, 1] + [0] * 40, start_s=3600)  # an hour later: 3 flags alone are not 5 of 10
    events = run(pa.concat_tables([before, after]))
    assert [e["start_time"].timestamp() for e in events] == [4]


def test_micro_batches_give_the_same_events_as_one_pass() -> None:
    rng = np.random.default_rng(7)
    wells = []
    for k, well in enumerate(("A", "B", "C")):
        flags = (rng.random(3000) < np.where(np.sin(np.arange(3000) / (150 + 40 * k)) > 0.7, 0.8, 0.05)).astype(int)
        labels = rng.integers(0, 3, 3000).tolist()
        wells.append(rows(well, flags, labels=labels, scores=rng.random(3000).tolist()))
    table = pa.concat_tables(wells).sort_by("event_time")  # interleaved wells
    whole = run(table)
    assert len(whole) >= 6
    for seed in range(3):
        cuts = sorted(np.random.default_rng(seed).choice(np.arange(1, table.num_rows), 40, replace=False).tolist())
        assert run(table, cuts) == whole


def quiet_and_flagged_wells(seed: int) -> pa.Table:
    """Interleaved wells at 1 Hz with silences longer than the gap; most stretches unflagged, some
    with a few flags (fewer than a window needs), some dense enough to raise events."""
    rng = np.random.default_rng(seed)
    pieces = []
    for well in ("A", "B", "C", "D", "E"):
        steps = np.where(rng.random(1500) < 0.01, rng.integers(31, 120, 1500), 1)
        rate = rng.choice([0.0, 0.0, 0.02, 0.1, 0.7], size=1500 // 100).repeat(100)
        flags = (rng.random(1500) < rate).astype(int)
        table = rows(well, flags, labels=rng.integers(0, 3, 1500).tolist(), scores=rng.random(1500).tolist())
        pieces.append(table.set_column(1, "event_time", pa.array(np.cumsum(steps) * 1000, pa.int64())
                                       .cast(EVENT_TIME_TYPE)))
    return pa.concat_tables(pieces).sort_by("event_time")


@pytest.mark.parametrize("seed", range(4))
def test_wells_without_flags_pass_the_debouncer_as_its_full_path_passes_them(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    table = quiet_and_flagged_wells(seed)
    cuts = sorted(np.random.default_rng(seed).choice(np.arange(1, table.num_rows), 200, replace=False).tolist())

    def stream() -> tuple[list[pa.Table], list[dict[str, WellState]]]:
        states = {well: WellState() for well in "ABCDE"}
        versions, snapshots = [], []
        for start, stop in itertools.pairwise([0, *cuts, table.num_rows]):
            versions.append(update_alarms(table.slice(start, stop - start), states, POLICY))
            if start in cuts[::5]:  # the stream ended here: events clear, the flags stay
                versions.append(close_all(states))
            snapshots.append(decode_states(encode_states(states)))
        return versions, snapshots

    passed: list[bool] = []
    original = alarms._QuietRows.pass_through

    def counted(*args: object) -> bool:
        passed.append(original(*args))
        return passed[-1]

    monkeypatch.setattr(alarms._QuietRows, "pass_through", counted)
    fast = stream()
    assert sum(passed) > len(passed) / 3 and not all(passed)  # both paths taken, the quiet one often
    monkeypatch.setattr(alarms._QuietRows, "pass_through", lambda *args: False)  # every well the full path
    full = stream()
    assert sum(versions.num_rows for versions in full[0]) > 20
    assert all(a.equals(b) for a, b in zip(fast[0], full[0], strict=True))
    assert [{w: s.alarm for w, s in states.items()} for states in fast[1]] == \
        [{w: s.alarm for w, s in states.items()} for states in full[1]]


def test_an_event_is_versioned_when_it_opens_grows_and_clears_once() -> None:
    states = {"W": WellState()}
    opened = update_alarms(rows("W", [1] * 20), states, POLICY)
    assert opened.schema == ANOMALY_EVENT_VERSIONS_SCHEMA
    assert opened.select(["event_id", "state", "revision"]).to_pylist() == [
        {"event_id": "W@4000", "state": "active", "revision": 0}]
    assert opened["end_time"].to_pylist() == [None] and opened["duration_seconds"].to_pylist() == [15.0]
    states = decode_states(encode_states(states))  # the open event survives a checkpoint
    grew = update_alarms(rows("W", [1] * 10, start_s=20), states, POLICY)
    assert grew.select(["state", "revision", "duration_seconds"]).to_pylist() == [
        {"state": "active", "revision": 1, "duration_seconds": 25.0}]
    quiet = update_alarms(rows("W", [0] * 20, start_s=30), states, POLICY)
    assert quiet["state"].to_pylist() == ["active"]  # still 5 of the last 10 flagged for a while: it grew
    unchanged = update_alarms(rows("W", [0] * 10, start_s=50), states, POLICY)
    assert unchanged.num_rows == 0  # nothing new: no version
    ended = update_alarms(rows("W", [0] * 40, start_s=60), states, POLICY)
    assert ended.select(["event_id", "state", "revision"]).to_pylist() == [
        {"event_id": "W@4000", "state": "cleared", "revision": 3}]
    assert ended["end_time"].to_pylist()[0].timestamp() == 34
    assert update_alarms(rows("W", [0] * 40, start_s=100), states, POLICY).num_rows == 0


def test_an_event_that_opens_and_clears_in_one_batch_has_one_version() -> None:
    versions = update_alarms(rows("W", [1] * 10 + [0] * 60), {"W": WellState()}, POLICY)
    assert versions.select(["state", "revision"]).to_pylist() == [{"state": "cleared", "revision": 0}]


def test_the_policy_comes_from_the_model_manifest() -> None:
    assert AlarmPolicy.from_manifest({"alarm_policy": {"window_rows": 30, "min_flags": 9,
                                                       "min_gap_seconds": 60}}) == AlarmPolicy(30, 9, 60)
    assert AlarmPolicy.from_manifest(None) == AlarmPolicy()


@pytest.fixture(scope="module")
def model_artifact(demo_dir: Path) -> tuple[bytes, dict[str, object]]:
    return train([demo_dir])


def test_the_consumer_lands_each_event_once_through_a_crash_and_as_evaluation_sees_it(
        backend: Backend, demo_dir: Path, model_artifact: tuple[bytes, dict[str, object]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    fast_kinesis_reads(monkeypatch)
    backend.models.publish(*model_artifact)
    Producer(backend, discover([demo_dir]), ReplayOptions(speed=0, rows_per_record=500)).run(threading.Event())
    drain = ConsumerOptions(idle_exit_seconds=0.5, poll_seconds=0.05, records_per_read=4)
    real_checkpoint = LeaseStore.checkpoint
    calls = {"n": 0}

    def crash_on_fifth(self: LeaseStore, *args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 5:
            raise SystemExit("simulated crash after the lake writes, before the checkpoint")
        return real_checkpoint(self, *args, **kwargs)

    monkeypatch.setattr(LeaseStore, "checkpoint", crash_on_fifth)
    with pytest.raises(SystemExit):
        Consumer(backend, drain, worker_id="crashing").run(threading.Event())
    monkeypatch.setattr(LeaseStore, "checkpoint", real_checkpoint)
    Consumer(backend, drain, worker_id="restarted").run(threading.Event())

    landed = backend.sql.query("SELECT well_id, event_id, start_time, end_time, state FROM anomaly_events "
                               "ORDER BY well_id, start_time")
    assert len(landed) > 0 and landed["event_id"].is_unique
    versions = backend.sql.query("SELECT event_id, revision, state FROM anomaly_event_versions")
    assert backend.lake.row_count(ANOMALY_EVENT_VERSIONS_TABLE) == len(versions) > len(landed)
    assert not versions.duplicated(["event_id", "revision"]).any()  # the crashed batch's retry replaced it
    assert not versions[versions["state"] == "cleared"].duplicated("event_id").any()  # cleared exactly once
    # The stream never ends: each well's last event may still be active, visible with no end time.
    active = landed[landed["state"] == "active"]
    assert active["well_id"].is_unique and active["end_time"].isna().all()
    assert landed.loc[landed["state"] == "cleared", "end_time"].notna().all()
    # Evaluation flushes the events still open; otherwise it sees exactly what the lake holds.
    model = load(*model_artifact, "test model")
    evaluated = stream_wells(model, discover([demo_dir])).events
    expected = {(e["well_id"], pd.Timestamp(e["start_time"])) for e in evaluated}
    assert {(w, pd.Timestamp(t)) for w, t in zip(landed["well_id"], landed["start_time"], strict=True)} == expected


def test_anomaly_events_shows_an_event_once_from_its_opening_batch_to_its_clearing_batch(backend: Backend) -> None:
    """Versions land in separate batches (one retried); the view, same SQL on both backends, shows the newest."""
    states = {"W": WellState()}
    events = "SELECT * FROM anomaly_events"
    backend.lake.write(ANOMALY_EVENT_VERSIONS_TABLE, "s@1", update_alarms(rows("W", [1] * 20), states, POLICY))
    opened = backend.sql.query(events)
    assert list(opened.columns) == ANOMALY_EVENTS_SCHEMA.names
    assert opened[["event_id", "state"]].values.tolist() == [["W@4000", "active"]]
    assert opened["end_time"].isna().all() and opened["top_sensors"].isna().all()
    retried = decode_states(encode_states(states))
    for attempt in (states, retried):  # the batch that clears it, written twice (a crash before the checkpoint)
        backend.lake.write(ANOMALY_EVENT_VERSIONS_TABLE, "s@2",
                           update_alarms(rows("W", [0] * 60, start_s=20), attempt, POLICY))
    ended = backend.sql.query(events)
    assert ended[["event_id", "state", "revision"]].values.tolist() == [["W@4000", "cleared", 1]]
    assert ended["end_time"].iloc[0] == pd.Timestamp(24, unit="s", tz="UTC")
    assert backend.sql.query("SELECT count(*) AS n FROM anomaly_event_versions")["n"].iloc[0] == 2
