"""Simulated time for running the producer and the consumer "in real time" in a fraction of it.

The pipeline's AWS calls are driven by its clocks: the producer sends one window a second at
speed 1, the consumer polls, gathers for ``batch_seconds``, renews leases and does its
housekeeping on timers. A sped-up replay would change that pattern (bigger windows, fuller
reads, fewer polls per row), so its call count would not be the real-time one. Instead, the
loops run on a :class:`SimulatedClock`: every participating thread's clock reads and waits
go to it, and simulated time advances only when all of them wait, straight to the earliest
wake-up. Work (the API calls themselves, against moto) takes no simulated time, which is
what real time looks like at demo load, where the loops spend nearly all of it waiting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any


class SimulatedClock:
    """A clock shared by ``participants`` threads that advances only while all of them wait."""

    def __init__(self, start: float, participants: int) -> None:
        self._now = start
        self._participants = participants
        self._wakes: dict[int, float] = {}
        self._changed = threading.Condition()

    def time(self) -> float:
        return self._now

    monotonic = time

    def sleep(self, seconds: float) -> None:
        """Block the calling thread until simulated time has moved ``seconds`` on."""
        me = threading.get_ident()
        with self._changed:
            self._wakes[me] = self._now + max(seconds, 0.0)
            self._advance()
            while self._now < self._wakes[me]:
                self._changed.wait(timeout=30)
            del self._wakes[me]

    def leave(self) -> None:
        """A participant is done: time no longer waits for it."""
        with self._changed:
            self._participants -= 1
            self._advance()

    def _advance(self) -> None:
        if self._wakes and len(self._wakes) >= self._participants:
            self._now = max(self._now, min(self._wakes.values()))
            self._changed.notify_all()

    def module(self) -> SimpleNamespace:
        """What replaces the ``time`` module inside the modules that pace the loops."""
        return SimpleNamespace(time=self.time, monotonic=self.monotonic, sleep=self.sleep)


class SimulatedStop:
    """A stop signal for a loop on simulated time: set once the clock reaches ``deadline``."""

    def __init__(self, clock: SimulatedClock, deadline: float) -> None:
        self._clock = clock
        self.deadline = deadline

    def is_set(self) -> bool:
        return self._clock.time() >= self.deadline

    def wait(self, timeout: float | None = None) -> bool:
        remaining = self.deadline - self._clock.time()
        self._clock.sleep(remaining if timeout is None else min(timeout, remaining))
        return self.is_set()


def run_together(clock: SimulatedClock, loops: list[Callable[[], Any]], timeout: float = 120.0) -> list[Any]:
    """Run each loop in its own thread on ``clock`` and return their results (re-raising a failure)."""
    results: list[Any] = [None] * len(loops)

    def run(index: int) -> None:
        try:
            results[index] = loops[index]()
        except BaseException as exc:
            results[index] = exc
        finally:
            clock.leave()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(loops))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        assert not thread.is_alive(), "a loop on simulated time did not finish"
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results
