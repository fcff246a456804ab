"""Staying inside AWS's rate limits: token buckets and exponential backoff with jitter.

AWS throttles per resource (a Kinesis shard takes 1,000 records/s and 1 MiB/s of writes and
five reads a second, shared by every reader). Pacing requests keeps a client under those
limits; when it is throttled anyway, it backs off exponentially with full jitter, so several
clients that were throttled together do not retry in lockstep.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

__all__ = ["TokenBucket", "backoff_delay"]

BACKOFF_BASE_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 5.0


def backoff_delay(attempt: int, base: float = BACKOFF_BASE_SECONDS, cap: float = BACKOFF_CAP_SECONDS) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): uniform in [0, min(cap, base * 2^attempt)]."""
    return random.uniform(0.0, min(cap, base * 2 ** min(attempt, 30)))


class TokenBucket:
    """At most ``rate`` units per second on average, in bursts of at most ``capacity`` units.

    A caller reserves its units at once and then sleeps off any debt outside the lock, so
    concurrent callers are served in arrival order without holding each other up longer
    than the rate demands. A request larger than the whole bucket is charged as a full
    bucket: it waits for the bucket to refill, then goes alone.
    """

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError("a token bucket needs a positive rate and capacity")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._sleep = sleep
        self._tokens = capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self, amount: float = 1.0) -> float:
        """Take ``amount`` units, sleeping until they are available; return the seconds slept."""
        amount = min(amount, self.capacity)
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= amount
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait
