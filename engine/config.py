"""Settings from the environment, read and checked in one place.

``PETROSTREAM_BACKEND`` picks the backend (``local`` by default); ``PETROSTREAM_HOME`` is
where the local backend keeps its stream, lake and models. Every value is checked when it is
read, so a typo (``PETROSTREAM_SHARDS=0``, ``PETROSTREAM_LEASE_SECONDS=-5``) stops a command at
start with one line naming the variable instead of surfacing later as a hang or a crash.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from engine.errors import InputError

_Number = TypeVar("_Number", int, float)


def _number(name: str, default: float, minimum: float, inclusive: bool = True) -> float:
    """A finite number from the environment that must be at least (or above) ``minimum``."""
    value = _read(name, default, float, "a number")
    if value != value or abs(value) == float("inf") or value < minimum or (not inclusive and value == minimum):
        bound = f"at least {minimum:g}" if inclusive else f"more than {minimum:g}"
        raise InputError(f"{name}={os.environ[name].strip()!r} must be a finite number {bound}")
    return value


def _whole(name: str, default: int, minimum: int) -> int:
    value = _read(name, default, int, "a whole number")
    if value < minimum:
        raise InputError(f"{name}={os.environ[name].strip()!r} must be at least {minimum}")
    return value


def _read(name: str, default: _Number, convert: Callable[[str], _Number], kind: str) -> _Number:
    raw = os.environ.get(name, "").strip()
    if raw == "":
        return default
    try:
        return convert(raw)
    except ValueError:
        raise InputError(f"{name}={raw!r} is not {kind}") from None


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
    #: The model signing key (:mod:`engine.model_signing`): empty for the default key file.
    model_key: str = ""
    #: The most rows one input file (instance, upload) may hold; larger ones are refused unread.
    max_file_rows: int = 1_000_000
    #: Folders a user may point the portal at (besides the home's demo data and uploads).
    data_roots: tuple[Path, ...] = ()

    @property
    def cache(self) -> Path:
        """Files kept between runs that can always be made again (removing the folder costs only time)."""
        return self.home / "cache"

    @classmethod
    def from_env(cls) -> Settings:
        home = os.environ.get("PETROSTREAM_HOME")
        return cls(
            backend=os.environ.get("PETROSTREAM_BACKEND", "local").strip().lower() or "local",
            home=Path(home).expanduser() if home else Path.home() / ".petrostream",
            shard_count=_whole("PETROSTREAM_SHARDS", 4, minimum=1),
            retention_hours=_whole("PETROSTREAM_RETENTION_HOURS", 24, minimum=1),
            application=os.environ.get("PETROSTREAM_APPLICATION", "petrostream-consumer"),
            lease_seconds=_number("PETROSTREAM_LEASE_SECONDS", 20.0, minimum=0.0, inclusive=False),
            batch_seconds=_number("PETROSTREAM_BATCH_SECONDS", 0.0, minimum=0.0),
            model_key=os.environ.get("PETROSTREAM_MODEL_KEY", "").strip(),
            max_file_rows=_whole("PETROSTREAM_MAX_FILE_ROWS", 1_000_000, minimum=1),
            data_roots=tuple(Path(p).expanduser() for p in os.environ.get("PETROSTREAM_DATA_ROOTS", "").split(
                os.pathsep) if p.strip()),
        )
