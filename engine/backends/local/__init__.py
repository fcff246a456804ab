"""The embedded backend: SQLite stream and leases, Parquet lake, DuckDB SQL, files for models.

Needs no server, no account and no network; everything lives under ``PETROSTREAM_HOME``.
"""

from __future__ import annotations

from engine.backend import Backend
from engine.backends.local._alarm_acks import SCHEMA as ALARM_ACTIONS_SCHEMA
from engine.backends.local._alarm_acks import LocalAlarmAckStore
from engine.backends.local._erase import LocalDataEraser
from engine.backends.local._lake import LocalLake
from engine.backends.local._leases import SCHEMA as LEASES_SCHEMA
from engine.backends.local._leases import LocalLeaseStore
from engine.backends.local._model_store import LocalModelStore
from engine.backends.local._processes import SCHEMA as PROCESSES_SCHEMA
from engine.backends.local._processes import ProcessTable
from engine.backends.local._query import DuckDBQueryEngine
from engine.backends.local._replay_log import SCHEMA as REPLAYS_SCHEMA
from engine.backends.local._replay_log import LocalReplayLog
from engine.backends.local._sqlite import Database
from engine.backends.local._stream import SCHEMA as STREAM_SCHEMA
from engine.backends.local._stream import LocalStream
from engine.backends.local._workers import LocalReplayControl, LocalScaler
from engine.config import Settings

__all__ = ["open_local_backend"]


def open_local_backend(settings: Settings) -> Backend:
    """Open (creating if needed) the local backend under ``settings.home``."""
    db = Database(settings.home / "stream.sqlite",
                  STREAM_SCHEMA + LEASES_SCHEMA + REPLAYS_SCHEMA + PROCESSES_SCHEMA + ALARM_ACTIONS_SCHEMA)
    lake = LocalLake(settings.home / "lake")
    processes = ProcessTable(db, settings)
    replays = LocalReplayLog(db)
    return Backend(
        name="local",
        settings=settings,
        stream=LocalStream(db, settings.shard_count, settings.retention_hours),
        leases=LocalLeaseStore(db, settings.application, settings.lease_seconds),
        lake=lake,
        sql=DuckDBQueryEngine(lake),
        models=LocalModelStore(settings.home / "models"),
        replays=replays,
        alarm_acks=LocalAlarmAckStore(db),
        replay_control=LocalReplayControl(replays, processes),
        scaling=LocalScaler(processes),
        erase_data=LocalDataEraser(db, lake),
        idle_poll_seconds=0.05,
        housekeeping_seconds=30.0,
    )
