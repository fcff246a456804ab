"""Riding out a backend outage: capped exponential back-off with jitter, one log line each way.

botocore retries a failed call a few times within a second or two. A network blip, a
throttled burst or a regional hiccup can last longer; a long-running worker must not die of
it (ECS would restart it, and its leases would sit unowned until they expire). So a worker
hands each :class:`~engine.errors.TransientError` to an :class:`Outage`, which waits before
the next attempt (full jitter, so workers hit by the same outage do not retry in lockstep)
and logs once when the outage starts and once when it ends, never once per failed call.
Errors that do not go away by themselves (access denied, a missing resource) are not
transient and still end the worker.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from engine.errors import TransientError

log = logging.getLogger("petrostream.outage")

BASE_BACKOFF_SECONDS = 0.5
#: The longest wait between attempts; also bounds how late a worker notices the end of an outage.
MAX_BACKOFF_SECONDS = 10.0


class Outage:
    """The current outage of one worker (if any): when it began, how many attempts failed."""

    def __init__(self, what: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._what = what
        self._clock = clock
        self.started_at: float | None = None
        self.failures = 0
        self.count = 0

    @property
    def active(self) -> bool:
        return self.started_at is not None

    def delay(self) -> float:
        """Seconds to wait before the next attempt: uniform in [0, min(cap, base * 2^failures)]."""
        return random.uniform(0.0, min(MAX_BACKOFF_SECONDS, BASE_BACKOFF_SECONDS * 2 ** min(self.failures, 30)))

    def failed(self, error: TransientError, stop: threading.Event) -> None:
        """Record a failed attempt and wait (or return early once ``stop`` is set)."""
        if self.started_at is None:
            self.started_at = self._clock()
            self.count += 1
            log.warning("%s: backend unavailable, retrying with back-off until it answers: %s", self._what, error)
        wait = self.delay()
        self.failures += 1
        stop.wait(wait)

    def succeeded(self) -> None:
        """An attempt went through: close the outage (logging its length) if one was open."""
        if self.started_at is None:
            return
        log.warning("%s: backend available again after %.1f s and %d failed attempts",
                    self._what, self._clock() - self.started_at, self.failures)
        self.started_at = None
        self.failures = 0
