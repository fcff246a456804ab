"""The consumer's /health tells the truth: 200 while the loop completes iterations, 503 once it
has not for the staleness window (a hung call, a long outage), on the configured address."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from engine.backend import open_backend
from engine.config import Settings
from engine.consumer import Consumer, ConsumerOptions
from engine.errors import InputError
from engine.health import HealthSettings, health, serve_health
from tests.polling import wait_for


def _get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_health_follows_the_consume_loop_and_goes_stale_when_it_stops(tmp_path: Path) -> None:
    backend = open_backend(Settings(home=tmp_path, shard_count=1))
    consumer = Consumer(backend, ConsumerOptions(poll_seconds=0.05))
    server = serve_health(HealthSettings(port=0, address="127.0.0.1", stale_seconds=1.0), consumer)
    url = f"http://127.0.0.1:{server.server_address[1]}/health"
    try:
        status, body = _get(url)
        assert status == 200 and body["status"] == "ok"  # just started: within the window
        stop = threading.Event()
        loop = threading.Thread(target=consumer.run, args=(stop,))
        loop.start()
        wait_for(lambda: consumer.stats.last_iteration_at is not None)
        time.sleep(1.2)  # longer than the window: only a live loop keeps it fresh
        assert _get(url)[0] == 200
        stop.set()
        loop.join(10)
        wait_for(lambda: _get(url)[0] == 503, seconds=5)
        assert _get(url)[1]["status"] == "stale"
    finally:
        server.shutdown()


def test_a_loop_that_never_completes_an_iteration_is_unhealthy(tmp_path: Path) -> None:
    consumer = Consumer(open_backend(Settings(home=tmp_path, shard_count=1)))
    started = consumer.stats.started_at
    assert health(consumer, 180.0, now=started + 179)[0]
    healthy, body = health(consumer, 180.0, now=started + 181)
    assert not healthy and body["seconds_since_iteration"] == 181.0


def test_settings_come_from_the_environment_with_one_line_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PETROSTREAM_HEALTH_PORT", raising=False)
    assert HealthSettings.from_env() is None
    monkeypatch.setenv("PETROSTREAM_HEALTH_PORT", "8080")
    monkeypatch.setenv("PETROSTREAM_HEALTH_ADDRESS", "127.0.0.1")
    monkeypatch.setenv("PETROSTREAM_HEALTH_STALE_SECONDS", "90")
    assert HealthSettings.from_env() == HealthSettings(8080, "127.0.0.1", 90.0)
    monkeypatch.setenv("PETROSTREAM_HEALTH_STALE_SECONDS", "soon")
    with pytest.raises(InputError, match="PETROSTREAM_HEALTH_STALE_SECONDS='soon'"):
        HealthSettings.from_env()
    monkeypatch.setenv("PETROSTREAM_HEALTH_PORT", "http")
    with pytest.raises(InputError, match="PETROSTREAM_HEALTH_PORT='http' is not a TCP port"):
        HealthSettings.from_env()
