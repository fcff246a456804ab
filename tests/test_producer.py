"""The producer in-process on the local backend: how often it stores its progress."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine import codec, producer, readers
from engine.backend import open_backend
from engine.config import Settings
from engine.producer import Producer, ReplayOptions, count_rows
from engine.readers import discover
from engine.replay_log import AT_LIMIT, FINISHED, ReplayProgress
from engine.stream import OutgoingRecord
from tests.metering import concurrent_wells
from tests.simulated_time import SimulatedClock, SimulatedStop


def test_a_fast_replay_stores_progress_on_status_changes_not_every_window(
        tmp_path: Path, demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # progress due at most every hour, however slow this machine is today
    backend = dataclasses.replace(open_backend(Settings(home=tmp_path)), progress_save_seconds=3600.0)
    stored: list[str] = []
    save = backend.replays.save

    def counting_save(progress: ReplayProgress) -> None:
        stored.append(progress.status)
        save(progress)

    monkeypatch.setattr(backend.replays, "save", counting_save)
    reported: list[int] = []
    files = discover([demo_dir])
    result = Producer(backend, files, ReplayOptions(speed=0),
                      on_progress=lambda p: reported.append(p.sent_rows)).run(threading.Event())
    assert len(reported) > 3  # one report per window (an hour of event time each)...
    assert stored == ["running", "finished"]  # ...but only the status changes were stored
    assert backend.replays.load(result.replay_id).sent_rows == count_rows(files)


def test_a_new_replay_shows_every_row_from_its_first_report_and_opens_each_footer_once(
        tmp_path: Path, demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = open_backend(Settings(home=tmp_path))
    files = discover([demo_dir])
    assert len({f.well_id for f in files}) < len(files)  # some well has later files, counted before they are read
    expected = count_rows(files)
    opened: list[str] = []
    parquet_file = readers.pq.ParquetFile

    def counting_open(path: Path, *args: object, **kwargs: object) -> object:
        opened.append(str(path))
        return parquet_file(path, *args, **kwargs)

    monkeypatch.setattr(readers.pq, "ParquetFile", counting_open)
    totals: list[int] = []
    result = Producer(backend, files, ReplayOptions(speed=0),
                      on_progress=lambda p: totals.append(p.total_rows)).run(threading.Event())
    assert set(totals) == {expected} and result.sent_rows == expected
    first_of_each_well = {min((f for f in files if f.well_id == w), key=lambda f: f.path.name).path
                          for w in {f.well_id for f in files}}
    assert all(opened.count(str(path)) == 1 for path in first_of_each_well)
    assert len(opened) == 2 * len(files) - len(first_of_each_well)  # later files: counted, then read


def test_a_row_limit_ends_stopped_at_limit_and_resumes_from_there(tmp_path: Path, demo_dir: Path) -> None:
    backend = open_backend(Settings(home=tmp_path))
    files = discover([demo_dir])
    first = Producer(backend, files, ReplayOptions(speed=0, max_rows=5_000)).run(threading.Event())
    assert (first.status, first.sent_rows, first.stop_at) == (AT_LIMIT, 5_000, 5_000)  # not "finished"
    second = Producer(backend, files, ReplayOptions(speed=0, max_rows=5_000)).run(threading.Event())
    assert (second.sent_rows, second.stop_at) == (10_000, 10_000)  # resumed: the limit counts from there
    rest = Producer(backend, files, ReplayOptions(speed=0)).run(threading.Event())
    assert (rest.status, rest.sent_rows) == (FINISHED, count_rows(files))


def test_from_start_forgets_the_stored_progress(tmp_path: Path, demo_dir: Path) -> None:
    backend = open_backend(Settings(home=tmp_path))
    files = discover([demo_dir])[:2]
    Producer(backend, files, ReplayOptions(speed=0)).run(threading.Event())
    backlog = sum(backend.stream.backlog(s, None) for s in backend.stream.shard_ids())
    again = Producer(backend, files, ReplayOptions(speed=0, from_start=True)).run(threading.Event())
    assert (again.status, again.sent_rows) == (FINISHED, count_rows(files))  # every row once more
    assert sum(backend.stream.backlog(s, None) for s in backend.stream.shard_ids()) == 2 * backlog


def test_pacing_keeps_its_anchor_across_contiguous_windows(
        tmp_path: Path, demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The gap check compares a window with the previous one, so only a real gap in the data re-anchors."""
    backend = open_backend(Settings(home=tmp_path))
    anchors: list[int] = []
    monkeypatch.setattr(Producer, "_pace", lambda self, anchor, end, stop: anchors.append(anchor[0]))
    files = [f for f in discover([demo_dir]) if f.well_id == discover([demo_dir])[0].well_id][:1]
    Producer(backend, files, ReplayOptions(speed=600)).run(threading.Event())  # 10 min of data per window
    assert len(anchors) > 10 and set(anchors) == {anchors[0]}  # one file, no gap: one anchor throughout


@pytest.mark.parametrize("record_seconds", [1.0, 5.0])
def test_near_real_time_a_record_carries_the_backends_record_seconds_of_a_well(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record_seconds: float) -> None:
    """Locally one second a record keeps latency low; on aws (5 s) Firehose, which bills each record as at
    least 5 KB, gets five rows a record instead of one, each billed as one 5 KB increment."""
    backend = dataclasses.replace(open_backend(Settings(home=tmp_path)), min_record_seconds=record_seconds)
    clock = SimulatedClock(start=0.0, participants=1)
    monkeypatch.setattr(producer, "time", clock.module())
    sent: list[list[OutgoingRecord]] = []
    monkeypatch.setattr(backend.stream, "put_records", sent.append)
    files = concurrent_wells(tmp_path, 60)  # every well live at once, one observation a second
    wells = len({f.well_id for f in files})
    assert Producer(backend, files, ReplayOptions(speed=1.0)).run(SimulatedStop(clock, 3600.0)).status == FINISHED
    assert len(sent) == 60 // record_seconds  # one put every record_seconds simulated seconds
    assert clock.time() == pytest.approx(60.0, abs=record_seconds)  # still real time
    rows = [codec.decode(record.data).num_rows for put in sent for record in put]
    assert sum(rows) == wells * 60 and set(rows) == {int(record_seconds)}  # each record: its well's window
    assert all(len(record.data) < 5 * 1024 for put in sent for record in put)


def test_a_replay_does_not_import_what_it_never_runs(tmp_path: Path, demo_dir: Path) -> None:
    # pyarrow imports pandas on its first pa.array or to_numpy: a third of a short replay's time; the
    # model code (features, diagnosis, signature checks) and its libraries cost a tenth of a second more.
    unused = ("pandas", "sklearn", "scipy", "duckdb", "cryptography", "engine.model", "engine.features",
              "engine.diagnosis", "engine.model_signing")
    code = ("import sys\nfrom engine.cli import main\n"
            f"assert main(['replay', '--data', {str(demo_dir)!r}, '--speed', '0']) == 0\n"
            f"print(sorted(m for m in sys.modules if m in {unused!r} or m.split('.')[0] in {unused!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PETROSTREAM_HOME": str(tmp_path), "PETROSTREAM_BACKEND": "local"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
