"""What an alarm most likely is, and which sensors drove it.

An alarm that says only "anomaly" leaves the operator to find out what happened. When an
alarm event opens, and again whenever it reaches a new peak, the per-sensor deviations of
its peak row (:func:`engine.features.sensor_deviations`: how far each sensor's 1-, 3- and
10-minute means stand from the well's baseline, its short-term spread and slope, all in the
well's own typical sizes) give two things:

* a **likely event type**: a supervised classifier, trained with the detector on the 3W labels
  of the training data (:mod:`ml.diagnosis_training`), reads the same deviations and gives a
  3W class code with its probability. Below the model's cut-off (set at training from
  held-out wells, :data:`MIN_PROBABILITY` by default) the type is ``None`` (shown as
  *unknown*): a wrong confident name is worse than none;
* an **explanation**: the sensors that moved most at the peak, strongest first, with their
  direction and size, e.g. ``P-TPT ↓ 4.1 typical, T-TPT ↑ 2.3``. It needs no classifier, so
  every alarm has one, whatever model raised it.

Both cost one small classifier call per alarm piece, not per row (see docs/MODEL_CARD.md): the
classifier a loaded model carries walks its trees as arrays (:mod:`engine.tree_classifier`), one
compiled call, where scikit-learn's ``predict_proba`` dispatched every tree through joblib.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.features import FEATURE_KINDS, FEATURE_SENSORS
from engine.schema import VARIABLES

#: Below this probability the likely type is unknown (null) rather than a guess; training usually
#: sets a model's own cut-off (``manifest["diagnosis"]["min_probability"]``) and this is the default.
MIN_PROBABILITY = 0.5
#: A sensor is named in the explanation when it stands at least this many typical sizes off ...
MIN_STRENGTH = 2.0
#: ... and at most this many sensors are named (the strongest one is named whatever its size).
MAX_SENSORS = 3
_TAGS = {v.name: v.source_name for v in VARIABLES}
_LEVELS = [FEATURE_KINDS.index(k) for k in ("level_1m", "level_3m", "level_10m")]
_SPREAD = FEATURE_KINDS.index("spread_3m")
_LOG_KINDS = [k for k in range(len(FEATURE_KINDS)) if k != _SPREAD]


@dataclass(frozen=True)
class Diagnosis:
    """One alarm's likely type (3W code or None), its probability, the sensors that drove it and why."""

    likely_class: int | None
    probability: float | None
    top_sensors: str | None
    explanation: str | None


def classifier_inputs(deviations: np.ndarray) -> np.ndarray:
    """Classifier rows from deviations (rows x sensors x kinds): every value, signed-``log1p`` compressed.

    The classifier sees each sensor separately (the type of an event is in *which* sensors
    move and how), with the same compression as the detector's inputs and no dead band.
    """
    compressed = deviations.copy()
    compressed[..., _LOG_KINDS] = np.sign(compressed[..., _LOG_KINDS]) * np.log1p(np.abs(compressed[..., _LOG_KINDS]))
    largest = np.abs(compressed).max(axis=1)
    return np.concatenate([compressed.reshape(len(deviations), -1), largest], axis=1)


def strength(deviations: np.ndarray) -> np.ndarray:
    """How far each sensor stands off, in typical sizes (... x sensors): its largest level or its spread factor."""
    level = np.abs(deviations[..., _LEVELS]).max(axis=-1)
    return np.maximum(level, np.exp(deviations[..., _SPREAD]) * (deviations[..., _SPREAD] > 0))


@dataclass(frozen=True)
class Diagnoser:
    """Turns the deviations of an alarm's peak row into a :class:`Diagnosis`; ``classifier`` may be None.

    ``classifier`` is anything with scikit-learn's ``classes_`` and ``predict_proba``: a loaded
    model's :class:`~engine.tree_classifier.TreeClassifier`, or a fitted estimator."""

    classifier: Any | None
    min_probability: float = MIN_PROBABILITY

    def diagnose(self, deviations: np.ndarray) -> Diagnosis:
        """Diagnosis of one row's deviations (sensors x kinds)."""
        likely, probability = self._likely(deviations)
        top_sensors, explanation = explain(deviations)
        return Diagnosis(likely, probability, top_sensors, explanation)

    def _likely(self, deviations: np.ndarray) -> tuple[int | None, float | None]:
        if self.classifier is None:
            return None, None
        probabilities = self.classifier.predict_proba(classifier_inputs(deviations[None]))[0]
        best = int(np.argmax(probabilities))
        probability = round(float(probabilities[best]), 4)
        if probability < self.min_probability:
            return None, probability
        return int(self.classifier.classes_[best]), probability


def explain(deviations: np.ndarray) -> tuple[str | None, str | None]:
    """The sensors that drove a row (3W tags, strongest first, comma-separated) and a sentence saying how.

    A sensor reads as moved up or down by its largest trailing-mean level (``P-TPT ↓ 4.1``)
    or, when its short-term spread is the larger change, as noisier (``QGL noisier ×3.0``);
    sizes are in the well's typical sizes of that quantity, stated once on the first sensor.
    """
    strengths = strength(deviations)
    if not np.isfinite(strengths).any() or strengths.max() <= 0:
        return None, None
    order = np.argsort(-strengths, kind="stable")
    chosen = [int(s) for s in order[:MAX_SENSORS] if strengths[s] >= MIN_STRENGTH] or [int(order[0])]
    tags, phrases = [], []
    for position, sensor in enumerate(chosen):
        tag = _TAGS[FEATURE_SENSORS[sensor]]
        levels = deviations[sensor, _LEVELS]
        level = float(levels[np.argmax(np.abs(levels))])
        unit = " typical" if position == 0 else ""
        if abs(level) >= strengths[sensor]:
            phrases.append(f"{tag} {'↑' if level > 0 else '↓'} {abs(level):.1f}{unit}")
        else:
            phrases.append(f"{tag} noisier ×{strengths[sensor]:.1f}{unit}")
        tags.append(tag)
    return ",".join(tags), ", ".join(phrases)


@dataclass(frozen=True)
class Evidence:
    """A scored batch's per-row deviations and the diagnoser that reads them: what alarms need to explain."""

    deviations: np.ndarray
    diagnoser: Diagnoser

    def diagnose(self, row: int) -> Diagnosis:
        """Diagnosis of the batch's row ``row`` (its position in the scored table)."""
        return self.diagnoser.diagnose(self.deviations[row])
