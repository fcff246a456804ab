"""A tiny HTTP endpoint for the load balancer and scrapers: ``/health`` and ``/metrics``."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from engine.consumer import Consumer


def serve_health(port: int, consumer: Consumer) -> ThreadingHTTPServer:
    """Serve the consumer's liveness and counters on a daemon thread; return the server."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            stats = consumer.stats
            if self.path == "/health":
                body = json.dumps({"status": "ok", "worker": consumer.worker_id,
                                   "uptime_seconds": round(time.time() - stats.started_at, 1)}).encode()
                self._reply(200, "application/json", body)
            elif self.path == "/metrics":
                lines = [f"petrostream_consumer_batches_total {stats.batches}",
                         f"petrostream_consumer_rows_landed_total {stats.rows_landed}",
                         f"petrostream_consumer_duplicates_dropped_total {stats.duplicates_dropped}",
                         f"petrostream_consumer_dead_letters_total {stats.dead_letters}"]
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

    # Inside a task, where the load balancer and ECS probe it; it serves counters only, and only
    # when PETROSTREAM_HEALTH_PORT is set.
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)  # nosec B104
    threading.Thread(target=server.serve_forever, daemon=True, name="health").start()
    return server
