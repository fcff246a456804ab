"""Erasing the local backend's pipeline data, so the demo (or a test run) plays from nothing again.

What goes: stream records, leases and their checkpointed states, worker heartbeats, replay
progress, operators' alarm actions, and every lake table. What stays: the model store, the
well registry, the stream's settings and its sequence counter (sequence numbers never go
back, so nothing that remembered one can mistake a new record for an old one).
"""

from __future__ import annotations

from engine.backends.local._lake import LocalLake
from engine.backends.local._sqlite import Database, transaction

#: Tables of the home's database that hold pipeline data (every other table is settings or processes).
PIPELINE_TABLES = ("records", "leases", "lease_states", "workers", "replays", "alarm_actions")


class LocalDataEraser:
    """The local backend's ``Backend.erase_data``: callable, with the database and lake it clears."""

    def __init__(self, db: Database, lake: LocalLake) -> None:
        self._db = db
        self._lake = lake

    def __call__(self) -> None:
        with transaction(self._db):
            for table in PIPELINE_TABLES:
                self._db.execute(f"DELETE FROM {table}")  # nosec B608 - names from the constant above
        self._lake.erase()
