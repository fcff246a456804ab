"""Print ``constraints.txt``: every package installed in this interpreter's environment that the
requirements files do not pin themselves, at its installed version.

Run by ``make constraints`` in a virtualenv freshly installed from ``requirements*.txt`` without
constraints, so the file pins what a fresh machine resolves today and nothing else.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REQUIREMENTS = ("requirements.txt", "requirements-dev.txt")
HEADER = """\
# Every package the pinned requirements pull in, pinned too (pip's -c: a constraint installs
# nothing by itself). A fresh install otherwise resolves the newest release of each, and one
# release (botocore 1.44.18) broke every aws test in a fresh clone while the development
# virtualenv still passed. Regenerate after changing requirements*.txt: make constraints.
"""


def normalized(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_lines(root: Path, files: tuple[str, ...] = REQUIREMENTS) -> dict[str, str]:
    """Each ``name[extras]==version`` line of the files, by the name it pins."""
    lines = {}
    for file in files:
        for line in (root / file).read_text().splitlines():
            match = re.match(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==", line)
            if match:
                lines[normalized(match.group(1))] = line
    return lines


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    frozen = subprocess.run([sys.executable, "-m", "pip", "freeze"], capture_output=True, text=True,
                            check=True).stdout.splitlines()
    top = pinned_lines(root)
    pins = [line for line in frozen if "==" in line and normalized(line.split("==")[0]) not in top]
    print(HEADER)
    print("\n".join(pins))


if __name__ == "__main__":
    main()
