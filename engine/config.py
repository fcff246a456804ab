"""Settings from the environment, read in one place.

``PETROSTREAM_BACKEND`` picks the backend (``local`` by default); ``PETROSTREAM_HOME`` is
where the local backend keeps its stream, lake and models.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import InputError


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise InputError(f"{name}={raw!r} is not a whole number") from exc


@dataclass(frozen=True)
class Settings:
    """Everything a backend needs to open its resources."""

    backend: str = "local"
    home: Path = field(default_factory=lambda: Path.home() / ".petrostream")
    shard_count: int = 4
    retention_hours: int = 24
    application: str = "petrostream-consumer"
    lease_seconds: float = 20.0
    #: A consumer gathers a shard's records this long into one batch, so each batch carries more
    #: rows. On S3 and DynamoDB every batch costs requests; locally it only adds latency.
    batch_seconds: float = 0.0

    @classmethod
    def from_env(cls) -> Settings:
        home = os.environ.get("PETROSTREAM_HOME")
        return cls(
            backend=os.environ.get("PETROSTREAM_BACKEND", "local").strip().lower() or "local",
            home=Path(home).expanduser() if home else Path.home() / ".petrostream",
            shard_count=_int("PETROSTREAM_SHARDS", 4),
            retention_hours=_int("PETROSTREAM_RETENTION_HOURS", 24),
            application=os.environ.get("PETROSTREAM_APPLICATION", "petrostream-consumer"),
            lease_seconds=_int("PETROSTREAM_LEASE_SECONDS", 20),
            batch_seconds=_int("PETROSTREAM_BATCH_SECONDS", 0),
        )
