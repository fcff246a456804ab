"""Where 3W data for training and replays comes from: the demo set, a folder, or uploaded files.

What a user types or uploads is hostile until checked: a folder must lie inside one of the
configured data roots (``PETROSTREAM_DATA_ROOTS``, plus the home's demo data and uploads) and
hold 3W files, found by a capped walk; an upload's name is reduced to a safe base name, its
bytes are written to a temporary file under the home's ``incoming`` folder (which no data
root contains, so a half-checked upload is never offered for a replay), sized from its
footer, read as 3W, and only then moved into ``uploads``; a refused upload leaves nothing behind.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from engine.config import Settings
from engine.errors import InputError
from engine.readers import SUFFIXES, InstanceFile, discover, read_instance

DEMO_FOLDER = "demo-data"
UPLOADS_FOLDER = "uploads"
INCOMING_FOLDER = "incoming"
MAX_PATH_CHARS = 4_096
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def demo_folder(home: Path) -> Path:
    """The demo data set of a home (what ``engine quickstart`` and the portal generate)."""
    return home / DEMO_FOLDER


def uploads_folder(home: Path) -> Path:
    return home / UPLOADS_FOLDER


def data_roots(home: Path) -> list[Path]:
    """The folders a user may choose data under: ``PETROSTREAM_DATA_ROOTS``, the home's demo data and uploads."""
    return [p.resolve() for p in (*Settings.from_env().data_roots, demo_folder(home), uploads_folder(home))]


def user_files(text: str, roots: Sequence[Path]) -> list[InstanceFile]:
    """The 3W files of a folder a user typed: it must exist inside one of ``roots`` and hold 3W files."""
    raw = text.strip()
    if not raw:
        raise InputError("enter the path of a folder with 3W files")
    if "\x00" in raw or len(raw) > MAX_PATH_CHARS:
        raise InputError("that is not a usable folder path")
    folder = Path(raw).expanduser()
    if not folder.is_absolute():
        raise InputError(f"{raw}: give an absolute path (or one starting with ~)")
    folder = folder.resolve()
    if not any(folder.is_relative_to(root) for root in roots):
        raise InputError(f"{folder}: outside the data folders this portal may read "
                         f"({', '.join(map(str, roots))}; PETROSTREAM_DATA_ROOTS adds more)")
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    files = discover([folder])
    if not files:
        raise InputError(f"{folder}: no 3W files (.parquet, .csv) in it")
    return files


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
    incoming = home / INCOMING_FOLDER
    incoming.mkdir(parents=True, exist_ok=True)
    descriptor, temporary_name = tempfile.mkstemp(suffix=target.suffix, dir=incoming)
    temporary = Path(temporary_name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        read_instance(temporary)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary.replace(target)
    except InputError as exc:
        raise InputError(f"{target.name}: {str(exc).split(': ', 1)[-1]}") from None
    finally:
        temporary.unlink(missing_ok=True)
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
