"""Train the Isolation Forest on normal operation, with the engine's own feature code.

Each well's files are walked in time order through :func:`engine.features.compute_features`
with one state per well, exactly as the stream consumer would see them, so the model learns
the features it will be scored on. The threshold is the score that normal training rows
exceed at the chosen false-alarm rate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
from sklearn.ensemble import IsolationForest

from engine import model as model_artifact
from engine.errors import InputError
from engine.features import WellState, compute_features
from engine.readers import InstanceFile, discover, read_instance
from engine.schema import NORMAL_CLASS

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class TrainingOptions:
    """Knobs of a training run, with defaults that suit 3W-like data."""

    false_alarm_rate: float = 0.005
    n_estimators: int = 100
    max_training_rows: int = 200_000
    seed: int = 0


@dataclass(frozen=True)
class LabeledFeatures:
    """Features of one instance file with the labels of its rows."""

    instance: InstanceFile
    features: np.ndarray
    labels: np.ndarray


def instance_features(paths: Iterable[str | Path], progress: Progress | None = None) -> Iterator[LabeledFeatures]:
    """Features of every instance under ``paths``, each well's files in time order with one state."""
    files = discover(paths)
    if not files:
        raise InputError(f"no 3W files (.parquet, .csv) under {', '.join(map(str, paths))}")
    by_well: dict[str, list[InstanceFile]] = defaultdict(list)
    for instance in files:
        by_well[instance.well_id].append(instance)
    done = 0
    for well_files in by_well.values():
        states: dict[str, WellState] = {}
        for instance in sorted(well_files, key=lambda f: f.path.name):
            table = read_instance(instance.path)
            labels = pc.fill_null(table["class"], -1).to_numpy()
            yield LabeledFeatures(instance, compute_features(table, states), labels)
            done += 1
            if progress:
                progress(done, len(files), instance.path.name)


def train(paths: Iterable[str | Path], options: TrainingOptions = TrainingOptions(),
          progress: Progress | None = None) -> tuple[bytes, dict[str, Any]]:
    """Fit on normal rows of the given files; return the artifact bytes and its manifest."""
    paths = list(paths)
    normal_blocks: list[np.ndarray] = []
    rows_by_well: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for item in instance_features(paths, progress):
        labels, counts = np.unique(item.labels, return_counts=True)
        for label, count in zip(labels, counts, strict=True):
            rows_by_well[item.instance.well_id]["unlabeled" if label < 0 else str(label)] += int(count)
        normal = (item.labels == NORMAL_CLASS) & item.features.any(axis=1)  # all-zero = warm-up
        normal_blocks.append(item.features[normal])
    normal_rows = np.vstack(normal_blocks) if normal_blocks else np.empty((0, 0))
    if normal_rows.shape[0] < 100:
        raise InputError(f"only {normal_rows.shape[0]} normal (class 0) rows after warm-up in "
                         f"{', '.join(map(str, paths))}; need at least 100 to train")
    rng = np.random.default_rng(options.seed)
    if normal_rows.shape[0] > options.max_training_rows:
        normal_rows = normal_rows[rng.choice(normal_rows.shape[0], options.max_training_rows, replace=False)]
    estimator = IsolationForest(n_estimators=options.n_estimators, random_state=options.seed, n_jobs=1)
    estimator.fit(normal_rows)
    scores = -estimator.score_samples(normal_rows)
    threshold = float(np.quantile(scores, 1.0 - options.false_alarm_rate))
    summary = {
        "false_alarm_rate": options.false_alarm_rate,
        "training": {
            "data": [str(p) for p in paths],
            "normal_rows_used": int(normal_rows.shape[0]),
            "rows_by_well_and_class": {w: dict(c) for w, c in sorted(rows_by_well.items())},
            "estimator": {"type": "IsolationForest", "n_estimators": options.n_estimators, "seed": options.seed},
        },
    }
    return model_artifact.dump(estimator, threshold, summary)
