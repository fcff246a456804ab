"""End-to-end throughput of the local pipeline, with the model's raw scoring rate beside it.

Run: ``.venv/bin/python bench/bench_pipeline.py [--wells 6 --hours 48]`` (``make bench``).

Generates demo data (6 wells x 48 h = 1,036,800 rows by default), trains a model, then runs
the real command line: a consumer process (``engine consume --exit-when-idle``) and the
producer (``engine replay --speed 0``) at the same time, as a user would. Reports, from one
run on one machine so the ratios are comparable:

* end-to-end rows/s: rows / (replay start -> consumer has landed everything and exited);
* producer-only rows/s and consumer peak RSS;
* bytes per observation on the wire (stream record payloads / rows);
* the model's raw batch-scoring rate (``score_samples`` on precomputed features) and the
  feature code's rate, so the pipeline's overhead over pure scoring is visible.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.backend import open_backend  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.demo_data import generate  # noqa: E402
from engine.features import compute_features  # noqa: E402
from engine.producer import count_rows  # noqa: E402
from engine.readers import discover, read_instance  # noqa: E402
from engine.schema import WELL_DATA_TABLE  # noqa: E402
from ml.train_model import train  # noqa: E402


def _engine(home: Path, *args: str, repo: Path = REPO) -> subprocess.Popen[bytes]:
    """The engine's command line on a local home; ``repo`` picks the checkout whose code runs."""
    env = {**os.environ, "PETROSTREAM_HOME": str(home), "PETROSTREAM_BACKEND": "local"}
    return subprocess.Popen([sys.executable, "-m", "engine", *args], cwd=repo, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _peak_rss_mb(pid: int, stop: threading.Event, result: dict[str, float]) -> None:
    import psutil

    process = psutil.Process(pid)
    while not stop.is_set():
        try:
            result["peak"] = max(result.get("peak", 0.0), process.memory_info().rss / 2**20)
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)


def scoring_rates(data: Path, model_payload: bytes, manifest: dict) -> dict[str, float]:
    """Rows/s of the feature code and of ``score_samples`` alone, on 200k demo rows."""
    from engine.model import load

    model = load(model_payload, manifest, "bench")
    tables = [read_instance(f.path) for f in discover([data])[:20]]
    rows = sum(t.num_rows for t in tables)
    started = time.perf_counter()
    features = np.vstack([compute_features(t, {}) for t in tables])
    feature_rate = rows / (time.perf_counter() - started)
    started = time.perf_counter()
    model.estimator.score_samples(features)
    return {"feature_rows_per_s": feature_rate, "score_samples_rows_per_s": rows / (time.perf_counter() - started),
            "scoring_sample_rows": rows}


def _wait_for_first_record(home: Path) -> None:
    while True:
        try:
            with sqlite3.connect(home / "stream.sqlite") as db:
                if db.execute("SELECT 1 FROM records LIMIT 1").fetchone():
                    return
        except sqlite3.OperationalError:
            pass  # the producer has not created the stream yet
        time.sleep(0.05)


def wire_bytes(home: Path) -> int:
    with sqlite3.connect(home / "stream.sqlite") as db:
        return int(db.execute("SELECT SUM(length(data)) FROM records").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wells", type=int, default=6)
    parser.add_argument("--hours", type=float, default=48.0)
    parser.add_argument("--out", type=Path, help="write the JSON result here too")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data, home = root / "data", root / "home"
        started = time.perf_counter()
        generate(data, wells=args.wells, hours=args.hours, seed=7)
        rows = count_rows(discover([data]))
        generate_s = time.perf_counter() - started
        started = time.perf_counter()
        payload, manifest = train([data])
        train_s = time.perf_counter() - started
        open_backend(Settings(home=home)).models.publish(payload, manifest)

        started = time.perf_counter()
        producer = _engine(home, "replay", "--data", str(data), "--speed", "0")
        _wait_for_first_record(home)  # the consumer exits once the stream is drained, so not before it fills
        consumer = _engine(home, "consume", "--exit-when-idle", "1")
        rss: dict[str, float] = {}
        stop = threading.Event()
        watcher = threading.Thread(target=_peak_rss_mb, args=(consumer.pid, stop, rss), daemon=True)
        watcher.start()
        producer.wait()
        replay_s = time.perf_counter() - started
        consumer.wait()
        end_to_end_s = time.perf_counter() - started - 1.0  # minus the idle second before exiting
        stop.set()
        landed = open_backend(Settings(home=home)).lake.row_count(WELL_DATA_TABLE)
        result = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "rows": rows,
            "rows_landed": landed,
            "generate_s": round(generate_s, 1),
            "train_s": round(train_s, 1),
            "replay_rows_per_s": round(rows / replay_s),
            "end_to_end_rows_per_s": round(rows / end_to_end_s),
            "wire_bytes_per_observation": round(wire_bytes(home) / rows, 2),
            "consumer_peak_rss_mb": round(rss.get("peak", 0.0), 1),
            **{k: round(v) for k, v in scoring_rates(data, payload, manifest).items()},
        }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    if landed != rows:
        sys.exit(f"landed {landed} rows of {rows}")


if __name__ == "__main__":
    main()
