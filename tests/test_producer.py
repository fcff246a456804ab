"""The producer in-process on the local backend: how often it stores its progress."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine import producer
from engine.backend import open_backend
from engine.config import Settings
from engine.producer import Producer, ReplayOptions, count_rows
from engine.readers import discover
from engine.replay_log import ReplayProgress


def test_a_fast_replay_stores_progress_on_status_changes_not_every_window(
        tmp_path: Path, demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = open_backend(Settings(home=tmp_path))
    stored: list[str] = []
    save = backend.replays.save

    def counting_save(progress: ReplayProgress) -> None:
        stored.append(progress.status)
        save(progress)

    monkeypatch.setattr(backend.replays, "save", counting_save)
    monkeypatch.setattr(producer, "SAVE_EVERY_SECONDS", 3600.0)  # however slow this machine is today
    reported: list[int] = []
    files = discover([demo_dir])
    result = Producer(backend, files, ReplayOptions(speed=0),
                      on_progress=lambda p: reported.append(p.sent_rows)).run(threading.Event())
    assert len(reported) > 3  # one report per window (an hour of event time each)...
    assert stored == ["running", "finished"]  # ...but only the status changes were stored
    assert backend.replays.load(result.replay_id).sent_rows == count_rows(files)
