"""Shard leases and worker heartbeats in the stream's SQLite database."""

from __future__ import annotations

import time

from engine.backends.local._sqlite import Database, transaction
from engine.leases import DEFAULT_LEASE_SECONDS, Lease, LeaseStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    application TEXT NOT NULL,
    shard_id TEXT NOT NULL,
    owner TEXT,
    counter INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    checkpoint TEXT,
    state BLOB,
    PRIMARY KEY (application, shard_id)
);
CREATE TABLE IF NOT EXISTS workers (
    application TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (application, worker_id)
);
"""
_COLUMNS = "shard_id, owner, counter, expires_at, checkpoint, state"


class LocalLeaseStore(LeaseStore):
    """One lease row per (application, shard): each consumer application keeps its own progress."""

    def __init__(self, db: Database, application: str,
                 lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        super().__init__(lease_seconds)
        self._db = db
        self._application = application

    def _read_all(self) -> list[Lease]:
        # _COLUMNS is a module constant; the value is a parameter.
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM leases WHERE application = ?",  # nosec B608
                                (self._application,))
        return [Lease(s, o, c, e, cp, bytes(st) if st is not None else None) for s, o, c, e, cp, st in rows]

    def _insert(self, lease: Lease) -> bool:
        with transaction(self._db):
            cursor = self._db.execute(
                f"INSERT OR IGNORE INTO leases (application, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (self._application, lease.shard_id, lease.owner, lease.counter, lease.expires_at,
                 lease.checkpoint, lease.state),
            )
        return cursor.rowcount == 1

    def _replace(self, lease: Lease, expected_counter: int) -> bool:
        with transaction(self._db):
            cursor = self._db.execute(
                "UPDATE leases SET owner = ?, counter = ?, expires_at = ?, checkpoint = ?, state = ? "
                "WHERE application = ? AND shard_id = ? AND counter = ?",
                (lease.owner, lease.counter, lease.expires_at, lease.checkpoint, lease.state,
                 self._application, lease.shard_id, expected_counter),
            )
        return cursor.rowcount == 1

    def _heartbeat(self, worker_id: str, expires_at: float) -> None:
        with transaction(self._db):
            self._db.execute("INSERT OR REPLACE INTO workers VALUES (?, ?, ?)",
                             (self._application, worker_id, expires_at))

    def _forget_worker(self, worker_id: str) -> None:
        with transaction(self._db):
            self._db.execute("DELETE FROM workers WHERE application = ? AND worker_id = ?",
                             (self._application, worker_id))

    def live_workers(self) -> list[str]:
        rows = self._db.execute("SELECT worker_id FROM workers WHERE application = ? AND expires_at >= ?",
                                (self._application, time.time()))
        return sorted(worker for (worker,) in rows)
