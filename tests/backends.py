"""How the tests open each backend kind on a fresh, empty home."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from engine.backend import Backend, open_backend
from engine.config import Settings


def local_backend(home: Path, shard_count: int = 4) -> Iterator[Backend]:
    yield open_backend(Settings(backend="local", home=home, shard_count=shard_count))


#: Backend kind -> generator yielding a fresh backend (and cleaning up after it).
BACKEND_KINDS: dict[str, Callable[[Path], Iterator[Backend]]] = {"local": local_backend}
