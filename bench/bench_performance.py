"""Issue 14's performance targets, as ratios measured in one run on one machine.

Run: ``.venv/bin/python bench/bench_performance.py [--quick] [--baseline CHECKOUT] [--out FILE]``

Everything runs through the real command line on local homes, as a user would, and every
rate is set against a reference measured in the same run, so the numbers stay comparable on
a machine shared with other work:

* **producer / consumer vs the forest**: ``engine replay --speed 0`` alone, then ``engine
  consume --exit-when-idle`` alone on the filled stream (wall time of each process, start-up
  included, minus the consumer's idle wait), against the forest's own batch
  ``score_samples`` rate on precomputed features;
* **many wells vs few**: the same for 2,000 wells x 180 rows against 8 wells x 18 h;
* **two workers vs one**: ``consume --workers 2`` on a copy of the same filled stream, and
  what one lease balancing round costs;
* **training**: ``engine train`` on about 5 M rows, wall time and peak RSS, twice on a fresh home
  (the first run also fills the home's cache with the synthetic prior);
* **latency at real time**: 20 wells replayed at 1 Hz (``--speed 1``) while a consumer runs;
  per row, the stream's arrival time of its record to the moment the lake's manifest lists a
  file holding it (queryable), and per alarm, the arrival of the row that opened it to the
  moment its first version is listed in ``anomaly_event_versions`` (``anomaly_events`` shows it
  from then). The latency model is the trained forest with its threshold below every score, so
  each well raises an alarm on its 20th row: this measures the alarm path, not detection.

``--baseline CHECKOUT`` runs the same commands with another checkout's code (for example a
``git worktree`` of the commit before a change) interleaved with this one's, so before and after
come from the same run. ``--quick`` shrinks every size (about 5 minutes instead of 25); ``--only`` picks sections.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_pipeline import _engine, _peak_rss_mb, scoring_rates  # noqa: E402

from bench.report import machine, report  # noqa: E402
from engine import codec, model  # noqa: E402
from engine.backend import open_backend  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.demo_data import generate  # noqa: E402
from engine.producer import count_rows  # noqa: E402
from engine.readers import discover  # noqa: E402
from engine.schema import ANOMALY_EVENT_VERSIONS_TABLE, WELL_DATA_TABLE  # noqa: E402
from ml.train_model import train  # noqa: E402

IDLE_EXIT_SECONDS = 0.5


@dataclass(frozen=True)
class Sizes:
    """Data sizes of one run: (wells, hours) per data set, and the latency run's length."""

    few: tuple[int, float] = (8, 18.0)
    many: tuple[int, float] = (2000, 0.05)
    training: tuple[int, float] = (40, 35.0)
    latency_wells: int = 20
    #: At most 180: the latency run replays the first rows of the many-wells data set's wells.
    latency_seconds: int = 120


QUICK = Sizes(few=(8, 3.0), many=(400, 0.05), training=(8, 35.0), latency_wells=20, latency_seconds=30)


@dataclass
class Timed:
    """A process's wall time and peak RSS."""

    seconds: float
    peak_rss_mb: float
    exit_code: int


def run_timed(home: Path, args: list[str], repo: Path) -> Timed:
    """Run one engine command to its end, sampling its peak RSS."""
    started = time.perf_counter()
    process = _engine(home, *args, repo=repo)
    rss: dict[str, float] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_peak_rss_mb, args=(process.pid, stop, rss), daemon=True)
    watcher.start()
    code = process.wait()
    seconds = time.perf_counter() - started
    stop.set()
    return Timed(seconds, round(rss.get("peak", 0.0), 1), code)


def dataset(root: Path, name: str, wells: int, hours: float) -> Path:
    """Demo data under ``root/name`` (kept between runs when ``root`` is kept)."""
    folder = root / f"{name}-{wells}w-{hours}h"
    if not folder.is_dir():
        generate(folder / "partial", wells=wells, hours=hours, seed=7)
        (folder / "partial").rename(folder / "data")
    return folder / "data"


def readable_by(repo: Path, payload: bytes, manifest: dict) -> tuple[bytes, dict]:
    """The artifact in the form ``repo``'s code reads: a checkout from before the model's tree arrays
    (it has no ``engine/tree_walk.py``) gets the same model as a bare pickle."""
    if (repo / "engine" / "tree_walk.py").is_file() or "format" not in manifest:
        return payload, manifest
    return model.pickle_only(payload, manifest)


