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
* **PetroStream**: one detector per instance, as the protocol asks, that measures how far a
  window has moved from the instance's own training windows, in the units of the well's own
  normal variability. Per sensor (gaps filled from the past only) and window: the mean, the
  minimum, the maximum and the last-minute-minus-first-minute trend, each compared with the
  median over the training windows and divided by the spread of the training rows (floored
  at the engine's sensor resolutions, :mod:`engine.features`); and the window's standard
  deviation as a log ratio to the training windows' median. A window's score is its largest
  deviation. The threshold comes from the training windows only: each training window is
  scored against the other training windows, and a test window is abnormal above
  :data:`PETROSTREAM_MARGIN` times the largest of those scores, taken as at least
  :data:`MIN_TRAINING_DEVIATION` (one unit of the floored scale: calmer training windows cannot
  tell how calm the well is below its sensors' resolution).

  Why not the streaming model: the engine's features are relative to the last hour of the
  well, so a well that has been shut for hours (the real sample's steady windows) reads "as
  usual" again, and one global forest trained on nine windows per instance has no sense of
  each well's normal spread. Comparing with the training windows directly keeps the memory
  of normal operation the protocol provides; adding the streaming features' window maxima
  as a second channel changed the demo tuning sets' means by less than 0.01.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
from sklearn.ensemble import IsolationForest
from sklearn.preprocessing import StandardScaler

from engine.errors import InputError
from engine.features import ABSOLUTE_SPREAD_FLOOR, RELATIVE_SPREAD_FLOOR
from engine.readers import InstanceFile, discover, read_instance
from engine.schema import NORMAL_CLASS, SENSOR_COLUMNS, TRANSIENT_OFFSET, UNITS

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
#: A test window is abnormal when its deviation exceeds this multiple of the largest deviation of a
#: training window from the other training windows. Chosen on the demo tuning sets (seeds 101 and 202):
#: 1.5 flags 15-21 % of their normal test windows, 2.5 and 3 miss more early transient windows.
PETROSTREAM_MARGIN = 2.0
#: The largest deviation of a training window from the others is taken as at least this many units of the scale
#: (the training rows' spread, floored at the sensor resolutions), as the scale itself is floored: training windows
#: that agree to within the resolution say only that normal variability is below it, not how far below. Real wells
#: reach it (the sample's training windows deviate by 0.3-1.1 units, so thresholds of 0.6-2.2 flagged normal windows
#: 0.1 % of the level away); the demo wells never do (their thresholds are 4.2 or more), so it changes nothing there.
MIN_TRAINING_DEVIATION = 1.0
#: Rows at each end of a window whose means give its trend (last minute minus first minute).
TREND_ROWS = 60
_SENSOR_FLOORS = np.array([ABSOLUTE_SPREAD_FLOOR[UNITS[c]] for c in SENSOR_COLUMNS])


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
        """Per detector: mean and std of the instances' accuracies, the share of windows right per period, the
        shares of first transient windows, of last normal windows and of both together (the *onset pair*) right,
        and the mean accuracy per event class.

        The first transient window ends on the transient's first labeled row, so it is apart: it tells whether
        the rest of the transient's misses are slow events or onsets a past-only detector cannot see yet. It
        shares most of its rows with the last normal test window (only the unlabeled rows at the transition and
        the first transient row tell them apart), so a detector that judges a window by its rows gets both right
        only if the well moves within those few rows, and otherwise in effect one of the two, whatever its
        threshold.
        """
        table = {}
        for detector in DETECTORS:
            values = np.array([i.accuracy[detector] for i in self.instances])
            table[detector] = {"mean": float(values.mean()), "std": float(values.std())}
            for period in PERIODS:
                hits = [hit for i in self.instances for p, hit in zip(i.periods, i.correct[detector], strict=True)
                        if p == period]
                table[detector][f"{period}_windows_right"] = float(np.mean(hits)) if hits else math.nan
            pairs = [i.correct[detector][i.periods.index("transient") - 1:i.periods.index("transient") + 1]
                     for i in self.instances if "transient" in i.periods]  # [last normal, first transient]
            for key, hits in (("last_normal_windows_right", [last for last, _ in pairs]),
                              ("first_transient_windows_right", [first for _, first in pairs]),
                              ("onset_pairs_right", [last and first for last, first in pairs])):
                table[detector][key] = float(np.mean(hits)) if hits else math.nan
            for event_class in sorted({i.event_class for i in self.instances}):
                table[detector][f"class_{event_class}"] = float(np.mean(
                    [i.accuracy[detector] for i in self.instances if i.event_class == event_class]))
        return table

    def format_table(self) -> str:
        """The benchmark table as printed by ``engine benchmark-3w``."""
        summary = self.summary()
        lines = [f"3W benchmark 2 on {self.data}: {len(self.instances)} instances "
                 f"(real, classes {', '.join(map(str, BENCHMARK_CLASSES))}, >= {MIN_NORMAL_ROWS // 60} min normal); "
                 f"{len(self.skipped)} files not eligible",
                 f"{'detector':<46} {'mean window accuracy':>20} {'std':>6}"]
        names = {"reference": "reference (IF on window statistics, published)",
                 "petrostream": "PetroStream (deviation from training windows)"}
        lines[-1] += "   windows right: normal transient steady"
        for detector in DETECTORS:
            row = summary[detector]
            lines.append(f"{names[detector]:<46} {row['mean']:>20.3f} {row['std']:>6.3f}   {'':>15}"
                         + " ".join(f"{row[f'{p}_windows_right']:>{len(p)}.2f}" for p in PERIODS))
        classes = sorted({i.event_class for i in self.instances})
        lines.append("")
        lines.append(f"{'by event class':<46} " + " ".join(f"{c:>6}" for c in classes)
                     + "   right: last normal, first transient, both (onset pair)")
        for detector in DETECTORS:
            row = summary[detector]
            lines.append(f"{names[detector]:<46} " + " ".join(f"{row[f'class_{c}']:>6.3f}" for c in classes)
                         + f"   {row['last_normal_windows_right']:>18.2f} {row['first_transient_windows_right']:>15.2f}"
                         + f" {row['onset_pairs_right']:>20.2f}")
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
    scores: list[InstanceScore] = []
    for done, instance in enumerate(candidates, start=1):
        table = read_instance(instance.path)
        labels = pc.fill_null(table["class"], -1).to_numpy().astype(np.int64)
        windows = protocol_windows(labels, instance.event_class)
        if windows is None:
            skipped[str(instance.path)] = f"fewer than {MIN_NORMAL_ROWS} normal rows or no abnormal window"
        else:
            values = np.column_stack([table[c].to_numpy(zero_copy_only=False).astype(np.float64)
                                      for c in SENSOR_COLUMNS])
            verdicts = {"reference": reference_predictions(values, windows, seed),
                        "petrostream": petrostream_predictions(values, windows)}
            scores.append(InstanceScore(str(instance.path), int(instance.event_class), len(windows.train),
                                        windows.periods, {d: _hits(v, windows) for d, v in verdicts.items()}))
        if progress:
            progress(done, len(candidates), instance.path.name)
    if not scores:
        raise InputError(f"{data_dir}: no instance qualifies for 3W benchmark 2 (real instances of classes "
                         f"{', '.join(map(str, BENCHMARK_CLASSES))} with >= {MIN_NORMAL_ROWS} normal rows)")
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


def _rows(starts: Sequence[int]) -> np.ndarray:
    """Row numbers covered by the windows starting at ``starts`` (overlaps counted once)."""
    return np.unique(np.concatenate([np.arange(s, s + WINDOW_ROWS) for s in starts]))


def _stack(values: np.ndarray, starts: Sequence[int]) -> np.ndarray:
    """The windows' rows (windows x rows x variables)."""
    return np.stack([values[s:s + WINDOW_ROWS] for s in starts])


def _window_statistics(values: np.ndarray, starts: Sequence[int]) -> np.ndarray:
    """Mean, median, std, variance, min and max of every variable in every window (windows x 6*vars)."""
    stacked = _stack(values, starts)
    return np.concatenate([stacked.mean(axis=1), np.median(stacked, axis=1), stacked.std(axis=1),
                           stacked.var(axis=1), stacked.min(axis=1), stacked.max(axis=1)], axis=1)


def petrostream_predictions(values: np.ndarray, windows: Windows) -> np.ndarray:
    """PetroStream's verdict (1 = abnormal) on each test window of one instance (see the module docstring).

    Sensors never seen during the training windows are left out: there is no normal behaviour
    to compare them with. Real 3W files often start with minutes without values, so a training
    window may lack a sensor for some or all of its rows: statistics use the rows that have a
    value, and a statistic without any says nothing (it never counts as a deviation).
    """
    filled = _forward_fill(values)
    train_rows = _rows(windows.train)
    known = ~np.isnan(filled[train_rows]).all(axis=0)
    filled = filled[:, known]
    with warnings.catch_warnings():  # statistics of windows before a sensor's first value are NaN, as meant
        warnings.simplefilter("ignore", RuntimeWarning)
        level = np.nanmedian(filled[train_rows], axis=0)
        floor = np.maximum(_SENSOR_FLOORS[known], RELATIVE_SPREAD_FLOOR * np.abs(level))
        train = _deviation_statistics(filled, windows.train)
        left_out = [_deviations(np.delete(train, k, axis=0), train[k:k + 1],
                                filled[_rows(np.delete(windows.train, k))], floor)[0]
                    for k in range(len(windows.train))]
        threshold = PETROSTREAM_MARGIN * max(*left_out, MIN_TRAINING_DEVIATION)
        test = _deviation_statistics(filled, windows.test)
        return (_deviations(train, test, filled[train_rows], floor) > threshold).astype(int)


def _forward_fill(values: np.ndarray) -> np.ndarray:
    """Each gap holds the sensor's previous value (the past only, as a stream would see it)."""
    index = np.where(np.isnan(values), 0, np.arange(len(values))[:, None])
    np.maximum.accumulate(index, axis=0, out=index)
    return np.take_along_axis(values, index, axis=0)


def _deviation_statistics(values: np.ndarray, starts: Sequence[int]) -> np.ndarray:
    """Per window and sensor: mean, minimum, maximum, trend, then the standard deviation (windows x 5 x sensors)."""
    stacked = _stack(values, starts)
    trend = np.nanmean(stacked[:, -TREND_ROWS:], axis=1) - np.nanmean(stacked[:, :TREND_ROWS], axis=1)
    return np.stack([np.nanmean(stacked, axis=1), np.nanmin(stacked, axis=1), np.nanmax(stacked, axis=1), trend,
                     np.nanstd(stacked, axis=1)], axis=1)


def _deviations(train: np.ndarray, test: np.ndarray, train_values: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """Largest deviation of each test window from the training windows, in units of the normal variability.

    Levels and the trend move by the spread of the training rows (at least the sensor's
    resolution); the standard deviation by its log ratio, since a noisier window is abnormal
    by a factor, not by an amount.
    """
    reference = np.nanmedian(train, axis=0)
    scale = np.maximum(np.nanstd(train_values, axis=0), floor)
    shift = np.abs(test[:, :-1] - reference[:-1]) / scale
    spread = np.abs(np.log((test[:, -1] + floor) / (reference[-1] + floor)))
    return np.maximum(np.nan_to_num(shift).max(axis=(1, 2)), np.nan_to_num(spread).max(axis=1))


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
