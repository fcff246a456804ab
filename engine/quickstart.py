"""First run on a laptop: demo data, a trained model, and the stream filled and landed."""

from __future__ import annotations

import threading
from pathlib import Path

from engine.backend import Backend
from engine.consumer import Consumer, ConsumerOptions
from engine.producer import Producer, ReplayOptions
from engine.readers import discover
from engine.status import format_status, pipeline_status

DEMO_WELLS = 6
DEMO_HOURS = 8.0


def ensure_demo_data(folder: Path) -> Path:
    """Generate the demo data set once; later runs reuse it."""
    from engine.demo_data import generate

    if not any(folder.rglob("*.parquet")):
        generate(folder, wells=DEMO_WELLS, hours=DEMO_HOURS)
    return folder


def ensure_model(backend: Backend, data: Path) -> str:
    """Train and publish a model on the demo data unless one is active already."""
    from ml.train_model import TrainingOptions, train

    active = backend.models.active_version()
    if active:
        return active
    payload, manifest = train([data], TrainingOptions(prior_cache=backend.settings.cache))
    return backend.models.publish(payload, manifest)


def quickstart(backend: Backend, demo_dir: Path | None = None) -> None:
    """Demo data -> model -> replay -> consume, then print where to look."""
    data = ensure_demo_data(demo_dir or backend.settings.home / "demo-data")
    print(f"demo data in {data}")
    print(f"model {ensure_model(backend, data)} active")
    stop = threading.Event()
    progress = Producer(backend, discover([data]), ReplayOptions(speed=0)).run(stop)
    print(f"replayed {progress.sent_rows:,} rows")
    stats = Consumer(backend, ConsumerOptions(idle_exit_seconds=2.0)).run(stop)
    print(f"landed {stats.rows_landed:,} rows")
    print(format_status(pipeline_status(backend)))
    print('\nquery it:  .venv/bin/python -m engine query "SELECT * FROM well_data WHERE anomaly_flag = 1"')

