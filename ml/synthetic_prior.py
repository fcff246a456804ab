"""The built-in synthetic fleet: a documented prior for training on too little data of one's own.

It is :mod:`engine.demo_data` with fixed settings (:data:`PRIOR_WELLS` wells x
:data:`PRIOR_HOURS` h, seed :data:`PRIOR_SEED`): every 3W event class 1-8 on wells with
differing operating points and sensor sets. Training uses it in two ways
(:mod:`ml.train_model`): its labeled events always teach the diagnosis classifier the event
types a user's own data may lack, and its settled normal rows join the detector's normal
baseline when the user's normal data is too little to set a threshold that would fire. The
files are generated once per process, into a temporary folder removed at exit or, given a cache
folder (the home's ``cache/``), once per generator version and settings: :func:`cache_key` names
the copy and :mod:`ml.verified_folder` trusts it only while its checksums hold.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from engine import demo_data, schema
from engine.demo_data import generate
from ml.verified_folder import cached_folder

PRIOR_WELLS = 16
PRIOR_HOURS = 8.0
PRIOR_SEED = 303
#: Well ids of the fleet carry this prefix in training summaries, so they never merge with a user's wells.
WELL_PREFIX = "synthetic:"
#: Scratch files read back at once: zstd writes 4-7x faster than 3W's brotli.
_COMPRESSION = "zstd"


def describe() -> dict[str, Any]:
    """How the prior is made, for the manifest."""
    return {"generator": "engine.demo_data", "wells": PRIOR_WELLS, "hours_per_well": PRIOR_HOURS,
            "seed": PRIOR_SEED}


@functools.cache
def prior_files(cache: Path | None = None) -> Path:
    """The folder holding the fleet's files: a verified copy under ``cache`` (made there when missing or
    damaged), or without a cache a scratch folder generated on first use in this process."""
    if cache is not None:
        return cached_folder(cache, cache_key(), _generate)
    folder = Path(_scratch().name)
    _generate(folder)
    return folder


def cache_key() -> str:
    """Names the generator's output: its settings, its code (and the schema's it imports) and NumPy's
    version (its random streams), so a change to any of them generates afresh."""
    identity = {**describe(), "compression": _COMPRESSION, "numpy": np.__version__,
                "code": [hashlib.sha256(inspect.getsource(m).encode()).hexdigest() for m in (demo_data, schema)]}
    return "synthetic-prior-" + hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]


def _generate(folder: Path) -> None:
    generate(folder, wells=PRIOR_WELLS, hours=PRIOR_HOURS, seed=PRIOR_SEED, compression=_COMPRESSION)


@functools.cache
def _scratch() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="petrostream-prior-")
