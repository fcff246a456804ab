"""Starting and stopping the producer from the portal: a replay that outlives the page.

The replay runs in a process of its own (a detached local process, an ECS task on aws), so a
page reload, a closed browser or a restarted portal leaves it running; how far it got is what
the producer writes to the :class:`~engine.replay_log.ReplayLog` anyway. One replay runs at a
time: two replays of the same wells would interleave their observations. A backend supplies
the three process primitives; the rules (validation, one at a time, which progress belongs to
the running launch) live here once.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path

from engine.errors import InputError
from engine.replay_log import FINISHED, ReplayLog, ReplayProgress, replay_id_for

#: Fastest paced replay the portal offers (0 still means "as fast as possible").
MAX_SPEED = 100_000.0


@dataclass(frozen=True)
class ReplayRequest:
    """What to replay, how fast (times real time; 0 = as fast as possible), how many rows at most, and
    whether to send the files from their first row again rather than resume."""

    files: tuple[Path, ...]
    speed: float = 1.0
    max_rows: int | None = None
    from_start: bool = False

    def validated(self) -> ReplayRequest:
        """The request with absolute, sorted file paths; raises :class:`InputError` if it cannot run."""
        if not self.files:
            raise InputError("choose at least one file to replay")
        if not (math.isfinite(self.speed) and 0 <= self.speed <= MAX_SPEED):
            raise InputError(f"speed must be between 0 (as fast as possible) and {MAX_SPEED:,.0f}")
        if self.max_rows is not None and self.max_rows <= 0:
            raise InputError("the row limit must be a positive number")
        missing = [str(f) for f in self.files if not Path(f).is_file()]
        if missing:
            raise InputError(f"no such file: {missing[0]}")
        return replace(self, files=tuple(sorted(Path(f).resolve() for f in self.files)))

    def cli_options(self) -> list[str]:
        """The options of ``python -m engine replay`` that carry this request (what a backend launches)."""
        options = ["--speed", repr(self.speed)]
        options += ["--max-rows", str(self.max_rows)] if self.max_rows is not None else []
        return options + (["--from-start"] if self.from_start else [])


@dataclass(frozen=True)
class Launch:
    """A replay process as its backend knows it: an id (pid, task ARN) and when it started (epoch s)."""

    ident: str
    started_at: float


@dataclass(frozen=True)
class ReplayState:
    """Is a replay running, and the progress to show for it."""

    running: bool
    progress: ReplayProgress | None
    note: str = ""

    @property
    def phase(self) -> str:
        """starting, running, finished, stopped, interrupted (died mid-way) or idle (never ran)."""
        if self.running:
            return "running" if self.progress is not None else "starting"
        if self.progress is None:
            return "idle"
        return "interrupted" if self.progress.status == "running" else self.progress.status

    @property
    def eta_seconds(self) -> float | None:
        """Seconds until the running replay ends (its row limit or its last row) at its current rate."""
        progress = self.progress
        if not self.running or progress is None or progress.rate <= 0:
            return None
        end = progress.total_rows if progress.stop_at is None else min(progress.total_rows, progress.stop_at)
        return max(0, end - progress.sent_rows) / progress.rate

    @property
    def share(self) -> float:
        """Fraction of the replay's rows sent so far."""
        if self.progress is None or not self.progress.total_rows:
            return 0.0
        return min(1.0, self.progress.sent_rows / self.progress.total_rows)


class ReplayControl(ABC):
    """Start, stop and watch the one detached replay."""

    def __init__(self, replays: ReplayLog) -> None:
        self._replays = replays

    # -- process primitives ---------------------------------------------------------------
    @abstractmethod
    def _current(self) -> Launch | None:
        """The replay process that is alive now, if any."""

    @abstractmethod
    def _launch(self, request: ReplayRequest) -> Launch:
        """Start a detached producer for a validated request."""

    @abstractmethod
    def _halt(self, timeout: float) -> bool:
        """Ask the running producer to stop (it saves its progress), force it after ``timeout`` s."""

    def _last_error(self) -> str:
        """Why the last replay process failed, if the backend can tell (one line)."""
        return ""

    # -- rules ------------------------------------------------------------------------------
    def stored(self, files: tuple[Path, ...]) -> ReplayProgress | None:
        """How far an earlier replay of exactly these files got (what a start would resume), if any ran."""
        return self._replays.load(replay_id_for(files)) if files else None

    def start(self, request: ReplayRequest) -> Launch:
        """Start a replay; the same files resume where their last replay stopped, unless ``from_start``.

        Refuses to "start" what would send nothing: files already replayed to their end.
        """
        request = request.validated()
        if self._current() is not None:
            raise InputError("a replay is already running; stop it first")
        previous = None if request.from_start else self.stored(request.files)
        if previous is not None and previous.status == FINISHED:
            raise InputError("these files were already replayed to their end, so resuming would send nothing; "
                             "replay them from the start instead")
        return self._launch(request)

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop the running replay; False if none was running."""
        return self._halt(timeout)

    def state(self) -> ReplayState:
        launch = self._current()
        progress = self._replays.latest()
        if launch is not None and progress is not None and progress.updated_at < launch.started_at:
            progress = None  # the new process has not reported yet; older progress is another replay's
        note = "" if launch is not None else self._last_error()
        return ReplayState(launch is not None, progress, note)
