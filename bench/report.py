"""How every bench script hands back its result: JSON on stdout and, with ``--out``, in a file."""

from __future__ import annotations

import argparse
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


def alternating_parser(description: str, rounds: int, baseline_required: bool = False) -> argparse.ArgumentParser:
    """The options every before/after bench shares: the other checkout, rounds, where data is kept,
    and ``--out``; a bench adds its own sizes to it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--baseline", type=Path, required=baseline_required,
                        help="another checkout to measure in the same rounds (before)")
    parser.add_argument("--rounds", type=int, default=rounds, help="alternating rounds")
    parser.add_argument("--data-dir", type=Path, help="keep generated data here and reuse it in later runs")
    parser.add_argument("--out", type=Path, help="write the JSON result here too")
    return parser
