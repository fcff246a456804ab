"""Train the Isolation Forest on normal operation, with the engine's own feature code.

Each well's files are walked in time order through :func:`engine.features.compute_features`
with one state per well, exactly as the stream consumer would see them, so the model learns
the features it will be scored on. It learns from *settled* normal rows only: class 0, past
the features' warm-up, and more than :data:`RECOVERY_SECONDS` after the well's last event row
(until then the baseline remembers the event and the return to normal reads as a change;
learning those rows as normal taught the forest that changes are normal).

The threshold answers to two false-alarm budgets measured on those rows: the share of rows
flagged (``false_alarm_rate``) and, because operators are paged for alarm *events* rather
than rows, the debounced events per hour of normal operation (``false_alarms_per_hour``,
counted with the :mod:`engine.alarms` rules the consumer applies). The lowest threshold that
keeps both is chosen; both budgets, the alarm policy and what the training data achieved go
into the manifest.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.ensemble import IsolationForest

from engine import model as model_artifact
from engine.alarms import AlarmPolicy, count_events
from engine.errors import InputError
from engine.features import BASELINE_SECONDS, MAX_GAP_SECONDS, WellState, compute_features, warmup_mask
from engine.readers import InstanceFile, discover, read_instance
from engine.schema import NORMAL_CLASS

Progress = Callable[[int, int, str], None]
#: How long after an event a well's features still compare with a baseline that remembers it.
RECOVERY_SECONDS = BASELINE_SECONDS


@dataclass(frozen=True)
class TrainingOptions:
    """Knobs of a training run, with defaults that suit 3W-like data."""

    false_alarm_rate: float = 0.005
    false_alarms_per_hour: float = 0.25
    n_estimators: int = 100
    max_samples: int = 256
    max_training_rows: int = 200_000
    alarm_policy: AlarmPolicy = field(default_factory=AlarmPolicy)
    seed: int = 0


@dataclass(frozen=True)
class WellFeatures:
    """One well's files run through the features in time order: rows of all files, end to end."""

    well_id: str
    files: list[InstanceFile]
    offsets: list[int]  # first row of each file, then the total
    features: np.ndarray
    labels: np.ndarray
    times: np.ndarray

    def settled_normal(self) -> np.ndarray:
        """Rows that show normal operation as the features see it: class 0, out of warm-up, and
        more than :data:`RECOVERY_SECONDS` after the well's last event row (the baseline still
        remembers the event until then, so the return to normal looks like a new change)."""
        return (self.labels == NORMAL_CLASS) & ~warmup_mask(self.times) & ~recovering(self.times, self.labels)


