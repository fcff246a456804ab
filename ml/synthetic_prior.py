"""The built-in synthetic fleet: a documented prior for training on too little data of one's own.

It is :mod:`engine.demo_data` with fixed settings (:data:`PRIOR_WELLS` wells x
:data:`PRIOR_HOURS` h, seed :data:`PRIOR_SEED`): every 3W event class 1-8 on wells with
differing operating points and sensor sets. Training uses it in two ways
(:mod:`ml.train_model`): its labeled events always teach the diagnosis classifier the event
types a user's own data may lack, and its settled normal rows join the detector's normal
baseline when the user's normal data is too little to set a threshold that would fire. The
files are generated once per process into a temporary folder removed at exit.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

from engine.demo_data import generate

PRIOR_WELLS = 16
PRIOR_HOURS = 8.0
PRIOR_SEED = 303
#: Well ids of the fleet carry this prefix in training summaries, so they never merge with a user's wells.
WELL_PREFIX = "synthetic:"


def describe() -> dict[str, Any]:
    """How the prior is made, for the manifest."""
    return {"generator": "engine.demo_data", "wells": PRIOR_WELLS, "hours_per_well": PRIOR_HOURS,
            "seed": PRIOR_SEED}


@functools.cache
def prior_files() -> Path:
    """The folder holding the fleet's files (generated on first use in this process)."""
    folder = Path(_scratch().name)
    generate(folder, wells=PRIOR_WELLS, hours=PRIOR_HOURS, seed=PRIOR_SEED, compression="zstd")  # scratch: fast
    return folder


@functools.cache
def _scratch() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="petrostream-prior-")
