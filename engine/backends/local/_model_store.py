"""Model versions as files under the local home."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from engine.model_store import ModelStore


class LocalModelStore(ModelStore):
    """Blobs are files under ``root``; writes go through a rename so readers never see half a file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _put(self, key: str, data: bytes) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
        temporary.write_bytes(data)
        os.replace(temporary, target)

    def _get(self, key: str) -> bytes | None:
        path = self.root / key
        return path.read_bytes() if path.is_file() else None

    def _version_names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return [p.name for p in self.root.iterdir() if p.is_dir() and (p / "manifest.json").is_file()]