def recovering(times: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Rows within :data:`RECOVERY_SECONDS` after an event row (class > 0) of the same well."""
    last_event = np.maximum.accumulate(np.where(labels > NORMAL_CLASS, times, np.iinfo(np.int64).min // 2))
    return times - last_event <= RECOVERY_SECONDS * 1000


def well_features(paths: Iterable[str | Path], progress: Progress | None = None) -> Iterator[WellFeatures]:
    """Features of every well under ``paths``: its files in time order through one state, as streamed."""
    paths = list(paths)
    files = discover(paths)
    if not files:
        raise InputError(f"no 3W files (.parquet, .csv) under {', '.join(map(str, paths))}")
    done = 0
    for well, well_files in files_by_well(files).items():
        states: dict[str, WellState] = {}
        blocks, labels, times, offsets = [], [], [], [0]
        for instance in well_files:
            table = read_instance(instance.path)
            blocks.append(compute_features(table, states))
            labels.append(pc.fill_null(table["class"], -1).to_numpy().astype(np.int64))
            times.append(table["event_time"].cast(pa.int64()).to_numpy())
            offsets.append(offsets[-1] + table.num_rows)
            done += 1
            if progress:
                progress(done, len(files), instance.path.name)
        yield WellFeatures(well, well_files, offsets, np.vstack(blocks), np.concatenate(labels),
                           np.concatenate(times))


def files_by_well(files: Iterable[InstanceFile]) -> dict[str, list[InstanceFile]]:
    """Instance files grouped by well, each well's in time order (the file name carries the start)."""
    by_well: dict[str, list[InstanceFile]] = defaultdict(list)
    for instance in files:
        by_well[instance.well_id].append(instance)
    return {well: sorted(group, key=lambda f: f.path.name) for well, group in sorted(by_well.items())}


def train(paths: Iterable[str | Path], options: TrainingOptions = TrainingOptions(),
          progress: Progress | None = None) -> tuple[bytes, dict[str, Any]]:
    """Fit on settled normal rows of the given files; return the artifact bytes and its manifest."""
    started = time.perf_counter()
    paths = list(paths)
    normal = _NormalRows()
    rows_by_well: dict[str, dict[str, int]] = {}
    for well in well_features(paths, progress):
        labels, counts = np.unique(well.labels, return_counts=True)
        rows_by_well[well.well_id] = {"unlabeled" if label < 0 else str(label): int(count)
                                      for label, count in zip(labels, counts, strict=True)}
        normal.add(well)
    features, times = normal.stacked()
    if features.shape[0] < 100:
        raise InputError(f"only {features.shape[0]} settled normal (class 0) rows in "
                         f"{', '.join(map(str, paths))}; need at least 100 to train")
    rng = np.random.default_rng(options.seed)
    fit_rows = features
    if features.shape[0] > options.max_training_rows:
        fit_rows = features[np.sort(rng.choice(features.shape[0], options.max_training_rows, replace=False))]
    estimator = IsolationForest(n_estimators=options.n_estimators, max_samples=min(options.max_samples,
                                fit_rows.shape[0]), random_state=options.seed, n_jobs=1)
    estimator.fit(fit_rows)
    scores = -estimator.score_samples(features)
    calibration = calibrate(scores, times, normal.stretch_ids(), options)
    summary = {
        "false_alarm_rate": options.false_alarm_rate,
        "false_alarms_per_hour_budget": options.false_alarms_per_hour,
        "alarm_policy": options.alarm_policy.to_json(),
        "calibration": calibration.to_json(),
        "training": {
            "data": [str(p) for p in paths],
            "normal_rows_used": int(features.shape[0]),
            "rows_fitted": int(fit_rows.shape[0]),
            "wells": len(rows_by_well),
            "rows_by_well_and_class": dict(sorted(rows_by_well.items())),
            "estimator": {"type": "IsolationForest", "n_estimators": options.n_estimators,
                          "max_samples": int(estimator.max_samples_), "seed": options.seed},
            "seconds": round(time.perf_counter() - started, 1),
        },
    }
    return model_artifact.dump(estimator, calibration.threshold, summary)


class _NormalRows:
    """Settled normal rows, kept in uninterrupted stretches (one well, no silence, nothing else between)."""

    def __init__(self) -> None:
        self.features: list[np.ndarray] = []
        self.times: list[np.ndarray] = []

    def add(self, well: WellFeatures) -> None:
        usable = well.settled_normal()
        edges = np.flatnonzero(np.diff(usable.astype(np.int8), prepend=0, append=0))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            silences = np.flatnonzero(np.diff(well.times[start:stop]) > MAX_GAP_SECONDS * 1000) + 1
            for piece in np.split(np.arange(start, stop), silences):
                self.features.append(well.features[piece])
                self.times.append(well.times[piece])

    def stacked(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.features:
            return np.empty((0, 0)), np.empty(0, dtype=np.int64)
        return np.vstack(self.features), np.concatenate(self.times)

    def stretch_ids(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.times)), [len(t) for t in self.times])


@dataclass(frozen=True)
class Calibration:
    """The chosen threshold and what it gives on the normal training rows."""

    threshold: float
    row_rate: float
    events: int
    normal_hours: float

    @property
    def events_per_hour(self) -> float:
        return self.events / self.normal_hours if self.normal_hours else 0.0

    def to_json(self) -> dict[str, float]:
        return {"threshold": self.threshold, "flagged_row_share": self.row_rate, "alarm_events": self.events,
                "normal_hours": round(self.normal_hours, 3), "alarm_events_per_hour": round(self.events_per_hour, 4)}


def calibrate(scores: np.ndarray, times: np.ndarray, stretches: np.ndarray, options: TrainingOptions) -> Calibration:
    """Lowest threshold whose flags stay within both false-alarm budgets on the normal rows.

    Candidates are score quantiles from the row budget upwards, so the row budget always
    holds; the event budget is checked by debouncing each normal stretch as the consumer would.
    """
    hours = len(scores) / 3600.0
    bounds = np.flatnonzero(np.diff(stretches, prepend=-1, append=-1))
    pieces = list(itertools.pairwise(bounds))
    # Less normal data than one budgeted alarm takes cannot show the budget holds; it may show one alarm.
    allowed = max(options.false_alarms_per_hour * hours, 1.0)
    candidates = np.unique(np.quantile(scores, np.linspace(1.0 - options.false_alarm_rate, 1.0, 41)))
    for threshold in candidates[:-1]:
        flags = scores > threshold
        events = sum(count_events(times[a:b], flags[a:b], options.alarm_policy) for a, b in pieces if flags[a:b].any())
        if events <= allowed:
            return Calibration(float(threshold), float(flags.mean()), events, hours)
    return Calibration(float(candidates[-1]), 0.0, 0, hours)  # above every normal row: nothing flags
