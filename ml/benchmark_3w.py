"""The published 3W benchmark 2 (anomaly detection), reference configuration and ours side by side.

Protocol (Vargas et al., 2019, benchmark 2, as in the dataset's published demo code):

* instances: real ones (no ``SIMULATED_``/``DRAWN_`` prefix) of classes 1, 2, 5, 6, 7, 8 with
  at least 20 minutes (1,200 rows) labeled normal;
* windows of 3 minutes (180 rows); up to 15 normal windows ending at the last normal row,
  spaced by 180 rows or closer when the normal period is short; the first 60 % (rounded
  down) train a model for this instance alone, the rest are test windows;
* as many abnormal test windows as normal test ones, half (rounded up) from the transient,
  starting 179 rows before its first row, the rest from the steady event, taking from one
  period what the other lacks;
* the score of an instance is its window accuracy (= micro F1); the table gives the mean and
  standard deviation over the instances.

Detectors, each trained on the same training windows of each instance:

* **reference** (the published configuration, untuned): per variable and window the mean,
  median, standard deviation, variance, minimum and maximum of the raw values (missing
  values set to 0; variables constant over the training windows dropped), z-scored on the
  training windows, into a default scikit-learn Isolation Forest; its own prediction decides.
* **PetroStream**: the engine's streaming features (:mod:`engine.features`), computed causally
  over each instance from its first row exactly as the consumer would, and *one* Isolation
  Forest for all instances, as in production (features relative to each well's own behaviour
  are what lets one model watch many wells): trained and calibrated with the production
  settings on the rows of every instance's training windows, never on a test window. A window
  is abnormal when the production alarm rule fires inside it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
from sklearn.ensemble import IsolationForest
from sklearn.preprocessing import StandardScaler

from engine.errors import InputError
from engine.features import compute_features
from engine.readers import InstanceFile, discover, read_instance
from engine.schema import NORMAL_CLASS, SENSOR_COLUMNS, TRANSIENT_OFFSET
from ml.train_model import TrainingOptions, calibrate

Progress = Callable[[int, int, str], None]

BENCHMARK_CLASSES: tuple[int, ...] = (1, 2, 5, 6, 7, 8)
MIN_NORMAL_ROWS = 20 * 60
WINDOW_ROWS = 3 * 60
MAX_WINDOWS_PER_PERIOD = 15
TRAIN_SHARE = 0.6
#: The demo code drops variables whose values over the training windows vary less than this.
MIN_VARIABLE_STD = 0.01
DETECTORS: tuple[str, ...] = ("reference", "petrostream")
PERIODS: tuple[str, ...] = ("normal", "transient", "steady")


@dataclass(frozen=True)
class Windows:
    """Window start rows of one instance: training (normal) and test, with each test window's period."""

    train: list[int]
    test: list[int]
    periods: list[str]  # "normal", "transient" or "steady"

    @property
    def truth(self) -> list[int]:
        """1 for an abnormal test window, 0 for a normal one."""
        return [int(p != "normal") for p in self.periods]


@dataclass(frozen=True)
class InstanceScore:
    """One instance's test-window accuracy under each detector."""

    path: str
    event_class: int
    train_windows: int
    periods: list[str]
    correct: dict[str, list[bool]]  # per detector, per test window

    @property
    def test_windows(self) -> int:
        return len(self.periods)

    @property
    def accuracy(self) -> dict[str, float]:
        return {detector: float(np.mean(hits)) for detector, hits in self.correct.items()}