def publish_for(home: Path, repo: Path, payload: bytes, manifest: dict) -> None:
    """Publish (and activate) the model in ``home`` in the form ``repo``'s code reads."""
    open_backend(Settings(home=home)).models.publish(*readable_by(repo, payload, manifest))


def fresh_home(root: Path, payload: bytes, manifest: dict, repo: Path = REPO) -> Path:
    """A new local home with the model published for ``repo``'s code."""
    home = Path(tempfile.mkdtemp(dir=root, prefix="home-"))
    publish_for(home, repo, payload, manifest)
    return home


def start_up_seconds(repo: Path, root: Path, payload: bytes, manifest: dict) -> float:
    """A consumer's fixed cost: start, import, load the model, find the stream empty and exit."""
    home = fresh_home(root, payload, manifest, repo)
    timed = run_timed(home, ["consume", "--exit-when-idle", "0"], repo)
    shutil.rmtree(home)
    return timed.seconds


def pipeline(data: Path, repo: Path, root: Path, payload: bytes, manifest: dict) -> dict[str, float]:
    """Producer alone, then one consumer, then two workers on a copy of the same stream."""
    rows = count_rows(discover([data]))
    start_up = start_up_seconds(repo, root, payload, manifest)
    home = fresh_home(root, payload, manifest, repo)
    produce = run_timed(home, ["replay", "--data", str(data), "--speed", "0"], repo)
    twin = root / f"{home.name}-twin"
    shutil.copytree(home, twin)
    one = run_timed(home, ["consume", "--exit-when-idle", str(IDLE_EXIT_SECONDS)], repo)
    two = run_timed(twin, ["consume", "--workers", "2", "--exit-when-idle", str(IDLE_EXIT_SECONDS)], repo)
    landed = [open_backend(Settings(home=h)).lake.row_count(WELL_DATA_TABLE) for h in (home, twin)]
    if landed != [rows, rows] or produce.exit_code or one.exit_code or two.exit_code:
        sys.exit(f"{data}: landed {landed} of {rows} rows (exit codes {produce.exit_code}, "
                 f"{one.exit_code}, {two.exit_code})")
    shutil.rmtree(home)
    shutil.rmtree(twin)
    return {
        "rows": rows,
        "producer_rows_per_s": rows / produce.seconds,
        "consumer_rows_per_s": rows / (one.seconds - IDLE_EXIT_SECONDS),
        "consumer_start_up_s": start_up,
        "consumer_after_start_up_rows_per_s": rows / (one.seconds - IDLE_EXIT_SECONDS - start_up),
        "consumer_peak_rss_mb": one.peak_rss_mb,
        "two_workers_rows_per_s": rows / (two.seconds - IDLE_EXIT_SECONDS),
    }


def lease_balance_ms(root: Path, rounds: int = 20) -> float:
    """Median time of one lease balancing round of a worker holding every shard (local backend)."""
    backend = open_backend(Settings(home=Path(tempfile.mkdtemp(dir=root, prefix="leases-"))))
    shards = backend.stream.shard_ids()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        backend.leases.balance("bench-worker", shards)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def training(data: Path, repo: Path, root: Path) -> dict[str, float]:
    """Two runs on a fresh home: the first also fills the home's cache (the synthetic prior), the second
    is what every later training costs."""
    rows = count_rows(discover([data]))
    home = Path(tempfile.mkdtemp(dir=root, prefix="train-home-"))
    result: dict[str, float] = {"rows": rows}
    for run in ("first", "later"):
        timed = run_timed(home, ["train", "--data", str(data), "--model-out", str(home / "trained.joblib")], repo)
        if timed.exit_code:
            sys.exit(f"training on {data} failed with exit code {timed.exit_code}")
        result |= {f"{run}_seconds": timed.seconds, f"{run}_peak_rss_mb": timed.peak_rss_mb}
    return result


# -- latency ----------------------------------------------------------------------------------
def latency_data(source: Path, target: Path, wells: int, seconds: int) -> Path:
    """The first ``seconds`` rows of ``wells`` demo wells, shifted to start at the same instant."""
    by_well: dict[str, Path] = {}
    for instance in discover([source]):
        by_well.setdefault(instance.well_id, instance.path)  # the well's first file (names sort by start)
    chosen = sorted(by_well.items())[:wells]
    target.mkdir(parents=True, exist_ok=True)
    start = None
    for well, path in chosen:
        table = pq.read_table(path).slice(0, seconds)
        times = table["timestamp"].cast(pa.timestamp("ms")).cast(pa.int64()).to_numpy()
        start = times[0] if start is None else start
        shifted = pa.array(times - times[0] + start).cast(pa.timestamp("ms"))
        table = table.set_column(table.schema.get_field_index("timestamp"), "timestamp", shifted)
        pq.write_table(table, target / f"{well}.parquet")
    return target


