"""Where the producer keeps its progress, so a replay resumes without gaps or duplicates."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: How a replay ended: every row sent; its row limit reached (rows remain); or stopped (a signal, the portal).
FINISHED, AT_LIMIT, STOPPED = "finished", "stopped at limit", "stopped"


def replay_id_for(paths: Iterable[Path]) -> str:
    """The same set of files is the same replay, so replaying them again resumes it."""
    digest = hashlib.sha256("\n".join(sorted(str(Path(p).resolve()) for p in paths)).encode())
    return digest.hexdigest()[:16]


@dataclass
class ReplayProgress:
    """One replay: what it reads, how far each well got, and how it is doing."""

    replay_id: str
    files: list[str]
    speed: float
    total_rows: int
    sent_rows: int = 0
    watermarks: dict[str, int] = field(default_factory=dict)
    status: str = "running"
    pid: int | None = None
    rate: float = 0.0
    updated_at: float = 0.0
    message: str = ""
    #: ``sent_rows`` at which the running replay stops (its ``max_rows``), None to send every row.
    stop_at: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> ReplayProgress:
        return cls(**json.loads(raw))


class ReplayLog(ABC):
    """Load and save replay progress."""

    @abstractmethod
    def load(self, replay_id: str) -> ReplayProgress | None:
        """The progress of a replay, or None if it never ran."""

    @abstractmethod
    def save(self, progress: ReplayProgress) -> None:
        """Store progress (replacing the previous save of the same replay)."""

    @abstractmethod
    def latest(self) -> ReplayProgress | None:
        """The most recently updated replay."""
