"""The producer's issue-14 ratios from alternating runs: one sample each is too noisy on a shared machine.

Run: ``.venv/bin/python bench/bench_producer.py --baseline CHECKOUT [--rounds 5] [--data-dir DIR] [--out FILE]``

Each round measures, back to back: the forest's batch ``score_samples`` rate (the reference of
``bench_performance.py``), then ``engine replay --speed 0`` of this checkout and of the baseline
on 8 wells x 18 h and on 2,000 wells x 180 rows (wall time of the process, start-up included).
A producer run takes one to eight seconds, so a load spike moves one sample by half; the
medians over the rounds, and their ratios, are what to compare.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_performance import Sizes, dataset  # noqa: E402
from bench_pipeline import scoring_rates  # noqa: E402

from bench.report import alternating_parser, report  # noqa: E402
from engine.producer import count_rows  # noqa: E402
from engine.readers import discover  # noqa: E402
from ml.train_model import train  # noqa: E402


def replay_rate(repo: Path, data: Path, rows: int, root: Path) -> float:
    """Rows/s of one ``engine replay --speed 0`` of ``data`` with ``repo``'s code, on a fresh local home."""
    home = Path(tempfile.mkdtemp(dir=root, prefix="home-"))
    env = {**os.environ, "PETROSTREAM_HOME": str(home), "PETROSTREAM_BACKEND": "local"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "engine", "replay", "--data", str(data), "--speed", "0"],
                   cwd=repo, env=env, check=True, capture_output=True)
    rate = rows / (time.perf_counter() - started)
    shutil.rmtree(home)
    return rate


def main() -> None:
    parser = alternating_parser(__doc__.splitlines()[0], rounds=5, baseline_required=True)
    args = parser.parse_args()
    engines = {"baseline": args.baseline.resolve(), "this": REPO}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data_root = args.data_dir or root / "data"
        data_root.mkdir(parents=True, exist_ok=True)
        sets = {"few": dataset(data_root, "few", *Sizes().few), "many": dataset(data_root, "many", *Sizes().many)}
        rows = {name: count_rows(discover([data])) for name, data in sets.items()}
        payload, manifest = train([sets["few"]])
        samples: dict[str, list[float]] = {"forest": []}
        loads = []
        for _ in range(args.rounds):
            samples["forest"].append(scoring_rates(sets["few"], payload, manifest)["score_samples_rows_per_s"])
            for name, data in sets.items():
                for label, repo in engines.items():
                    samples.setdefault(f"{label}_{name}", []).append(replay_rate(repo, data, rows[name], root))
            loads.append(round(os.getloadavg()[0], 1))
    median = {key: statistics.median(values) for key, values in samples.items()}
    result = {
        "rows": rows, "rounds": args.rounds, "load_average_after_each_round": loads,
        "median_rows_per_s": {key: round(value) for key, value in median.items()},
        "samples_rows_per_s": {key: [round(v) for v in values] for key, values in samples.items()},
        "producer_vs_forest": {label: round(median[f"{label}_few"] / median["forest"], 3) for label in engines},
        "many_vs_few": {label: round(median[f"{label}_many"] / median[f"{label}_few"], 3) for label in engines},
    }
    report(result, args.out)


if __name__ == "__main__":
    main()
