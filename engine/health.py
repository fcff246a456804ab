"""A tiny HTTP endpoint for the container health check and scrapers: ``/health`` and ``/metrics``.

``/health`` tells the truth: it answers 200 only while the consume loop keeps completing
iterations. A loop stuck on a call that never returns, or kept from finishing an iteration
by an AWS outage longer than the staleness window, answers 503, so ECS replaces the task.
The window is longer than the consumer's longest back-off (:data:`engine.outage.MAX_BACKOFF_SECONDS`)
and than a full micro-batch, so a blip does not cost a restart.

The endpoint is configured by environment (the consumer's task definition and the image set
it): ``PETROSTREAM_HEALTH_PORT`` (off when unset), ``PETROSTREAM_HEALTH_ADDRESS`` (the bind
address; ``0.0.0.0`` by default so the ECS agent's probe inside the task reaches it) and
``PETROSTREAM_HEALTH_STALE_SECONDS``.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from engine.consumer import Consumer
from engine.errors import InputError

PORT_ENV = "PETROSTREAM_HEALTH_PORT"
ADDRESS_ENV = "PETROSTREAM_HEALTH_ADDRESS"
STALE_ENV = "PETROSTREAM_HEALTH_STALE_SECONDS"
DEFAULT_STALE_SECONDS = 180.0


@dataclass(frozen=True)
class HealthSettings:
    """Where the endpoint listens and how old the loop's last iteration may be."""

    port: int
    # The ECS probe and scrapers reach the task by its own address (bandit B104: deliberate, inside
    # a task whose security group admits nobody; set PETROSTREAM_HEALTH_ADDRESS to narrow it).
    address: str = "0.0.0.0"  # nosec B104
    stale_seconds: float = DEFAULT_STALE_SECONDS

    @classmethod
    def from_env(cls) -> HealthSettings | None:
        """The settings in the environment; None when ``PETROSTREAM_HEALTH_PORT`` is unset."""
        raw_port = os.environ.get(PORT_ENV, "").strip()
        if not raw_port:
            return None
        if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
            raise InputError(f"{PORT_ENV}={raw_port!r} is not a TCP port (1-65535)")
        raw_stale = os.environ.get(STALE_ENV, "").strip() or str(DEFAULT_STALE_SECONDS)
        try:
            stale = float(raw_stale)
        except ValueError:
            stale = math.nan
        if not (math.isfinite(stale) and stale > 0):
            raise InputError(f"{STALE_ENV}={raw_stale!r} is not a positive number of seconds")
        return cls(int(raw_port), os.environ.get(ADDRESS_ENV, "").strip() or cls.address, stale)


def health(consumer: Consumer, stale_seconds: float, now: float | None = None) -> tuple[bool, dict[str, object]]:
    """Whether the consume loop completed an iteration within ``stale_seconds``, and the details."""
    stats = consumer.stats
    now = time.time() if now is None else now
    age = now - (stats.last_iteration_at if stats.last_iteration_at is not None else stats.started_at)
    healthy = age <= stale_seconds
    return healthy, {"status": "ok" if healthy else "stale", "worker": consumer.worker_id,
                     "uptime_seconds": round(now - stats.started_at, 1),
                     "seconds_since_iteration": round(age, 1), "stale_after_seconds": stale_seconds,
                     "in_outage": stats.outage_since is not None}


def serve_health(settings: HealthSettings, consumer: Consumer) -> ThreadingHTTPServer:
    """Serve the consumer's liveness and counters on a daemon thread; return the server."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            stats = consumer.stats
            if self.path == "/health":
                healthy, body = health(consumer, settings.stale_seconds)
                self._reply(200 if healthy else 503, "application/json", json.dumps(body).encode())
            elif self.path == "/metrics":
                lines = [f"petrostream_consumer_batches_total {stats.batches}",
                         f"petrostream_consumer_rows_landed_total {stats.rows_landed}",
                         f"petrostream_consumer_duplicates_dropped_total {stats.duplicates_dropped}",
                         f"petrostream_consumer_dead_letters_total {stats.dead_letters}",
                         f"petrostream_consumer_outages_total {stats.outages}"]
                self._reply(200, "text/plain; version=0.0.4", ("\n".join(lines) + "\n").encode())
            else:
                self._reply(404, "text/plain", b"not found\n")

        def _reply(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer((settings.address, settings.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="health").start()
    return server
