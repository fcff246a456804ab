"""Replay progress in the stream's SQLite database."""

from __future__ import annotations

from engine.backends.local._sqlite import Database, transaction
from engine.replay_log import ReplayLog, ReplayProgress

SCHEMA = """
CREATE TABLE IF NOT EXISTS replays (
    replay_id TEXT PRIMARY KEY,
    progress TEXT NOT NULL,
    updated_at REAL NOT NULL
);
"""


class LocalReplayLog(ReplayLog):
    def __init__(self, db: Database) -> None:
        self._db = db

    def load(self, replay_id: str) -> ReplayProgress | None:
        row = self._db.execute("SELECT progress FROM replays WHERE replay_id = ?", (replay_id,)).fetchone()
        return ReplayProgress.from_json(row[0]) if row else None

    def save(self, progress: ReplayProgress) -> None:
        with transaction(self._db):
            self._db.execute("INSERT OR REPLACE INTO replays VALUES (?, ?, ?)",
                             (progress.replay_id, progress.to_json(), progress.updated_at))

    def latest(self) -> ReplayProgress | None:
        row = self._db.execute("SELECT progress FROM replays ORDER BY updated_at DESC LIMIT 1").fetchone()
        return ReplayProgress.from_json(row[0]) if row else None
