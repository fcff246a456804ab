"""Shared fixtures: fresh backend homes, the real 3W sample, a small demo data set.

``backend`` is parametrised over every backend kind in :data:`tests.backends.BACKEND_KINDS`,
so one contract suite runs against each of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.backend import Backend
from tests.backends import BACKEND_KINDS

SHARED_SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "3w-sample"


@pytest.fixture(scope="session", autouse=True)
def model_signing_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The trainer's key of this test session (and of the processes it starts), never the user's own."""
    key = tmp_path_factory.mktemp("keys") / "model-signing.key"
    previous = os.environ.get("PETROSTREAM_MODEL_KEY")
    os.environ["PETROSTREAM_MODEL_KEY"] = str(key)
    yield key
    if previous is None:
        os.environ.pop("PETROSTREAM_MODEL_KEY", None)
    else:
        os.environ["PETROSTREAM_MODEL_KEY"] = previous


@pytest.fixture
def sample_dir() -> Path:
    """The real 3W 1.0 slices in ../shared (never copied into the repository)."""
    if not SHARED_SAMPLE.is_dir():
        pytest.skip("real 3W sample not found at ../shared/3w-sample (absent outside the team's checkout)")
    return SHARED_SAMPLE


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo data set (3 wells x 3 h), generated once per test session and worker."""
    from engine.demo_data import generate

    folder = tmp_path_factory.mktemp("demo")
    generate(folder, wells=3, hours=3.0, seed=11)
    return folder


@pytest.fixture(params=sorted(BACKEND_KINDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A fresh, empty backend of each kind."""
    yield from BACKEND_KINDS[request.param](tmp_path)
