"""Where the producer keeps its progress, so a replay resumes without gaps or duplicates."""

from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: How a replay ended: every row sent; its row limit reached (rows remain); or stopped (a signal, the portal).
FINISHED, AT_LIMIT, STOPPED = "finished", "stopped at limit", "stopped"


def replay_id_for(paths: Iterable[Path]) -> str:
    """The same set of files is the same replay, so replaying them again resumes it."""
    folders: dict[str, str] = {}
    digest = hashlib.sha256("\n".join(sorted(_resolved(str(p), folders) for p in paths)).encode())
    return digest.hexdigest()[:16]


def _resolved(path: str, folders: dict[str, str]) -> str:
    """``Path(path).resolve()`` as a string, each folder resolved once (``folders`` remembers them): the
    full 3W data set is some 2,000 files in a few folders, and resolving each path walks every folder
    above it again."""
    folder, name = os.path.split(path)
    if folder not in folders:
        folders[folder] = os.path.realpath(folder or ".")
    full = os.path.join(folders[folder], name)
    return os.path.realpath(full) if os.path.islink(full) else full


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