def _alarm_everything(payload: bytes, manifest: dict) -> tuple[bytes, dict]:
    """The same forest with a threshold below every score: each well's 20th row opens an alarm."""
    forest = model.load(payload, manifest, "bench").estimator
    summary = {k: v for k, v in manifest.items() if k not in ("sha256", "features", "feature_version", "threshold",
                                                              "libraries", "version")}
    return model.dump(forest, -1e9, summary)


def _watch_manifest(lake_db: Path, seen: dict[tuple[str, str], float], stop: threading.Event) -> None:
    """Record when each lake file is first listed (what a query reads), every 20 ms."""
    while not stop.is_set():
        try:
            with sqlite3.connect(lake_db) as db:
                listed = db.execute("SELECT table_name, path FROM files").fetchall()
            now = time.time()
            for key in listed:
                seen.setdefault(key, now)
        except sqlite3.OperationalError:
            pass  # the consumer has not created the lake yet
        stop.wait(0.02)


def _arrivals(home: Path) -> dict[tuple[str, int], float]:
    """(well, event time ms) -> when its stream record arrived (epoch s)."""
    arrived: dict[tuple[str, int], float] = {}
    with sqlite3.connect(home / "stream.sqlite") as db:
        for key, data, at in db.execute("SELECT partition_key, data, arrived_at FROM records"):
            for t in codec.decode(bytes(data))["event_time"].cast(pa.int64()).to_pylist():
                arrived.setdefault((key, t), at)
    return arrived


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"samples": 0}
    return {"samples": len(values), "p50_s": round(float(np.percentile(values, 50)), 3),
            "p99_s": round(float(np.percentile(values, 99)), 3), "max_s": round(max(values), 3)}


def latency(data: Path, repo: Path, root: Path, payload: bytes, manifest: dict) -> dict[str, object]:
    """Replay at 1 Hz beside a running consumer; per row and per alarm, arrival -> listed in the lake."""
    home = fresh_home(root, *_alarm_everything(payload, manifest), repo)
    backend = open_backend(Settings(home=home))
    consumer = _engine(home, "consume", repo=repo)
    while not any(lease.owner for lease in backend.leases.leases()):  # started: it holds its shards
        time.sleep(0.1)
    seen: dict[tuple[str, str], float] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_manifest, args=(home / "lake" / "_manifest.sqlite", seen, stop))
    watcher.start()
    _engine(home, "replay", "--data", str(data), "--speed", "1", repo=repo).wait()
    time.sleep(3.0)  # let the last second land
    stop.set()
    watcher.join()
    consumer.send_signal(signal.SIGTERM)
    consumer.wait()
    arrived = _arrivals(home)
    row_landed: dict[tuple[str, int], float] = {}
    alarm_listed: dict[tuple[str, int], float] = {}  # (well, start) -> when its first version was listed
    for (table, path), listed_at in seen.items():
        file = home / "lake" / path
        if not file.exists() or table not in (WELL_DATA_TABLE, ANOMALY_EVENT_VERSIONS_TABLE):
            continue  # a file replaced by a compaction held rows listed earlier in another file
        if table == WELL_DATA_TABLE:
            rows = pq.read_table(file, columns=["well_id", "event_time"])
            keys = zip(rows["well_id"].to_pylist(), rows["event_time"].cast(pa.int64()).to_pylist(), strict=True)
            _earliest(row_landed, keys, listed_at)
        else:
            versions = pq.read_table(file, columns=["well_id", "start_time", "revision"])
            firsts = versions.filter(pc.equal(versions["revision"], 0))
            keys = zip(firsts["well_id"].to_pylist(), firsts["start_time"].cast(pa.int64()).to_pylist(), strict=True)
            _earliest(alarm_listed, keys, listed_at)
    shutil.rmtree(home)
    return {"rows": _percentiles([at - arrived[key] for key, at in row_landed.items()]),
            "alarms": _percentiles([at - arrived[key] for key, at in alarm_listed.items()])}


