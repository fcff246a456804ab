"""Shard leases, their state blobs and worker heartbeats in the stream's SQLite database."""

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
    state_ref TEXT,
    pending TEXT,
    PRIMARY KEY (application, shard_id)
);
CREATE TABLE IF NOT EXISTS lease_states (
    application TEXT NOT NULL,
    shard_id TEXT NOT NULL,
    ref TEXT NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (application, shard_id, ref)
);
CREATE TABLE IF NOT EXISTS workers (
    application TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (application, worker_id)
);
"""
_COLUMNS = "shard_id, owner, counter, expires_at, checkpoint, state_ref, pending"


class LocalLeaseStore(LeaseStore):
    """One lease row per (application, shard): each consumer application keeps its own progress."""

    def __init__(self, db: Database, application: str,
                 lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        super().__init__(lease_seconds)
        self._db = db
        self._application = application
        _upgrade(db)

    def _read_all(self) -> list[Lease]:
        # _COLUMNS is a module constant; the value is a parameter.
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM leases WHERE application = ?",  # nosec B608
                                (self._application,))
        return [Lease(shard_id, owner, counter, expires_at, checkpoint, state_ref, pending=pending)
                for shard_id, owner, counter, expires_at, checkpoint, state_ref, pending in rows]

    def _read(self, shard_id: str) -> Lease | None:
        return next((lease for lease in self._read_all() if lease.shard_id == shard_id), None)

    def _insert(self, lease: Lease) -> bool:
        with transaction(self._db):
            cursor = self._db.execute(
                f"INSERT OR IGNORE INTO leases (application, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (self._application, lease.shard_id, lease.owner, lease.counter, lease.expires_at,
                 lease.checkpoint, lease.state_ref, lease.pending),
            )
        return cursor.rowcount == 1

    def _replace(self, lease: Lease, expected_counter: int) -> bool:
        with transaction(self._db):
            cursor = self._db.execute(
                "UPDATE leases SET owner = ?, counter = ?, expires_at = ?, checkpoint = ?, state_ref = ?, "
                "pending = ? WHERE application = ? AND shard_id = ? AND counter = ?",
                (lease.owner, lease.counter, lease.expires_at, lease.checkpoint, lease.state_ref,
                 lease.pending, self._application, lease.shard_id, expected_counter),
            )
        return cursor.rowcount == 1

    def _put_state(self, shard_id: str, ref: str, state: bytes) -> None:
        with transaction(self._db):
            self._db.execute("INSERT INTO lease_states VALUES (?, ?, ?, ?)", (self._application, shard_id, ref, state))

    def _get_state(self, shard_id: str, ref: str) -> bytes | None:
        row = self._db.execute("SELECT state FROM lease_states WHERE application = ? AND shard_id = ? AND ref = ?",
                               (self._application, shard_id, ref)).fetchone()
        return None if row is None else bytes(row[0])

    def _delete_state(self, shard_id: str, ref: str) -> None:
        with transaction(self._db):
            self._db.execute("DELETE FROM lease_states WHERE application = ? AND shard_id = ? AND ref = ?",
                             (self._application, shard_id, ref))

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


def _upgrade(db: Database) -> None:
    """Upgrade a home written by an earlier version: each inline state becomes a blob, and the
    lease row gets its ``pending`` lake attempt."""
    def columns() -> set[str]:
        return {name for _, name, *_ in db.execute("PRAGMA table_info(leases)")}

    if "pending" not in columns():
        with transaction(db):
            if "pending" not in columns():  # another process may have upgraded it meanwhile
                db.execute("ALTER TABLE leases ADD COLUMN pending TEXT")
    if "state" not in columns():
        return
    with transaction(db):
        if "state" not in columns():
            return  # another process upgraded it meanwhile
        if "state_ref" not in columns():
            db.execute("ALTER TABLE leases ADD COLUMN state_ref TEXT")
        db.execute("INSERT OR IGNORE INTO lease_states SELECT application, shard_id, 'upgraded', state "
                   "FROM leases WHERE state IS NOT NULL")
        db.execute("UPDATE leases SET state_ref = 'upgraded' WHERE state IS NOT NULL")
        db.execute("ALTER TABLE leases DROP COLUMN state")