@dataclass
class BenchmarkResult:
    """Per-instance accuracies and their mean and std per detector."""

    data: str
    instances: list[InstanceScore]
    skipped: dict[str, str]

    def summary(self) -> dict[str, dict[str, float]]:
        """Per detector: mean and std of the instances' accuracies, and the share of windows right per period."""
        table = {}
        for detector in DETECTORS:
            values = np.array([i.accuracy[detector] for i in self.instances])
            table[detector] = {"mean": float(values.mean()), "std": float(values.std())}
            for period in PERIODS:
                hits = [hit for i in self.instances for p, hit in zip(i.periods, i.correct[detector], strict=True)
                        if p == period]
                table[detector][f"{period}_windows_right"] = float(np.mean(hits)) if hits else math.nan
        return table

    def format_table(self) -> str:
        """The benchmark table as printed by ``engine benchmark-3w``."""
        summary = self.summary()
        lines = [f"3W benchmark 2 on {self.data}: {len(self.instances)} instances "
                 f"(real, classes {', '.join(map(str, BENCHMARK_CLASSES))}, >= {MIN_NORMAL_ROWS // 60} min normal); "
                 f"{len(self.skipped)} files not eligible",
                 f"{'detector':<46} {'mean window accuracy':>20} {'std':>6}"]
        names = {"reference": "reference (IF on window statistics, published)",
                 "petrostream": "PetroStream (streaming features + IF)"}
        lines[-1] += "   windows right: normal transient steady"
        for detector in DETECTORS:
            row = summary[detector]
            lines.append(f"{names[detector]:<46} {row['mean']:>20.3f} {row['std']:>6.3f}   {'':>15}"
                         + " ".join(f"{row[f'{p}_windows_right']:>{len(p)}.2f}" for p in PERIODS))
        lines.append("")
        lines.append(f"{'instance':<40} {'class':>5} {'train':>5} {'test':>5} {'reference':>9} {'PetroStream':>11}")
        for i in self.instances:
            lines.append(f"{Path(i.path).name:<40} {i.event_class:>5} {i.train_windows:>5} {i.test_windows:>5} "
                         f"{i.accuracy['reference']:>9.3f} {i.accuracy['petrostream']:>11.3f}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        instances = [{**asdict(i), "accuracy": i.accuracy} for i in self.instances]
        return {"data": self.data, "summary": self.summary(), "instances": instances, "skipped": self.skipped}


def run_benchmark(data_dir: Path, progress: Progress | None = None, seed: int = 0) -> BenchmarkResult:
    """Run the protocol on every eligible instance under ``data_dir``."""
    files = discover([data_dir])
    candidates = [f for f in files if f.event_class in BENCHMARK_CLASSES and _is_real(f)]
    skipped = {str(f.path): "not a real instance of a benchmark class" for f in files if f not in candidates}
    eligible: list[tuple[InstanceFile, Windows, np.ndarray]] = []
    reference: list[np.ndarray] = []
    for done, instance in enumerate(candidates, start=1):
        table = read_instance(instance.path)
        labels = pc.fill_null(table["class"], -1).to_numpy().astype(np.int64)
        windows = protocol_windows(labels, instance.event_class)
        if windows is None:
            skipped[str(instance.path)] = f"fewer than {MIN_NORMAL_ROWS} normal rows or no abnormal window"
        else:
            values = np.column_stack([table[c].to_numpy(zero_copy_only=False).astype(np.float64)
                                      for c in SENSOR_COLUMNS])
            reference.append(reference_predictions(values, windows, seed))
            eligible.append((instance, windows, compute_features(table, {})))
        if progress:
            progress(done, len(candidates), instance.path.name)
    if not eligible:
        raise InputError(f"{data_dir}: no instance qualifies for 3W benchmark 2 (real instances of classes "
                         f"{', '.join(map(str, BENCHMARK_CLASSES))} with >= {MIN_NORMAL_ROWS} normal rows)")
    ours = petrostream_predictions([f for _, _, f in eligible], [w for _, w, _ in eligible], seed)
    scores = [
        InstanceScore(str(instance.path), int(instance.event_class), len(windows.train), windows.periods,
                      {"reference": _hits(ref, windows), "petrostream": _hits(own, windows)})
        for (instance, windows, _), ref, own in zip(eligible, reference, ours, strict=True)
    ]
    return BenchmarkResult(str(data_dir), scores, skipped)


def _is_real(instance: InstanceFile) -> bool:
    return not instance.path.name.startswith(("SIMULATED", "DRAWN"))


def protocol_windows(labels: np.ndarray, event_class: int) -> Windows | None:
    """Window starts of one instance under the protocol, or None if it is not eligible.

    Follows the published sampling rules literally, including their rounding and spacing.
    """
    if (labels == NORMAL_CLASS).sum() < MIN_NORMAL_ROWS:
        return None
    normal = _period(labels, NORMAL_CLASS, before=False, after=False)
    transient = _period(labels, event_class + TRANSIENT_OFFSET, before=True, after=False)
    steady = _period(labels, event_class, before=True, after=True)
    available_normal = normal[1] - normal[0] + 1 - WINDOW_ROWS
    if available_normal <= 0:
        return None
    n_normal = min(MAX_WINDOWS_PER_PERIOD, available_normal)
    n_train = int(TRAIN_SHARE * n_normal)
    n_test = n_normal - n_train
    n_transient, n_steady = _split_abnormal(n_test, _available(transient), _available(steady))
    if n_transient + n_steady == 0:
        return None
    step = min(WINDOW_ROWS, _step(n_normal, available_normal))
    normal_starts = [normal[1] - WINDOW_ROWS + 1 - (n_normal - 1 - k) * step for k in range(n_normal)]
    transient_starts = _forward_starts(transient, n_transient, math.inf)
    steady_starts = _forward_starts(steady, n_steady, WINDOW_ROWS)
    periods = ["normal"] * n_test + ["transient"] * len(transient_starts) + ["steady"] * len(steady_starts)
    return Windows(normal_starts[:n_train], normal_starts[n_train:] + transient_starts + steady_starts, periods)


def _period(labels: np.ndarray, label: int, before: bool, after: bool) -> tuple[int, int] | None:
    """First and last row of a label, widened by a window's overlap before and/or after it."""
    rows = np.flatnonzero(labels == label)
    if rows.size == 0:
        return None
    first, last = int(rows[0]), int(rows[-1])
    if before:
        first = max(first - (WINDOW_ROWS - 1), 0)
    if after:
        last = min(last + WINDOW_ROWS - 1, len(labels) - 1)
    return first, last


def _available(period: tuple[int, int] | None) -> int:
    return 0 if period is None else max(period[1] - period[0] + 1 - WINDOW_ROWS, 0)


def _split_abnormal(n_test: int, max_transient: int, max_steady: int) -> tuple[int, int]:
    """Half the abnormal test windows (rounded up) from the transient, the rest from the steady event."""
    transient = math.ceil(n_test / 2)
    steady = n_test - transient
    if max_transient >= transient and max_steady < steady:
        steady = max_steady
        transient = min(n_test - steady, max_transient)
    elif max_transient < transient and max_steady >= steady:
        transient = max_transient
        steady = min(n_test - transient, max_steady)
    elif max_transient < transient and max_steady < steady:
        transient, steady = max_transient, max_steady
    return transient, steady


def _step(count: int, available: int) -> int:
    return 1 if count == available else (available - 1) // (MAX_WINDOWS_PER_PERIOD - 1)


def _forward_starts(period: tuple[int, int] | None, count: int, wanted_step: float) -> list[int]:
    if period is None or count <= 0:
        return []
    step = int(min(wanted_step, _step(count, _available(period))))
    return [period[0] + k * step for k in range(count)]


def reference_predictions(values: np.ndarray, windows: Windows, seed: int) -> np.ndarray:
    """The published configuration's verdict (1 = abnormal) on each test window."""
    values = np.nan_to_num(values, nan=0.0)
    train_rows = np.concatenate([np.arange(s, s + WINDOW_ROWS) for s in windows.train])
    keep = values[train_rows].std(axis=0) > MIN_VARIABLE_STD
    scaler = StandardScaler().fit(_window_statistics(values[:, keep], windows.train))
    model = IsolationForest(random_state=seed).fit(scaler.transform(_window_statistics(values[:, keep],
                                                                                        windows.train)))
    return (model.predict(scaler.transform(_window_statistics(values[:, keep], windows.test))) == -1).astype(int)


def _window_statistics(values: np.ndarray, starts: Sequence[int]) -> np.ndarray:
    """Mean, median, std, variance, min and max of every variable in every window (windows x 6*vars)."""
    stacked = np.stack([values[s:s + WINDOW_ROWS] for s in starts])
    return np.concatenate([stacked.mean(axis=1), np.median(stacked, axis=1), stacked.std(axis=1),
                           stacked.var(axis=1), stacked.min(axis=1), stacked.max(axis=1)], axis=1)


def petrostream_predictions(features: Sequence[np.ndarray], windows: Sequence[Windows], seed: int) -> list[np.ndarray]:
    """PetroStream's verdicts (1 = abnormal) on every instance's test windows, from one model for all.

    The model is trained with the production code path (Isolation Forest, threshold at the
    production false-alarm budgets) on the rows of every instance's *training* windows, and a
    window is abnormal when the production alarm rule (``min_flags`` of ``window_rows`` rows
    flagged) fires inside it.
    """
    options = TrainingOptions(seed=seed)
    rows = [np.unique(np.concatenate([np.arange(s, s + WINDOW_ROWS) for s in w.train])) for w in windows]
    train = np.vstack([f[r] for f, r in zip(features, rows, strict=True)])
    model = IsolationForest(n_estimators=options.n_estimators, max_samples=min(options.max_samples, len(train)),
                            random_state=seed).fit(train)
    stretch = np.concatenate([np.full(len(r), k) for k, r in enumerate(rows)])
    fake_times = np.arange(len(train)) * 1000  # training rows are 1 s apart within each instance's stretch
    threshold = calibrate(-model.score_samples(train), fake_times, stretch, options).threshold
    policy = options.alarm_policy
    verdicts = []
    for f, w in zip(features, windows, strict=True):
        flagged = [(-model.score_samples(f[s:s + WINDOW_ROWS]) > threshold).astype(np.int64) for s in w.test]
        counts = [np.convolve(x, np.ones(policy.window_rows, dtype=np.int64))[: WINDOW_ROWS] for x in flagged]
        verdicts.append(np.array([int(c.max() >= policy.min_flags) for c in counts]))
    return verdicts


def _hits(predictions: np.ndarray, windows: Windows) -> list[bool]:
    return (predictions == np.asarray(windows.truth)).tolist()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ml.benchmark_3w DIR [--json FILE]``: the table, optionally also as JSON."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ml.benchmark_3w", description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--json", help="also write the result as JSON here")
    args = parser.parse_args(argv)
    result = run_benchmark(Path(args.data))
    print(result.format_table())
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_json(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
