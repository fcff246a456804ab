"""A folder of generated files kept between runs, trusted only after its checksums are verified.

Generating the synthetic prior costs seconds on every training run although its output is a
pure function of the generator and its settings. So it is kept under a key of both; a copy is
used only when every file listed in its checksum list is there with its SHA-256 and nothing
else is (a stray file would be read as training data). Anything else (missing, truncated,
edited, half-written) is thrown away and generated again: a damaged cache costs time, never a
model. The folder is built under a temporary name and renamed into place, so a reader never
sees it half-written, and two trainings that race both end with a verified copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

#: The checksum list, written last: a folder without it was never finished.
CHECKSUMS = "_checksums.json"


def cached_folder(root: Path, key: str, build: Callable[[Path], object]) -> Path:
    """``root/key`` holding what ``build(folder)`` writes: reused when it verifies, else (re)built."""
    target = root / key
    if verified(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(dir=root, prefix=f".{key}-"))
    try:
        build(fresh)
        (fresh / CHECKSUMS).write_text(json.dumps(_checksums(fresh), indent=1, sort_keys=True))
        for _attempt in range(2):
            if verified(target):  # another run finished its copy meanwhile: keep the one readers may hold
                return target
            _discard(target)
            try:
                os.rename(fresh, target)
                return target
            except OSError:  # another run put its copy there first
                continue
        raise OSError(f"{target}: could not be replaced")
    finally:
        shutil.rmtree(fresh, ignore_errors=True)


def verified(folder: Path) -> bool:
    """Whether ``folder`` holds exactly the files its checksum list names, each with its checksum."""
    try:
        listed = json.loads((folder / CHECKSUMS).read_text())
        return isinstance(listed, dict) and listed == _checksums(folder)
    except (OSError, ValueError):
        return False


def _checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` but the checksum list, by relative path."""
    return {path.relative_to(folder).as_posix(): _sha256(path) for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name != CHECKSUMS}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _discard(folder: Path) -> None:
    """Move a stale copy aside first, so the name frees at once even while the removal runs."""
    if not folder.exists():
        return
    aside = folder.with_name(f".stale-{folder.name}-{os.getpid()}")
    try:
        os.rename(folder, aside)
    except OSError:
        return  # gone already, or another run moved it
    shutil.rmtree(aside, ignore_errors=True)
