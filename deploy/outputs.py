"""Reads the Terraform outputs that ``project_up.sh`` saves for the engine and the portal.

``terraform output -json`` wraps each value as ``{"value": ..., "type": ..., "sensitive": ...}``;
callers want plain values, and shell scripts want single values and the container
environment as exports.

Usage::

    python -m deploy.outputs env .petrostream/aws-outputs.json
    python -m deploy.outputs get .petrostream/aws-outputs.json portal_url
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

__all__ = ["container_environment", "load_outputs", "main"]


def load_outputs(path: Path) -> dict[str, Any]:
    """Output name -> plain value, from a ``terraform output -json`` file."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {name: entry["value"] for name, entry in raw.items()}


def container_environment(outputs: dict[str, Any]) -> dict[str, str]:
    """The ``PETROSTREAM_*`` variables the ECS containers get, for running the engine elsewhere."""
    return {name: str(value) for name, value in outputs.get("container_environment", {}).items()}


def _shell_value(value: Any) -> str:
    """Null prints as nothing (the shell tests for ""), lists as comma-separated words."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def main(argv: list[str] | None = None) -> int:
    """``env``: print ``export NAME=value`` lines for ``eval``; ``get``: print one output."""
    parser = argparse.ArgumentParser(prog="python -m deploy.outputs", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["env", "get"])
    parser.add_argument("file", type=Path)
    parser.add_argument("name", nargs="?", help="the output to print (get)")
    args = parser.parse_args(argv)
    try:
        outputs = load_outputs(args.file)
    except (OSError, ValueError, KeyError) as exc:
        print(f"deploy.outputs: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    if args.command == "get":
        if args.name not in outputs:
            print(f"deploy.outputs: {args.file} has no output {args.name!r}", file=sys.stderr)
            return 2
        print(_shell_value(outputs[args.name]))
        return 0
    for name, value in sorted(container_environment(outputs).items()):
        print(f"export {name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
