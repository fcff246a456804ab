"""Issue 14, target 5 for the consumer: its rate on many short wells against few long ones, in rounds.

Run: ``.venv/bin/python bench/bench_many_wells.py [--baseline CHECKOUT] [--rounds 3] [--data-dir DIR]``

The target: ``engine consume`` on 2,000 wells x 180 rows (360,000 rows; 3W's shape: some 2,000
short instances, each its own well) at no less than 0.7 of its rate on 8 wells x 18 h (518,400
rows), wall time with start-up included. ``bench_performance.py`` measures that once per
checkout among many other things; on a shared machine one pair of runs moves by a factor of two.
This measures only it, in rounds: per round and checkout (alternating the order, A B then B A),
``engine consume --exit-when-idle`` on a copy of each filled stream, wall time (less the idle wait)
and CPU seconds (user + system, which a busy machine inflates far less), and the many-wells rate
over the few-wells rate from each.

It also runs this checkout's consumer once in-process per data set with the time spent in the
feature code counted (``sensor_deviations``), and reports the ratio with that time taken off both
wall times: what the ratio would be if features cost nothing, to tell per-well costs of the
feature code from those of the rest of the consumer.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_consumer_ab import cpu_timed  # noqa: E402
from bench_performance import IDLE_EXIT_SECONDS, dataset, fresh_home  # noqa: E402

from bench.report import alternating_parser, machine, report  # noqa: E402
from engine import scoring  # noqa: E402
from engine.backend import open_backend  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.consumer import Consumer, ConsumerOptions  # noqa: E402
from engine.producer import count_rows  # noqa: E402
from engine.readers import discover  # noqa: E402
from ml.train_model import train  # noqa: E402

SETS = {"few": (8, 18.0), "many": (2000, 0.05)}


def consume(stream: Path, repo: Path, root: Path) -> dict[str, float]:
    """``engine consume`` of ``repo``'s code on a copy of a filled stream: wall (start-up included,
    idle wait excluded) and CPU seconds, peak RSS."""
    home = root / f"consume-{time.monotonic_ns()}"
    shutil.copytree(stream, home)
    timed, cpu = cpu_timed(home, ["consume", "--exit-when-idle", str(IDLE_EXIT_SECONDS)], repo)
    shutil.rmtree(home)
    return {"wall_s": round(timed.seconds - IDLE_EXIT_SECONDS, 2), "cpu_s": round(cpu, 2),
            "peak_rss_mb": timed.peak_rss_mb}


def feature_seconds(stream: Path, root: Path) -> dict[str, float]:
    """This checkout's consumer in-process on a copy of a filled stream: its run time and the part
    of it spent in the feature code."""
    home = root / f"features-{time.monotonic_ns()}"
    shutil.copytree(stream, home)
    spent = [0.0]
    original = scoring.sensor_deviations

    def timed(*args: object, **kwargs: object) -> object:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - started

    scoring.sensor_deviations = timed
    try:
        started = time.perf_counter()
        Consumer(open_backend(Settings(home=home)), ConsumerOptions(idle_exit_seconds=IDLE_EXIT_SECONDS)).run(
            threading.Event())
        total = time.perf_counter() - started - IDLE_EXIT_SECONDS
    finally:
        scoring.sensor_deviations = original
    shutil.rmtree(home)
    return {"run_s": round(total, 2), "features_s": round(spent[0], 2)}


def ratio(rows: dict[str, int], seconds: dict[str, float]) -> float:
    """The many-wells rate over the few-wells rate."""
    return round(rows["many"] / seconds["many"] / (rows["few"] / seconds["few"]), 3)


def main() -> None:
    parser = alternating_parser(__doc__.splitlines()[0], rounds=3)
    args = parser.parse_args()
    engines = {"this": REPO} if args.baseline is None else {"before": args.baseline.resolve(), "this": REPO}
    started = time.perf_counter()
    load_at_start = round(os.getloadavg()[0], 1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = {name: dataset(args.data_dir or root, name, *size) for name, size in SETS.items()}
        rows = {name: count_rows(discover([folder])) for name, folder in data.items()}
        payload, manifest = train([data["few"]])
        streams = {}
        for name, folder in data.items():
            streams[name] = fresh_home(root, payload, manifest)
            cpu_timed(streams[name], ["replay", "--data", str(folder), "--speed", "0"], REPO)
        rounds = []
        for index in range(args.rounds):
            order = list(engines) if index % 2 == 0 else list(reversed(engines))
            runs = {label: {name: consume(streams[name], engines[label], root) for name in SETS} for label in order}
            rounds.append({"load_average": round(os.getloadavg()[0], 1), **{
                label: {**run, "ratio_wall": ratio(rows, {n: r["wall_s"] for n, r in run.items()}),
                        "ratio_cpu": ratio(rows, {n: r["cpu_s"] for n, r in run.items()})}
                for label, run in runs.items()}})
            print(json.dumps(rounds[-1]), flush=True)
        features = {name: feature_seconds(stream, root) for name, stream in streams.items()}
    median = {label: {key: statistics.median(r[label][key] for r in rounds) for key in ("ratio_wall", "ratio_cpu")}
              | {f"{name}_wall_s": statistics.median(r[label][name]["wall_s"] for r in rounds) for name in SETS}
              for label in engines}
    this = median["this"]
    without = ratio(rows, {name: this[f"{name}_wall_s"] - features[name]["features_s"] for name in SETS})
    report({"machine": machine(), "rows": rows, "rounds": rounds, "median": median,
            "features_in_process": features, "this_ratio_wall_without_features": without,
            "load_average_at_start": load_at_start, "load_average_at_end": round(os.getloadavg()[0], 1),
            "bench_seconds": round(time.perf_counter() - started)}, args.out)


if __name__ == "__main__":
    main()
