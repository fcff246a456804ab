"""Train the alarm diagnosis classifier (:mod:`engine.diagnosis`) from the 3W labels of the training data.

An alarm is diagnosed at its peak row, where some sensor stands well off the well's usual
behaviour, so the classifier learns from rows like that: rows of every labeled event
(transient 100+N and steady N count as event N) on which some sensor stands at least
:data:`engine.diagnosis.MIN_STRENGTH` typical sizes off, out of the features' warm-up. It
answers "which event is this alarm?", not "is this an event?" (the detector's question):
with normal rows as a ninth class, real DHSV closures on held-out wells split their
probability between "normal" and "DHSV closure" and came out unknown (0 of 13 named on the
shared sample's well 11; 9 of 13 named right, none wrong, without). Each
well gives at most :data:`ROWS_PER_WELL_AND_CLASS` rows per class, drawn at random, so a long
event or a big well does not drown the others; classes are weighted to balance.

The classifier is an extremely randomised tree ensemble: it handles sensors that one well
lacks and another has (they read 0), needs no scaling, fits in seconds on one core (a
gradient-boosted ensemble took minutes on the busy 2-core machine), and names one alarm in
a few milliseconds. How well it names events on wells it never saw is estimated at training time
by grouped cross-validation (wells held out together, :data:`CV_FOLDS` folds), which also
sets the confidence below which an alarm's type is unknown; both go into the manifest with
the confusion matrix, which the portal's Model page shows. The fold models learn from half as
many rows per well and class (:data:`CV_ROWS_PER_WELL_AND_CLASS`), and every held-out row is
predicted: rows a second apart say nearly the same, so thinning them costs the estimate little
(on 5 M rows of demo data, accuracy 0.838 both ways and each class within 3 points) and the
three folds 40 % of their time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.model_selection import GroupKFold

from engine.diagnosis import MIN_PROBABILITY, MIN_STRENGTH, classifier_inputs, strength
from engine.schema import NORMAL_CLASS, TRANSIENT_OFFSET

#: At most this many rows per well and class enter the classifier's training set.
ROWS_PER_WELL_AND_CLASS = 600
#: Trees of the classifier: enough for stable probabilities, few enough for a millisecond-scale call.
N_TREES = 60
#: Folds of the grouped (by well) cross-validation reported in the manifest.
CV_FOLDS = 3
#: A fold model learns from at most this many of a well's rows per class (the final model from all).
CV_ROWS_PER_WELL_AND_CLASS = ROWS_PER_WELL_AND_CLASS // 2
#: Reported as "unknown" in the confusion matrix: the classifier was not confident enough.
UNKNOWN = -1
#: The confidence below which a type is unknown is the lowest at which held-out wells' named rows
#: were right this often (probabilities of a many-class tree ensemble run low, so a fixed cut-off
#: would silence it or let it guess) ...
TARGET_PRECISION = 0.8
#: ... searched on this grid; :data:`engine.diagnosis.MIN_PROBABILITY` when no cut-off reaches it.
_CUTOFFS = np.round(np.arange(0.2, 0.96, 0.05), 2)


@dataclass
class DiagnosisRows:
    """Rows the classifier learns from, gathered well by well."""

    seed: int = 0
    inputs: list[np.ndarray] = field(default_factory=list)
    classes: list[np.ndarray] = field(default_factory=list)
    wells: list[np.ndarray] = field(default_factory=list)

    def add(self, well_id: str, deviations: np.ndarray, labels: np.ndarray, usable: np.ndarray) -> None:
        """Take one well's candidate rows: ``usable`` marks the rows out of warm-up."""
        rng = np.random.default_rng([self.seed, len(self.wells)])
        events = np.where(labels >= TRANSIENT_OFFSET, labels - TRANSIENT_OFFSET, labels)
        candidates = usable & (labels > NORMAL_CLASS) & (strength(deviations).max(axis=1) >= MIN_STRENGTH)
        for event_class in np.unique(events[candidates]):
            rows = np.flatnonzero(candidates & (events == event_class))
            if rows.size > ROWS_PER_WELL_AND_CLASS:
                rows = np.sort(rng.choice(rows, ROWS_PER_WELL_AND_CLASS, replace=False))
            self.inputs.append(classifier_inputs(deviations[rows]).astype(np.float32))
            self.classes.append(np.full(rows.size, event_class, dtype=np.int64))
            self.wells.append(np.full(rows.size, well_id, dtype=object))

    def stacked(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.inputs:
            return np.empty((0, 0), dtype=np.float32), np.empty(0, dtype=np.int64), np.empty(0, dtype=object)
        return np.vstack(self.inputs), np.concatenate(self.classes), np.concatenate(self.wells)


def new_classifier(seed: int) -> ExtraTreesClassifier:
    return ExtraTreesClassifier(n_estimators=N_TREES, min_samples_leaf=5, class_weight="balanced", n_jobs=1,
                                random_state=seed)


def train_classifier(rows: DiagnosisRows) -> tuple[Any | None, dict[str, Any]]:
    """The fitted classifier (None when the labels name fewer than two classes) and its manifest entry."""
    inputs, classes, wells = rows.stacked()
    counts = {str(c): int(n) for c, n in zip(*np.unique(classes, return_counts=True), strict=True)}
    summary: dict[str, Any] = {"min_probability": MIN_PROBABILITY, "rows_by_class": counts,
                               "wells": len(set(wells.tolist()))}
    if len(counts) < 2:
        summary["classifier"] = None
        summary["why_none"] = f"the labels name {len(counts)} class(es) on rows that deviate; need at least 2"
        return None, summary
    classifier = new_classifier(rows.seed).fit(inputs, classes)
    summary["classifier"] = {"type": "ExtraTreesClassifier", "classes": classifier.classes_.tolist(),
                             "n_estimators": N_TREES, "rows": len(classes)}
    validation = grouped_cross_validation(inputs, classes, wells, rows.seed)
    if validation is not None:
        summary["min_probability"] = validation["min_probability"]
    summary["cross_validation"] = validation
    return classifier, summary


def grouped_cross_validation(inputs: np.ndarray, classes: np.ndarray, wells: np.ndarray,
                             seed: int) -> dict[str, Any] | None:
    """Out-of-fold predictions with wells held out together: the unknown cut-off, confusion matrix, precision/recall.

    Fold models learn from :func:`thinned` rows; every held-out row is predicted and counted.
    The cut-off is the lowest on :data:`_CUTOFFS` whose confidently named rows reach
    :data:`TARGET_PRECISION`; the confusion matrix applies it.
    """
    folds = min(CV_FOLDS, len(set(wells.tolist())))
    if folds < 2:
        return None
    best, confidence = np.full(len(classes), UNKNOWN), np.zeros(len(classes))
    learn = thinned(classes, wells, CV_ROWS_PER_WELL_AND_CLASS, seed)
    for train_rows, test_rows in GroupKFold(n_splits=folds).split(inputs, classes, wells):
        train_rows = train_rows[learn[train_rows]]
        if len(np.unique(classes[train_rows])) >= 2:
            fold = new_classifier(seed).fit(inputs[train_rows], classes[train_rows])
            probabilities = fold.predict_proba(inputs[test_rows])
            best[test_rows] = fold.classes_[probabilities.argmax(axis=1)]
            confidence[test_rows] = probabilities.max(axis=1)
    cutoff = next((float(c) for c in _CUTOFFS if (confidence >= c).any()
                   and (best == classes)[confidence >= c].mean() >= TARGET_PRECISION), MIN_PROBABILITY)
    predicted = np.where(confidence >= cutoff, best, UNKNOWN)
    return {"folds": folds, "unit": "rows", "min_probability": cutoff, "target_precision": TARGET_PRECISION,
            **confusion_report(classes, predicted)}


def thinned(classes: np.ndarray, wells: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """A mask keeping at most ``cap`` rows, drawn at random, of each well and class."""
    _, well_codes = np.unique(wells.astype(str), return_inverse=True)
    _, groups = np.unique(well_codes.astype(np.int64) * (int(classes.max(initial=0)) + 1) + classes,
                          return_inverse=True)
    order = np.random.default_rng([seed, cap]).permutation(len(classes))
    order = order[np.argsort(groups[order], kind="stable")]  # each group's rows together, in random order
    starts = np.searchsorted(groups[order], groups[order])  # where each row's group begins in ``order``
    keep = np.zeros(len(classes), dtype=bool)
    keep[order[np.arange(len(order)) - starts < cap]] = True
    return keep


def confusion_report(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Confusion matrix (rows: true class, columns: predicted, ``-1`` = unknown) and per-class precision/recall."""
    labels = sorted(set(truth.tolist()) | set(predicted.tolist()))
    position = {label: k for k, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(matrix, ([position[t] for t in truth.tolist()], [position[p] for p in predicted.tolist()]), 1)
    per_class = {}
    for k, label in enumerate(labels):
        if label == UNKNOWN:
            continue
        said, true = int(matrix[:, k].sum()), int(matrix[k].sum())
        per_class[str(label)] = {"support": true,
                                 "precision": round(matrix[k, k] / said, 4) if said else None,
                                 "recall": round(matrix[k, k] / true, 4) if true else None}
    return {"labels": labels, "matrix": matrix.tolist(), "per_class": per_class,
            "accuracy": round(float(np.trace(matrix) / matrix.sum()), 4) if matrix.sum() else None}
