"""A snapshot of the pipeline's health: what ``engine status`` prints and the portal shows."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from engine.backend import Backend
from engine.replay_log import ReplayProgress
from engine.schema import DEAD_LETTERS_TABLE, WELL_DATA_TABLE


@dataclass(frozen=True)
class ShardStatus:
    """One shard: who holds it, where it is, and how far behind it is.

    The lag comes as records where the stream counts them for free (local), and as time from
    the consumer's last checkpointed read where counting would spend the shard's reads (Kinesis).
    """

    shard_id: str
    owner: str | None
    checkpoint: str | None
    lag_records: int | None
    lag_seconds: float | None = None

    @property
    def lag_text(self) -> str:
        if self.lag_records is not None:
            return f"{self.lag_records:,} records"
        if self.lag_seconds is not None:
            return f"{self.lag_seconds:,.1f} s behind"
        return "not read yet"


@dataclass(frozen=True)
class PipelineStatus:
    backend: str
    shards: list[ShardStatus]
    workers: list[str]
    model_version: str | None
    lake_rows: int
    dead_letters: int
    replay: ReplayProgress | None

    @property
    def total_lag(self) -> int | None:
        """Records waiting in all shards; None where the stream does not count them (Kinesis)."""
        counts = [s.lag_records for s in self.shards]
        return None if None in counts else sum(c for c in counts if c is not None)

    @property
    def max_lag_seconds(self) -> float | None:
        """The largest time lag any shard's consumer reported; None if none has."""
        lags = [s.lag_seconds for s in self.shards if s.lag_seconds is not None]
        return max(lags) if lags else None

    @property
    def lag_text(self) -> str:
        if self.total_lag is not None:
            return f"{self.total_lag:,} records"
        return f"{self.max_lag_seconds:,.1f} s behind" if self.max_lag_seconds is not None else "not read yet"

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "total_lag": self.total_lag, "max_lag_seconds": self.max_lag_seconds}


def pipeline_status(backend: Backend) -> PipelineStatus:
    """Read the stream's shard list, leases, lake and model store once each (never the shards' records)."""
    leases = {lease.shard_id: lease for lease in backend.leases.leases()}
    now = time.time()
    shards = []
    for shard_id in backend.stream.shard_ids():
        lease = leases.get(shard_id)
        owner = lease.owner if lease is not None and not lease.is_free(now) else None
        checkpoint = lease.checkpoint if lease is not None else None
        behind = lease.millis_behind if lease is not None else None
        shards.append(ShardStatus(shard_id, owner, checkpoint, backend.stream.observed_backlog(shard_id, checkpoint),
                                  None if behind is None else behind / 1000))
    return PipelineStatus(
        backend=backend.name,
        shards=shards,
        workers=backend.leases.live_workers(),
        model_version=backend.models.active_version(),
        lake_rows=backend.lake.row_count(WELL_DATA_TABLE),
        dead_letters=backend.lake.row_count(DEAD_LETTERS_TABLE),
        replay=backend.replays.latest(),
    )


def format_status(status: PipelineStatus) -> str:
    """Human-readable lines for the terminal."""
    lines = [
        f"backend        {status.backend}",
        f"model          {status.model_version or '(none active: run `python -m engine train`)'}",
        f"rows in lake   {status.lake_rows:,}",
        f"dead letters   {status.dead_letters:,}",
        f"workers        {len(status.workers)} live" + (f" ({', '.join(status.workers)})" if status.workers else ""),
        f"stream lag     {status.lag_text}",
    ]
    lines += [f"  {s.shard_id}  lag {s.lag_text:>14}  owner {s.owner or '-'}" for s in status.shards]
    if status.replay:
        r = status.replay
        lines.append(f"replay         {r.status}: {r.sent_rows:,}/{r.total_rows:,} rows ({r.rate:,.0f} rows/s)")
    return "\n".join(lines)
