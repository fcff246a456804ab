"""A backend is a bundle of the ports; this is the one place that picks it from the settings.

Code elsewhere asks a backend what it *can* do (its capability fields), never which kind it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.config import Settings
from engine.errors import InputError

if TYPE_CHECKING:  # the ports' modules import numpy and pyarrow: a command that needs none starts without them
    from engine.alarm_acks import AlarmAckStore
    from engine.lake import Lake
    from engine.leases import LeaseStore
    from engine.model_store import ModelStore
    from engine.query import QueryEngine
    from engine.replay_control import ReplayControl
    from engine.replay_log import ReplayLog
    from engine.scaling import Scaler
    from engine.stream import Stream


@dataclass(frozen=True)
class SqlEndpoint:
    """Where an outside tool (Power BI through the Athena ODBC driver) reaches the lake's SQL."""

    region: str
    database: str
    workgroup: str
    output_location: str


@dataclass(frozen=True)
class Backend:
    """Everything the producer, the consumer, the CLI and the portal talk to."""

    name: str
    settings: Settings
    stream: Stream
    leases: LeaseStore
    lake: Lake
    sql: QueryEngine
    models: ModelStore
    replays: ReplayLog
    #: Operators' acknowledgements and shelving of alarm events.
    alarm_acks: AlarmAckStore
    #: Start/stop the detached producer and scale the consumers (None where a backend has no such control yet).
    replay_control: ReplayControl | None = None
    scaling: Scaler | None = None
    #: Erase every landed row, stream record, checkpoint, replay progress and alarm action (models and the
    #: well registry stay), so a demo plays from nothing again. None where the data is shared and billed (aws).
    erase_data: Callable[[], None] | None = None
    #: Every SQL statement costs money (Athena bills 10 MB at least per query): views poll less often.
    sql_billed_per_query: bool = False
    #: Event time a near-real-time replay packs into one record per well, at least. Where the stream and
    #: its copy bill per record (Kinesis PUT units; Firehose rounds every record up to 5 KB and a one-row
    #: record is about 0.5 KB), five seconds a record cut that bill fivefold for five seconds more delay;
    #: locally a record costs nothing, so one second keeps a row's way to the lake short.
    min_record_seconds: float = 1.0
    #: How long a consumer with nothing to read waits before reading again. A Kinesis shard allows five
    #: reads a second, shared with Firehose; a read of the local stream is a SQLite query, so waiting less
    #: takes a quarter second off every row's way to the lake for a few idle queries a second.
    idle_poll_seconds: float = 0.2
    #: How often a consumer compacts and trims. On S3 each pass lists, locks and unlocks every table (a
    #: dozen billed requests with nothing to merge); locally a pass costs a query, and the loop stalls for
    #: as long as a pass merges, so small frequent passes keep that stall off the rows' latency.
    housekeeping_seconds: float = 180.0
    #: How often a running replay stores its progress, at most (and at every change of status). Where a
    #: store is billed (two DynamoDB writes on aws: the progress and the latest-replay pointer), every
    #: 30 s rather than every 5 s cuts that bill sixfold; a replay stopped cleanly (a Spot notice
    #: included) stores its progress as it stops, and rows a crash makes it send again are dropped by
    #: the consumer as already landed. Locally a store costs nothing and the portal shows it sooner.
    progress_save_seconds: float = 5.0
    #: The SQL endpoint BI tools connect to; None where there is none (local: the portal exports files).
    sql_endpoint: SqlEndpoint | None = None


def _open_local(settings: Settings) -> Backend:
    from engine.backends.local import open_local_backend

    return open_local_backend(settings)


def _open_aws(settings: Settings) -> Backend:
    from engine.backends.aws import open_aws_backend

    return open_aws_backend(settings)


#: Backend type (``PETROSTREAM_BACKEND``) -> function that opens it.
BACKENDS: dict[str, Callable[[Settings], Backend]] = {"local": _open_local, "aws": _open_aws}


def settings_from_env() -> Settings:
    """The environment's settings, checked (backend name included) so a typo stops a command at start."""
    settings = Settings.from_env()
    _opener(settings.backend)
    return settings


def open_backend(settings: Settings | None = None) -> Backend:
    """Open the backend the settings name (from the environment when none are given)."""
    settings = settings or Settings.from_env()
    return _opener(settings.backend)(settings)


def _opener(name: str) -> Callable[[Settings], Backend]:
    try:
        return BACKENDS[name]
    except KeyError:
        raise InputError(f"PETROSTREAM_BACKEND={name!r} is not one of {sorted(BACKENDS)}") from None
