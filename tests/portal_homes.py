"""What the portal tests share: backend homes, lake rows with known values, and the portal itself.

The populated home goes through the same steps a user's does: demo data generated into the
home, a model trained and published, the data replayed as fast as possible and consumed
until the stream is drained. Every process a test starts through the portal is stopped by
:func:`stop_workers`, whatever the test did. :func:`open_page` runs the portal in-process
with Streamlit's AppTest, on the home ``PETROSTREAM_HOME`` names.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
from streamlit.testing.v1 import AppTest

from engine.backend import Backend, open_backend
from engine.config import Settings
from engine.consumer import Consumer, ConsumerOptions
from engine.data_sources import demo_folder
from engine.demo_data import generate
from engine.producer import Producer, ReplayOptions
from engine.readers import discover
from engine.schema import ANOMALY_EVENT_VERSIONS_SCHEMA, WELL_DATA_SCHEMA
from ml.train_model import train

WELLS, HOURS, SEED = 3, 3.0, 11
#: Model version written on synthetic rows.
VERSION = "v-test"


def observations(well: str, start: datetime, count: int, *, ingest: datetime, pressure_pa: float,
                 temperature: float, flagged: range = range(0), label_flagged: int = 0) -> pa.Table:
    """``count`` rows of one well at 1 Hz; rows in ``flagged`` score 0.8 and are flagged, the rest 0.4."""
    columns = {field.name: pa.nulls(count, field.type) for field in WELL_DATA_SCHEMA}
    flags = [1 if i in flagged else 0 for i in range(count)]
    columns |= {
        "well_id": pa.array([well] * count),
        "event_time": pa.array([start + timedelta(seconds=i) for i in range(count)], pa.timestamp("ms", "UTC")),
        "pressure": pa.array([pressure_pa] * count, pa.float32()),
        "p_tpt": pa.array([pressure_pa] * count, pa.float32()),
        "temperature": pa.array([temperature] * count, pa.float32()),
        "t_tpt": pa.array([temperature] * count, pa.float32()),
        "anomaly_score": pa.array([0.8 if f else 0.4 for f in flags]),
        "anomaly_flag": pa.array(flags, pa.int8()),
        "class": pa.array([label_flagged if f else 0 for f in flags], pa.int16()),
        "model_version": pa.array([VERSION] * count),
        "ingest_time": pa.array([ingest] * count, pa.timestamp("ms", "UTC")),
    }
    return pa.table(columns, schema=WELL_DATA_SCHEMA)


def event_version(well: str, start: datetime, active_for: timedelta, *, state: str, revision: int = 0,
                  peak_score: float = 0.8, label: int | None = None, likely_class: int | None = None,
                  top_sensors: str | None = None) -> dict[str, object]:
    """One row of ``anomaly_event_versions``: an alarm of ``well`` that started at ``start``."""
    last = start + active_for
    return {"event_id": f"{well}@{int(start.timestamp() * 1000)}", "well_id": well, "start_time": start,
            "end_time": last if state == "cleared" else None, "state": state, "peak_score": peak_score,
            "model_version": VERSION, "label": label, "likely_class": likely_class,
            "likely_class_probability": None if likely_class is None else 0.8, "top_sensors": top_sensors,
            "explanation": None, "peak_time": start, "last_active_time": last,
            "duration_seconds": active_for.total_seconds(), "active_rows": int(active_for.total_seconds()) + 1,
            "revision": revision}


def event_versions(*rows: dict[str, object]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), ANOMALY_EVENT_VERSIONS_SCHEMA)


def open_home(home: Path) -> Backend:
    return open_backend(Settings(backend="local", home=home))


def with_demo_data(home: Path) -> Path:
    """Generate the small demo set where the portal looks for demo data; return its folder."""
    folder = demo_folder(home)
    generate(folder, wells=WELLS, hours=HOURS, seed=SEED)
    return folder


def populate(home: Path) -> Backend:
    """Demo data -> trained, published model -> replay at full speed -> consumed into the lake."""
    backend = open_home(home)
    data = with_demo_data(home)
    payload, manifest = train([data])
    backend.models.publish(payload, manifest)
    never = threading.Event()
    Producer(backend, discover([data]), ReplayOptions(speed=0)).run(never)
    Consumer(backend, ConsumerOptions(idle_exit_seconds=1.0)).run(never)
    return backend


def pids(backend: Backend) -> list[int]:
    assert backend.scaling is not None
    return [int(w.ident) for w in backend.scaling.workers()]


def stop_workers(home: Path) -> None:
    """Stop any producer and consumer processes started against ``home``."""
    backend = open_home(home)
    assert backend.replay_control is not None and backend.scaling is not None
    backend.replay_control.stop(timeout=5)
    backend.scaling.stop_all()


APP = Path(__file__).resolve().parents[1] / "control_center" / "app.py"
#: Page files of the portal (pages/<name>.py), in navigation order.
PAGES = ("overview", "alarms", "live_anomalies", "well_map", "history", "model", "replay", "scaling", "power_bi")


def open_page(page: str, timeout: float = 60.0) -> AppTest:
    """Run the portal (in-process, as AppTest does) and switch to one page."""
    at = AppTest.from_file(str(APP), default_timeout=timeout)
    at.run()
    at.switch_page(f"../pages/{page}.py")
    return at.run()
