"""History and Live queries on a lake of 10 million rows (issue 14, target 4).

**What it builds.** A local home whose ``well_data`` holds ``--wells`` wells (default 40) x
``--days`` days (default 3) at 1 Hz, ending now: 10,368,000 rows. The rows are written as the
consumer writes them, through the backend's own lake port: each of the stream's shards (wells
routed by the stream's hash, as the producer routes them) lands one micro-batch per
``--batch-seconds`` of event time (default 300 s: a consumer behind by minutes, or with
``PETROSTREAM_BATCH_SECONDS`` set; a consumer at 1 Hz with no gathering writes smaller ones) under the
consumer's batch key, holding each of its wells' rows in time order; every batch is followed by
the consumer's compaction pass, so the files, tiers and row groups are the ones a consumer leaves.
Each well carries its own subset of the 3W sensors (the rest null), slow wander plus noise as
float32, anomaly scores with a few flagged stretches, and a handful of alarm events. A model trained
on a small demo set is published, as the Live view reads its threshold. What the rows are *not*
is the consumer's actual features or scores: scoring 10 M rows would take minutes and changes
nothing a query reads.

**What it measures.** The engine calls the pages make, on the local backend:

* *History, one well, 24 h*: what ``pages/history.py`` runs when it opens on a well's last 24 h:
  the well list (:func:`engine.history.wells`), the sensors with data in the range
  (:func:`engine.history.sensors_of`) and the chart's buckets (:func:`engine.history.history`,
  P-TPT and T-TPT in 60 s buckets with min and max, so peaks survive);
* *Live refresh*: :func:`engine.insights.live_view`, what the Live anomalies fragment reads
  every few seconds.

Each is run ``--runs`` times after a warm-up (a different well each time for History); p50 and
p90 are reported, and each History statement apart. ``total_cpu`` is the CPU time of the whole
view, DuckDB's threads included: on a machine shared with other work it is the steadier figure,
and on an idle one the wall time cannot exceed it by much (DuckDB runs on every core).

Run (from the repository root): ``.venv/bin/python bench/bench_queries.py [--home DIR]``; with
``--home`` the lake is kept and reused by later runs (building it takes a few minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import machine, report  # noqa: E402
from engine import history, insights  # noqa: E402
from engine.backend import Backend, open_backend  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.consumer import batch_key  # noqa: E402
from engine.demo_data import generate  # noqa: E402
from engine.schema import (  # noqa: E402
    ANOMALY_EVENT_VERSIONS_TABLE,
    LAKE_TABLES,
    PRESSURE_COLUMN,
    TEMPERATURE_COLUMN,
    VARIABLES,
    WELL_DATA_SCHEMA,
    WELL_DATA_TABLE,
)
from engine.stream import shard_index  # noqa: E402
from ml.train_model import TrainingOptions, train  # noqa: E402

HISTORY_TARGET_S, LIVE_TARGET_S = 0.2, 0.3
SENSOR_COLUMNS = [v.name for v in VARIABLES]
_DAY_SECONDS = 86_400


def build_lake(home: Path, wells: int, days: int, batch_seconds: int) -> Backend:
    """The home's lake filled as a consumer would have filled it, ending now (see the module docstring)."""
    backend = open_backend(Settings(backend="local", home=home))
    data = home / "model-data"
    generate(data, wells=3, hours=2.0, seed=3)
    payload, manifest = train([data], TrainingOptions(prior_cache=backend.settings.cache))
    version = backend.models.publish(payload, manifest)
    threshold = float(manifest["threshold"])
    end_ms = int(time.time()) * 1000
    start_ms = end_ms - days * _DAY_SECONDS * 1000
    names = [f"WELL-{w:05d}" for w in range(1, wells + 1)]
    shards: dict[int, list[int]] = {}
    for number, name in enumerate(names):
        shards.setdefault(shard_index(name, backend.settings.shard_count), []).append(number)
    shard_ids = backend.stream.shard_ids()
    sequence = 0
    for day in range(days):
        day_start = start_ms + day * _DAY_SECONDS * 1000
        columns = [_well_day(number, names[number], day, day_start, version, threshold) for number in range(wells)]
        for offset in range(0, _DAY_SECONDS, batch_seconds):
            for shard, members in sorted(shards.items()):
                rows = pa.concat_tables([columns[m].slice(offset, batch_seconds) for m in members])
                rows = rows.set_column(rows.schema.get_field_index("ingest_time"), "ingest_time", pa.array(
                    np.full(rows.num_rows, day_start + (offset + batch_seconds) * 1000), pa.timestamp("ms", "UTC")))
                sequence += 1
                backend.lake.write(WELL_DATA_TABLE, batch_key(shard_ids[shard], str(sequence)), rows)
                backend.lake.compact(WELL_DATA_TABLE, lambda key: True)
        print(f"  day {day + 1}/{days} written", file=sys.stderr)
    backend.lake.write(ANOMALY_EVENT_VERSIONS_TABLE, "bench-events", _events(names, start_ms, end_ms, version))
    return backend


