"""Where 3W data for training and replays comes from: the demo set, a folder, or uploaded files.

What a user types or uploads is hostile until checked: a folder must exist and hold 3W files;
an upload's name is reduced to a safe base name before it is written under the home's
``uploads`` folder, and the file must read as 3W or it is removed again.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from engine.errors import InputError
from engine.readers import SUFFIXES, InstanceFile, discover, read_instance

DEMO_FOLDER = "demo-data"
UPLOADS_FOLDER = "uploads"
MAX_PATH_CHARS = 4_096
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def demo_folder(home: Path) -> Path:
    """The demo data set of a home (what ``engine quickstart`` and the portal generate)."""
    return home / DEMO_FOLDER


def uploads_folder(home: Path) -> Path:
    return home / UPLOADS_FOLDER


def user_folder(text: str) -> Path:
    """A folder a user typed: it must be an existing directory holding 3W files."""
    raw = text.strip()
    if not raw:
        raise InputError("enter the path of a folder with 3W files")
    if "\x00" in raw or len(raw) > MAX_PATH_CHARS:
        raise InputError("that is not a usable folder path")
    folder = Path(raw).expanduser()
    if not folder.is_absolute():
        raise InputError(f"{raw}: give an absolute path (or one starting with ~)")
    folder = folder.resolve()
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    if not discover([folder]):
        raise InputError(f"{folder}: no 3W files (.parquet, .csv) in it")
    return folder


def safe_file_name(name: str) -> str:
    """A base name that is harmless as a file name: no directories, no odd characters, a 3W suffix."""
    base = _SAFE_NAME.sub("_", Path(name.replace("\\", "/")).name).lstrip(".")
    suffix = Path(base).suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{name!r}: upload a 3W .parquet or .csv file")
    stem = Path(base).stem[:120] or "upload"
    return f"{stem}{suffix}"


def save_upload(home: Path, name: str, data: bytes) -> Path:
    """Store an uploaded 3W file under the home's uploads; the file name keeps the well id it carries."""
    target = uploads_folder(home) / safe_file_name(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{uuid.uuid4().hex}.tmp{target.suffix}")
    temporary.write_bytes(data)
    try:
        read_instance(temporary)
    except InputError as exc:
        temporary.unlink(missing_ok=True)
        raise InputError(f"{target.name}: {str(exc).split(': ', 1)[-1]}") from None
    temporary.replace(target)
    return target


def catalogue(files: Sequence[InstanceFile]) -> pd.DataFrame:
    """One row per file (``well_id``, ``event_class``, ``file``), for choosing what to replay."""
    return pd.DataFrame({
        "well_id": [f.well_id for f in files],
        "event_class": [f.event_class for f in files],
        "file": [f.path.name for f in files],
    })


def files_of_wells(files: Sequence[InstanceFile], wells: Sequence[str]) -> list[InstanceFile]:
    """The files of the chosen wells."""
    chosen = set(wells)
    return [f for f in files if f.well_id in chosen]
