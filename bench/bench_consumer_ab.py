"""The consumer against the forest, before and after a change, alternating on one filled stream.

Run: ``.venv/bin/python bench/bench_consumer_ab.py --baseline CHECKOUT [--wells 8 --hours 18 --rounds 3]``

``bench_performance.py`` measures each checkout once, back to back; on a machine shared with
other work one pair of runs moves by a factor of two either way. This repeats the one measure
issue 14's first target is about, in rounds: per round, ``engine consume --exit-when-idle`` of
each checkout on its own copy of the same filled stream, in alternating order (A B, then B A),
bracketed by the forest's own ``score_samples`` on precomputed features (the reference, timed
before and after them). Besides wall
time it reports the consumer's CPU seconds (user + system, from the operating system), which a
busy machine inflates far less than wall time, and the ratios to the forest per round (wall to
wall, CPU to CPU). Both are
after start-up: a consumer that finds the stream empty (imports, model load, exit) is timed
each time too and taken off, as ``bench_performance.py`` does.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_performance import IDLE_EXIT_SECONDS, Timed, dataset, fresh_home, publish_for, run_timed  # noqa: E402

from bench.report import alternating_parser, report  # noqa: E402
from engine.features import compute_features  # noqa: E402
from engine.model import load  # noqa: E402
from engine.producer import count_rows  # noqa: E402
from engine.readers import discover, read_instance  # noqa: E402
from ml.train_model import train  # noqa: E402


class ForestReference:
    """scikit-learn's ``score_samples`` in one call on the features of up to 200k rows of ``data``
    (computed once): the reference rate of target 1.

    One timing moved between 580k and 911k rows/s from round to round at the same load, most of
    the spread of the ratio, so each round times it before and after its consumers and takes
    the rate of the two together (rows over seconds): a load change during the round weighs on
    the reference as on the consumers it brackets.
    """

    def __init__(self, data: Path, payload: bytes, manifest: dict) -> None:
        tables = [read_instance(f.path) for f in discover([data])[:20]]
        self.features = np.vstack([compute_features(t, {}) for t in tables])
        self.estimator = load(payload, manifest, "bench").estimator

    def timing(self) -> tuple[float, float]:
        """Wall and CPU seconds of one ``score_samples`` call over the features."""
        wall, cpu = time.perf_counter(), time.process_time()
        self.estimator.score_samples(self.features)
        return time.perf_counter() - wall, time.process_time() - cpu

    def rates(self, timings: list[tuple[float, float]]) -> tuple[float, float]:
        """Rows per wall second and per CPU second over ``timings`` taken together."""
        rows = self.features.shape[0] * len(timings)
        return rows / sum(wall for wall, _ in timings), rows / sum(cpu for _, cpu in timings)


def cpu_timed(home: Path, args: list[str], repo: Path) -> tuple[Timed, float]:
    """``run_timed``, and the CPU seconds (user + system) the process used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    timed = run_timed(home, args, repo)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if timed.exit_code:
        sys.exit(f"{repo}: {' '.join(args)} exited with {timed.exit_code}")
    return timed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def consume(stream_home: Path, repo: Path, root: Path, payload: bytes, manifest: dict) -> dict[str, float]:
    """One consumer of ``repo``'s code over a copy of the filled stream, and its start-up apart
    (a consumer that finds the stream empty: wall and CPU seconds): wall and CPU seconds after
    start-up, peak RSS."""
    empty = fresh_home(root, payload, manifest, repo)
    start_up, start_up_cpu = cpu_timed(empty, ["consume", "--exit-when-idle", "0"], repo)
    home = root / f"consume-{time.monotonic_ns()}"
    shutil.copytree(stream_home, home)
    publish_for(home, repo, payload, manifest)
    timed, cpu = cpu_timed(home, ["consume", "--exit-when-idle", str(IDLE_EXIT_SECONDS)], repo)
    shutil.rmtree(home)
    shutil.rmtree(empty)
    return {"start_up_s": start_up.seconds, "start_up_cpu_s": start_up_cpu,
            "wall_s": timed.seconds - IDLE_EXIT_SECONDS - start_up.seconds,
            "cpu_s": cpu - start_up_cpu, "peak_rss_mb": timed.peak_rss_mb}


def main() -> None:
    parser = alternating_parser(__doc__.splitlines()[0], rounds=3, baseline_required=True)
    parser.add_argument("--wells", type=int, default=8)
    parser.add_argument("--hours", type=float, default=18.0)
    args = parser.parse_args()
    engines = {"before": args.baseline.resolve(), "after": REPO}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = dataset(args.data_dir or root, "few", args.wells, args.hours)
        rows = count_rows(discover([data]))
        payload, manifest = train([data])
        stream = fresh_home(root, payload, manifest)
        cpu_timed(stream, ["replay", "--data", str(data), "--speed", "0"], REPO)
        reference = ForestReference(data, payload, manifest)
        rounds = []
        for index in range(args.rounds):
            opening = reference.timing()
            order = list(engines) if index % 2 == 0 else list(reversed(engines))
            runs = {label: consume(stream, engines[label], root, payload, manifest) for label in order}
            forest, forest_cpu = reference.rates([opening, reference.timing()])
            rounds.append({"load_average": round(os.getloadavg()[0], 1), "forest_rows_per_s": round(forest),
                           "forest_rows_per_cpu_s": round(forest_cpu),
                           **{label: {**{k: round(v, 2) for k, v in run.items()},
                                      "rows_per_s": round(rows / run["wall_s"]),
                                      "vs_forest": round(rows / run["wall_s"] / forest, 3),
                                      "cpu_vs_forest": round(rows / run["cpu_s"] / forest_cpu, 3)}
                              for label, run in runs.items()}})
            print(json.dumps(rounds[-1]), flush=True)
    summary = {label: {key: statistics.median(r[label][key] for r in rounds)
                       for key in ("start_up_s", "start_up_cpu_s", "wall_s", "cpu_s", "peak_rss_mb", "vs_forest",
                                   "cpu_vs_forest")}
               for label in engines}
    result = {"rows": rows, "rounds": rounds, "median": summary,
              "after_vs_before_wall": round(summary["before"]["wall_s"] / summary["after"]["wall_s"], 2),
              "after_vs_before_cpu": round(summary["before"]["cpu_s"] / summary["after"]["cpu_s"], 2),
              "start_up_after_vs_before_cpu": round(summary["after"]["start_up_cpu_s"]
                                                    / summary["before"]["start_up_cpu_s"], 2)}
    report(result, args.out)


if __name__ == "__main__":
    main()
