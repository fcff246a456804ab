"""docs/SCALING.md's table is what ``bench/scaling_table.py`` renders from the committed measurement.

A change to a price, a default in infra/variables.tf, the demo-load calls or the aws backend's
limits moves the table; this fails until the page is re-rendered (the command is on the page).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARKERS = re.compile(r"<!-- scaling:table:start -->\n(.*?)\n<!-- scaling:table:end -->", re.S)


def test_scaling_md_table_is_the_scripts_output() -> None:
    page = MARKERS.search((REPO / "docs" / "SCALING.md").read_text(encoding="utf-8"))
    assert page, "docs/SCALING.md lost its scaling:table markers"
    printed = subprocess.run([sys.executable, str(REPO / "bench" / "scaling_table.py")], check=True,
                             capture_output=True, text=True, cwd=REPO).stdout.strip()
    assert page.group(1).strip() == printed, "re-render: python bench/scaling_table.py (docs/SCALING.md)"


def test_the_committed_measurement_landed_every_row_once() -> None:
    measured = json.loads((REPO / "bench" / "aws_scale.json").read_text(encoding="utf-8"))
    assert measured["rows_landed"] == measured["rows"] > 0
    assert measured["wells"] == 2_000