def _well_day(number: int, well: str, day: int, day_start: int, version: str, threshold: float) -> pa.Table:
    """One well's day at 1 Hz: its own sensors (about half of 3W's) wandering slowly, with noise."""
    rng = np.random.default_rng([number, day])
    count = _DAY_SECONDS
    has = np.random.default_rng(number).random(len(SENSOR_COLUMNS)) < 0.55
    has[SENSOR_COLUMNS.index(PRESSURE_COLUMN)] = has[SENSOR_COLUMNS.index(TEMPERATURE_COLUMN)] = True
    columns: dict[str, pa.Array] = {}
    for index, name in enumerate(SENSOR_COLUMNS):
        if not has[index]:
            columns[name] = pa.nulls(count, pa.float32())
            continue
        level = np.random.default_rng([number, index]).uniform(1e1, 3e7)
        wander = np.cumsum(rng.normal(0, level * 1e-4, count // 60 + 1)).repeat(60)[:count]
        values = level + wander + rng.normal(0, level * 1e-3, count)
        columns[name] = pa.array(np.round(values, 1).astype(np.float32))
    scores = np.clip(0.45 + 0.03 * rng.standard_normal(count), 0, 1)
    for onset in rng.choice(count - 1_800, 2, replace=False):  # two anomalous stretches a day
        scores[onset:onset + 600] += 0.2
    times = day_start + np.arange(count, dtype=np.int64) * 1000
    columns |= {
        "well_id": pa.array([well] * count, pa.string()),
        "event_time": pa.array(times, pa.int64()).cast(pa.timestamp("ms", "UTC")),
        "class": pa.nulls(count, pa.int16()), "state": pa.nulls(count, pa.int16()),
        "pressure": columns[PRESSURE_COLUMN], "temperature": columns[TEMPERATURE_COLUMN],
        "anomaly_score": pa.array(scores), "anomaly_flag": pa.array((scores > threshold).astype(np.int8)),
        "model_version": pa.array([version] * count, pa.string()),
        "ingest_time": pa.nulls(count, pa.timestamp("ms", "UTC")),
    }
    return pa.table(columns, schema=WELL_DATA_SCHEMA)


def _events(wells: list[str], start_ms: int, end_ms: int, version: str) -> pa.Table:
    """Three closed alarm events per well, and an active one on every tenth well."""
    rows = []
    for number, well in enumerate(wells):
        for k in range(3 + (number % 10 == 0)):
            begin = start_ms + (k + 1) * (end_ms - start_ms) // 5 + number * 60_000
            active = k == 3
            rows.append({"event_id": f"{well}-{k}", "well_id": well, "start_time": begin,
                         "end_time": None if active else begin + 600_000, "state": "active" if active else "closed",
                         "peak_score": 0.7, "model_version": version, "label": None, "likely_class": 5,
                         "likely_class_probability": 0.8, "top_sensors": "p_tpt", "explanation": "bench",
                         "peak_time": begin + 300_000, "last_active_time": begin + 600_000,
                         "duration_seconds": 600.0, "active_rows": 600, "revision": 0})
    return pa.Table.from_pylist(rows, LAKE_TABLES[ANOMALY_EVENT_VERSIONS_TABLE].schema)


# -- the measurements ---------------------------------------------------------------------------
def history_view(backend: Backend, well: str) -> dict[str, float]:
    """The History page opening on ``well``'s last 24 h: its statements, each timed."""
    timings = {}
    started, cpu = time.perf_counter(), time.process_time()
    catalogue = history.wells(backend.sql)
    timings["wells"] = time.perf_counter() - started
    newest = insights._timestamp(catalogue.set_index("well_id").at[well, "last_event"])
    assert newest is not None
    end = newest.replace(microsecond=0) + timedelta(seconds=1)
    start = end - timedelta(hours=24)
    mark = time.perf_counter()
    present = history.sensors_of(backend.sql, well, start, end)
    timings["sensors_of"] = time.perf_counter() - mark
    chosen = tuple(s.column for s in present if s.column in history.DEFAULT_SENSORS)
    mark = time.perf_counter()
    result = history.history(backend.sql, well, start, end, chosen)
    timings["history"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - started
    timings["total_cpu"] = time.process_time() - cpu
    if not 1_000 <= len(result.frame) <= history.MAX_POINTS:
        raise RuntimeError(f"{well}: {len(result.frame)} buckets for 24 h")
    return timings


def live_refresh(backend: Backend) -> dict[str, float]:
    started, cpu = time.perf_counter(), time.process_time()
    view = insights.live_view(backend, datetime.now(UTC))
    timings = {"total": time.perf_counter() - started, "total_cpu": time.process_time() - cpu}
    if len(view.wells.snapshots) < 2 or view.alarms.empty:
        raise RuntimeError("the live view found no wells or no alarms")
    return timings


def runs(action: Callable[[int], dict[str, float]], count: int) -> dict[str, dict[str, float]]:
    """``action(k)`` once to warm up, then ``count`` times; p50 and p90 in milliseconds per timing."""
    action(0)
    samples = [action(k + 1) for k in range(count)]
    return {name: {"p50_ms": round(statistics.median(s[name] for s in samples) * 1000, 1),
                   "p90_ms": round(float(np.percentile([s[name] for s in samples], 90)) * 1000, 1)}
            for name in samples[0]}


def lake_shape(backend: Backend) -> dict[str, object]:
    files = backend.lake.files(WELL_DATA_TABLE)  # type: ignore[attr-defined]  # the local lake's listing
    return {"rows": backend.lake.row_count(WELL_DATA_TABLE), "files": len(files),
            "partitions": len({Path(f).parent.name for f in files}),
            "bytes": sum(os.path.getsize(f) for f in files)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="build the lake here, or reuse the one built here before")
    parser.add_argument("--wells", type=int, default=40)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--batch-seconds", type=int, default=300)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", type=Path, help="write the JSON result here too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        home = args.home or Path(scratch) / "home"
        built = 0.0
        if not (home / "lake-ready").exists():
            started = time.perf_counter()
            build_lake(home, args.wells, args.days, args.batch_seconds)
            built = time.perf_counter() - started
            (home / "lake-ready").write_text(json.dumps(vars(args), default=str))
        backend = open_backend(Settings(backend="local", home=home))
        wells = sorted(history.wells(backend.sql)["well_id"])
        result = {
            "machine": machine(),
            "load_average_at_start": round(os.getloadavg()[0], 1),
            "lake": {**lake_shape(backend), "build_seconds": round(built)},
            "history_24h_one_well": runs(lambda k: history_view(backend, wells[k % len(wells)]), args.runs),
            "live_refresh": runs(lambda k: live_refresh(backend), args.runs),
            "targets_ms": {"history_p50": HISTORY_TARGET_S * 1000, "live_p50": LIVE_TARGET_S * 1000},
            "load_average_at_end": round(os.getloadavg()[0], 1),
        }
    report(result, args.out)


if __name__ == "__main__":
    main()
