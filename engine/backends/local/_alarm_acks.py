"""Operators' alarm actions in the stream's SQLite database (the local home's database)."""

from __future__ import annotations

import time

from engine.alarm_acks import AlarmAckStore, AlarmAction, decode_log, encode_log
from engine.backends.local._sqlite import Database, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS alarm_actions (
    event_id TEXT PRIMARY KEY,
    log TEXT NOT NULL,
    length INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
"""


class LocalAlarmAckStore(AlarmAckStore):
    """One row per event holding its action log; a write checks the length it read, in one transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def _read(self, event_id: str) -> tuple[AlarmAction, ...]:
        row = self._db.execute("SELECT log FROM alarm_actions WHERE event_id = ?", (event_id,)).fetchone()
        return decode_log(row[0]) if row else ()

    def _read_all(self) -> dict[str, tuple[AlarmAction, ...]]:
        return {event_id: decode_log(log) for event_id, log in
                self._db.execute("SELECT event_id, log FROM alarm_actions ORDER BY event_id")}

    def _write(self, event_id: str, log: tuple[AlarmAction, ...], expected_length: int) -> bool:
        with transaction(self._db):
            row = self._db.execute("SELECT length FROM alarm_actions WHERE event_id = ?", (event_id,)).fetchone()
            if (row[0] if row else 0) != expected_length:
                return False
            self._db.execute("INSERT OR REPLACE INTO alarm_actions VALUES (?, ?, ?, ?)",
                             (event_id, encode_log(log), len(log), time.time()))
        return True
