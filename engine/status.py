"""A snapshot of the pipeline's health: what ``engine status`` prints and the portal shows."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from engine.backend import Backend
from engine.replay_log import ReplayProgress
from engine.schema import DEAD_LETTERS_TABLE, WELL_DATA_TABLE


@dataclass(frozen=True)
class ShardStatus:
    shard_id: str
    owner: str | None
    checkpoint: str | None
    lag_records: int


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
    def total_lag(self) -> int:
        return sum(s.lag_records for s in self.shards)

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "total_lag": self.total_lag}


def pipeline_status(backend: Backend) -> PipelineStatus:
    """Read the stream, leases, lake and model store once each."""
    leases = {lease.shard_id: lease for lease in backend.leases.leases()}
    now = time.time()
    shards = []
    for shard_id in backend.stream.shard_ids():
        lease = leases.get(shard_id)
        owner = lease.owner if lease is not None and not lease.is_free(now) else None
        checkpoint = lease.checkpoint if lease is not None else None
        shards.append(ShardStatus(shard_id, owner, checkpoint, backend.stream.backlog(shard_id, checkpoint)))
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
        f"stream lag     {status.total_lag:,} records",
    ]
    lines += [f"  {s.shard_id}  lag {s.lag_records:>6,}  owner {s.owner or '-'}" for s in status.shards]
    if status.replay:
        r = status.replay
        lines.append(f"replay         {r.status}: {r.sent_rows:,}/{r.total_rows:,} rows ({r.rate:,.0f} rows/s)")
    return "\n".join(lines)
