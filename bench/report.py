"""How every bench script hands back its result: JSON on stdout and, with ``--out``, in a file."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def report(result: dict[str, Any], out: Path | None) -> None:
    text = json.dumps(result, indent=2, default=float)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)


def machine() -> str:
    """What a result was measured on, as every bench records it beside its numbers."""
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