def _earliest(listed: dict[tuple[str, int], float], keys: Iterable[tuple[str, int]], at: float) -> None:
    """Keep the earliest listing time of each key (compactions list the same rows again later)."""
    for key in keys:
        listed[key] = min(listed.get(key, at), at)


# -- the run ----------------------------------------------------------------------------------
SECTIONS = ("pipeline", "training", "latency")


@dataclass(frozen=True)
class Run:
    """What one run measures: its sizes, the checkouts compared, and where data and homes live."""

    sizes: Sizes
    engines: dict[str, Path]
    root: Path
    data_root: Path

    def each(self, measure: Callable[[Path], dict]) -> dict[str, dict]:
        """One measurement for every checkout, back to back, so load changes hit them alike."""
        return {label: measure(repo) for label, repo in self.engines.items()}


def pipeline_section(run: Run, payload: bytes, manifest: dict, forest: float) -> dict[str, dict]:
    few = dataset(run.data_root, "few", *run.sizes.few)
    many = dataset(run.data_root, "many", *run.sizes.many)
    few_all = run.each(lambda repo: pipeline(few, repo, run.root, payload, manifest))
    many_all = run.each(lambda repo: pipeline(many, repo, run.root, payload, manifest))
    result = {}
    for label in run.engines:
        few_rates, many_rates = few_all[label], many_all[label]
        consumer = few_rates["consumer_rows_per_s"]
        result[label] = {
            "few_wells": _rounded(few_rates),
            "many_wells": _rounded(many_rates),
            "ratios": {
                "consumer_vs_forest": round(consumer / forest, 3),
                "consumer_after_start_up_vs_forest": round(few_rates["consumer_after_start_up_rows_per_s"] / forest, 3),
                "producer_vs_forest": round(few_rates["producer_rows_per_s"] / forest, 3),
                "two_workers_vs_one": round(few_rates["two_workers_rows_per_s"] / consumer, 3),
                "many_vs_few_producer": round(many_rates["producer_rows_per_s"] / few_rates["producer_rows_per_s"], 3),
                "many_vs_few_consumer": round(many_rates["consumer_rows_per_s"] / consumer, 3),
            },
        }
    return result


def measure(run: Run, sections: tuple[str, ...]) -> dict[str, object]:
    few = dataset(run.data_root, "few", *run.sizes.few)
    payload, manifest = train([few])
    forest = scoring_rates(few, payload, manifest)["score_samples_rows_per_s"]
    result: dict[str, object] = {"forest_score_samples_rows_per_s": round(forest),
                                 "lease_balance_round_ms": round(lease_balance_ms(run.root), 2)}
    if "pipeline" in sections:
        result["pipeline"] = pipeline_section(run, payload, manifest, forest)
    if "training" in sections:
        big = dataset(run.data_root, "training", *run.sizes.training)
        result["training"] = run.each(lambda repo: _rounded(training(big, repo, run.root)))
    if "latency" in sections:
        many = dataset(run.data_root, "many", *run.sizes.many)
        data = latency_data(many, run.root / "latency-data", run.sizes.latency_wells, run.sizes.latency_seconds)
        result["latency_1hz"] = run.each(lambda repo: latency(data, repo, run.root, payload, manifest))
    return result


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 1) if isinstance(v, float) else v for k, v in values.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    parser.add_argument("--baseline", type=Path, help="another checkout to measure in the same run (before)")
    parser.add_argument("--data-dir", type=Path, help="keep generated data here and reuse it in later runs")
    parser.add_argument("--only", choices=SECTIONS, nargs="+", default=SECTIONS, help="measure only these")
    parser.add_argument("--out", type=Path, help="write the JSON result here too")
    args = parser.parse_args()
    sizes = QUICK if args.quick else Sizes()
    engines = {"this": REPO} if args.baseline is None else {"baseline": args.baseline.resolve(), "this": REPO}
    with tempfile.TemporaryDirectory() as tmp:
        data_root = args.data_dir or Path(tmp) / "data"
        data_root.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        result = {
            "machine": machine(),
            "load_average_at_start": round(os.getloadavg()[0], 1),
            "sizes": asdict(sizes),
            **measure(Run(sizes, engines, Path(tmp), data_root), tuple(args.only)),
            "load_average_at_end": round(os.getloadavg()[0], 1),
            "bench_seconds": round(time.perf_counter() - started),
        }
    report(result, args.out)


if __name__ == "__main__":
    main()
