"""Opening the local backend's SQLite databases the same way everywhere."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BUSY_TIMEOUT_MS = 60_000


class Database:
    """One SQLite file in WAL mode (readers never block the writer), one connection per thread.

    A connection's transaction belongs to the connection, not the thread, so threads sharing
    one (the portal's sessions, a consumer thread beside a producer in one process) would nest
    each other's ``BEGIN``. Each thread therefore gets its own connection, opened on first use.
    Connections run in autocommit mode; every multi-statement change is an explicit
    :func:`transaction`, atomic across threads and processes.
    """

    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        self._schema = schema
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.connection.executescript(schema)

    @property
    def connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                         check_same_thread=False)
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            self._local.connection = connection
        return connection

    def execute(self, sql: str, parameters: Iterable[Any] = ()) -> sqlite3.Cursor:
        return self.connection.execute(sql, tuple(parameters))

    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> sqlite3.Cursor:
        return self.connection.executemany(sql, rows)


@contextmanager
def transaction(db: Database) -> Iterator[Database]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` on this thread's connection, or ``ROLLBACK`` if the block raises."""
    connection = db.connection
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
