"""Corrupt or missing model metadata never kills a worker, and ``models list`` survives it.

Each fault is written straight into the store (as anyone with write access could) and
activated while a consumer runs: the consumer refuses it with one log line, keeps scoring
with the model it has, and every row still lands.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine import model_signing
from engine.backend import Backend, open_backend
from engine.config import Settings
from engine.consumer import Consumer, ConsumerOptions
from engine.producer import Producer, ReplayOptions
from engine.readers import discover
from engine.schema import WELL_DATA_TABLE
from tests.polling import wait_for
from tests.test_model_signing import REPO, genuine


def fault_versions(backend: Backend) -> dict[str, str]:
    """Versions each broken in one way, written into the local store's folders directly."""
    root = backend.settings.home / "models"
    payload, manifest = genuine()
    faults = {}
    for name in ("corrupt-manifest", "manifest-not-an-object", "missing-artifact", "other-features"):
        time.sleep(1.05)  # versions are stamped to the second
        version = backend.models.publish(payload, manifest, activate=False)
        faults[name] = version
    (root / faults["corrupt-manifest"] / "manifest.json").write_text('{"threshold": 0.5, "sha2')
    (root / faults["manifest-not-an-object"] / "manifest.json").write_text("[1, 2, 3]")
    (root / faults["missing-artifact"] / "model.joblib").unlink()
    other = model_signing.sign(payload, {**manifest, "feature_version": manifest["feature_version"] + 1})
    (root / faults["other-features"] / "manifest.json").write_text(json.dumps(other))
    return faults


def test_a_running_consumer_refuses_each_broken_version_and_keeps_serving(
        tmp_path: Path, demo_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    backend = open_backend(Settings(home=tmp_path, shard_count=2))
    good = backend.models.publish(*genuine())
    faults = fault_versions(backend)
    backend.models.activate(good)
    consumer = Consumer(backend, ConsumerOptions(poll_seconds=0.05, model_poll_seconds=0.05))
    stop = threading.Event()
    worker = threading.Thread(target=consumer.run, args=(stop,))
    worker.start()
    try:
        wait_for(lambda: consumer.stats.model_version == good)
        expected = {"corrupt-manifest": "manifest is not valid JSON",
                    "manifest-not-an-object": "manifest is not a JSON object",
                    "missing-artifact": "artifact missing from the store",
                    "other-features": "trained on other features"}
        for name, version in faults.items():
            caplog.clear()
            with caplog.at_level(logging.ERROR, logger="petrostream.consumer"):
                backend.models.activate(version)
                wait_for(lambda v=version: any(v in r.getMessage() for r in caplog.records))
            message = next(r.getMessage() for r in caplog.records if version in r.getMessage())
            assert expected[name] in message and message.startswith(f"keeping model {good}"), message
            assert worker.is_alive() and consumer.stats.model_version == good
        (tmp_path / "models" / "ACTIVE.json").write_text("{not json")
        sent = Producer(backend, discover([demo_dir]), ReplayOptions(speed=0, max_rows=4000)).run(
            threading.Event()).sent_rows
        wait_for(lambda: backend.lake.row_count(WELL_DATA_TABLE) == sent)
        assert worker.is_alive()
    finally:
        stop.set()
        worker.join(timeout=30)
    scored = backend.sql.query("SELECT DISTINCT model_version FROM well_data")
    assert scored["model_version"].tolist() == [good]


def test_models_list_survives_broken_versions_and_a_corrupt_pointer(tmp_path: Path) -> None:
    backend = open_backend(Settings(home=tmp_path))
    good = backend.models.publish(*genuine())
    faults = fault_versions(backend)
    (tmp_path / "models" / "ACTIVE.json").write_text("[]")
    env = {**os.environ, "PETROSTREAM_HOME": str(tmp_path), "PETROSTREAM_BACKEND": "local"}
    listed = subprocess.run([sys.executable, "-m", "engine", "models", "list"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()}
    assert "threshold 0.5000" in lines[good]
    assert "UNUSABLE" in lines[faults["corrupt-manifest"]] and "not valid JSON" in lines[faults["corrupt-manifest"]]
    assert "UNUSABLE" not in lines[faults["missing-artifact"]]  # its manifest reads; loading it is refused
    refused = subprocess.run([sys.executable, "-m", "engine", "models", "rollback"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "ACTIVE.json" in refused.stderr and len(refused.stderr.splitlines()) == 1
    repaired = subprocess.run([sys.executable, "-m", "engine", "models", "activate", good], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
    assert repaired.returncode == 0, repaired.stderr
    assert backend.models.active_version() == good
