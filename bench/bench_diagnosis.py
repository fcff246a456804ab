"""What diagnosing alarms costs the consumer: its per-batch work with and without the diagnosis.

Run: ``.venv/bin/python bench/bench_diagnosis.py [--wells 6 --hours 8 --batch 2000]``.

Generates demo data (with events, so alarms open and grow), trains a model (detector and
diagnosis classifier), then replays every well in micro-batches of ``--batch`` rows through
exactly the consumer's per-batch calls, once as before this feature (``score_observations``,
``update_alarms`` without evidence) and once with the diagnosis (``score_and_explain``,
``update_alarms`` with evidence). The two runs alternate ``--repeats`` times on the same
data and the fastest of each is kept. On a shared machine the two rates differ by more than
the diagnosis costs, so the run with diagnosis also times every diagnosis it makes (one per
alarm piece: when an event opens and whenever a later batch brings a higher peak): their sum
as a share of that run is the slowdown the diagnosis causes, free of background noise.
Lake writes and checkpoints, which the diagnosis does not touch, are left out, so the ratio
is an upper bound on the slowdown of the whole consumer.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.alarms import AlarmPolicy, update_alarms  # noqa: E402
from engine.demo_data import generate  # noqa: E402
from engine.diagnosis import Diagnoser, Diagnosis, Evidence  # noqa: E402
from engine.features import WellState  # noqa: E402
from engine.model import Model, load  # noqa: E402
from engine.readers import discover, read_instance  # noqa: E402
from engine.scoring import score_and_explain, score_observations  # noqa: E402
from ml.train_model import files_by_well, train  # noqa: E402


@dataclass(frozen=True)
class _Timed(Diagnoser):
    """The model's diagnoser, timing each call."""

    spent: list[float] = field(default_factory=list)

    def diagnose(self, deviations: np.ndarray) -> Diagnosis:
        started = time.perf_counter()
        found = super().diagnose(deviations)
        self.spent.append(time.perf_counter() - started)
        return found


def replay(model: Model, batches: list[pa.Table], diagnose: bool) -> tuple[float, list[float]]:
    """Seconds for all batches through the consumer's calls, and the seconds of each diagnosis made.

    Without diagnosis this is the consumer before the feature: ``score_observations`` and
    ``update_alarms`` without evidence.
    """
    policy = AlarmPolicy.from_manifest(model.manifest)
    states: dict[str, WellState] = {}
    timed = _Timed(model.classifier, model.diagnoser.min_probability)
    started = time.perf_counter()
    for batch in batches:
        if diagnose:
            rows, evidence = score_and_explain(batch, states, model)
            update_alarms(rows, states, policy, Evidence(evidence.deviations, timed))
        else:
            update_alarms(score_observations(batch, states, model), states, policy)
    return time.perf_counter() - started, timed.spent


def classifier_call_ms(model: Model, rounds: int = 300) -> float:
    """Median milliseconds of one diagnosis (classifier + explanation) of one peak row."""
    rng = np.random.default_rng(0)
    rows = rng.normal(0, 3, (rounds, 9, 5))
    times = []
    for row in rows:
        started = time.perf_counter()
        model.diagnoser.diagnose(row)
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wells", type=int, default=6)
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "demo"
        generate(data, wells=args.wells, hours=args.hours, seed=7)
        model = load(*train([data]), "bench")
        tables = [read_instance(f.path) for group in files_by_well(discover([data])).values() for f in group]
    batches = [t.slice(start, args.batch) for t in tables for start in range(0, t.num_rows, args.batch)]
    rows = sum(t.num_rows for t in tables)
    replay(model, batches, True)  # warm-up: imports, caches, the classifier's first call
    best = {False: np.inf, True: np.inf}
    spent: list[float] = []
    for _ in range(args.repeats):
        for diagnose in (False, True):
            seconds, calls = replay(model, batches, diagnose)
            if seconds < best[diagnose]:
                best[diagnose] = seconds
                spent = calls if diagnose else spent
    result = {
        "rows": rows, "batch_rows": args.batch, "batches": len(batches),
        "rows_per_s_without_diagnosis": round(rows / best[False]),
        "rows_per_s_with_diagnosis": round(rows / best[True]),
        "diagnoses": len(spent),
        "seconds_in_diagnosis": round(sum(spent), 4),
        "diagnosis_share_of_run_percent": round(100 * sum(spent) / best[True], 3),
        "ms_per_diagnosis_median": round(1000 * float(np.median(spent)), 3) if spent else None,
        "ms_per_diagnosis_isolated": round(classifier_call_ms(model), 3),
        "machine": f"{platform.machine()}, {platform.python_version()}",
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
