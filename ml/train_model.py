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

No mute models: a threshold set on a few hours of one or two wells' normal data lands on
their highest "normal" minutes (often an event's drifting prelude) and then never fires on
another well. So training reports what it can vouch for (alarm events per normal hour, and
how many of the labeled events in its own data would alarm) and, when the given data holds
less than :data:`MIN_NORMAL_HOURS` of settled normal operation or its labeled events mostly
stay silent, mixes in the built-in synthetic fleet (:mod:`ml.synthetic_prior`) as a prior
normal baseline, stated in the manifest under ``prior``; with the prior disabled it refuses
in one line saying what data is missing. The alarm diagnosis classifier
(:mod:`ml.diagnosis_training`) always learns from the synthetic fleet's labeled events
(classes 1-8) plus any labeled events of the given data, and lives in the same artifact.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
from engine.features import (
    BASELINE_SECONDS,
    MAX_GAP_SECONDS,
    WellState,
    model_inputs,
    sensor_deviations,
    warmup_mask,
)
from engine.readers import InstanceFile, discover, read_instance
from engine.schema import NORMAL_CLASS, TRANSIENT_OFFSET
from ml import synthetic_prior
from ml.diagnosis_training import DiagnosisRows, train_classifier

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
    #: Mix in the built-in synthetic fleet when the given normal data cannot set a threshold that fires
    #: (and let the diagnosis classifier learn its labeled events); False refuses such data instead.
    synthetic_prior: bool = True
    #: Where the synthetic fleet's files are kept between runs (the home's cache folder); None
    #: generates them afresh in a scratch folder.
    prior_cache: Path | None = None


@dataclass(frozen=True)
class WellFeatures:
    """One well's files run through the features in time order: rows of all files, end to end."""

    well_id: str
    files: list[InstanceFile]
    offsets: list[int]  # first row of each file, then the total
    deviations: np.ndarray  # rows x sensors x kinds (engine.features.sensor_deviations)
    labels: np.ndarray
    times: np.ndarray

    @functools.cached_property
    def features(self) -> np.ndarray:
        """The detector's inputs (computed once: every normal stretch and labeled event slices them)."""
        return model_inputs(self.deviations)

    def settled_normal(self) -> np.ndarray:
        """Rows that show normal operation as the features see it: class 0, out of warm-up, and
        more than :data:`RECOVERY_SECONDS` after the well's last event row (the baseline still
        remembers the event until then, so the return to normal looks like a new change)."""
        return (self.labels == NORMAL_CLASS) & ~warmup_mask(self.times) & ~recovering(self.times, self.labels)

    def diagnosable(self) -> np.ndarray:
        """Rows the diagnosis classifier may learn from: event rows out of warm-up."""
        return (self.labels > NORMAL_CLASS) & ~warmup_mask(self.times)


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
    grouped = files_by_well(files)
    tables = _read_ahead([instance for well_files in grouped.values() for instance in well_files])
    for well, well_files in grouped.items():
        states: dict[str, WellState] = {}
        blocks, labels, times, offsets = [], [], [], [0]
        for instance in well_files:
            table = next(tables)
            blocks.append(sensor_deviations(table, states))
            labels.append(pc.fill_null(table["class"], -1).to_numpy().astype(np.int64))
            times.append(table["event_time"].cast(pa.int64()).to_numpy())
            offsets.append(offsets[-1] + table.num_rows)
            done += 1
            if progress:
                progress(done, len(files), instance.path.name)
        yield WellFeatures(well, well_files, offsets, np.vstack(blocks), np.concatenate(labels),
                           np.concatenate(times))


def _read_ahead(files: list[InstanceFile]) -> Iterator[pa.Table]:
    """Each file's table in order, the next one read in a thread meanwhile: Parquet decodes without the
    GIL, so reading overlaps the features of the file before (a fifth of training's time was reading)."""
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = deque(reader.submit(read_instance, instance.path) for instance in files[:1])
        for following in [*files[1:], None]:
            if following is not None:
                pending.append(reader.submit(read_instance, following.path))
            yield pending.popleft().result()


def files_by_well(files: Iterable[InstanceFile]) -> dict[str, list[InstanceFile]]:
    """Instance files grouped by well, each well's in time order (the file name carries the start)."""
    by_well: dict[str, list[InstanceFile]] = defaultdict(list)
    for instance in files:
        by_well[instance.well_id].append(instance)
    return {well: sorted(group, key=lambda f: f.path.name) for well, group in sorted(by_well.items())}


#: Less settled normal operation than this cannot show where a well's ordinary extremes lie.
MIN_NORMAL_HOURS = 24.0
#: A model that alarms on fewer than this share of the labeled events in its own training data is mute.
MIN_EVENTS_ALARMED = 0.5
#: Rows before an event's onset that count in its sanity check (the alarm rule's window).
_BEFORE_ONSET_ROWS = 60


def train(paths: Iterable[str | Path], options: TrainingOptions = TrainingOptions(),
          progress: Progress | None = None) -> tuple[bytes, dict[str, Any]]:
    """Fit on settled normal rows of the given files; return the artifact bytes and its manifest.

    Falls back to the synthetic prior (or, with ``options.synthetic_prior`` off, refuses)
    when the given data cannot set a threshold that fires; see the module docstring.
    """
    started = time.perf_counter()
    paths = list(paths)
    given = _TrainingData.gather(well_features(paths, progress and (
        lambda done, total, name: progress(done, total, f"features of {name}"))), options.seed)
    stage = _Stages(progress, options)
    labeled = given.plus(stage.prior()) if options.synthetic_prior else given
    with ThreadPoolExecutor(max_workers=1) as beside:
        # The classifier needs only the labeled rows, so it learns while the detector does: both spend
        # their time in compiled tree code that releases the GIL, and the machine has more than one core.
        diagnosing = beside.submit(train_classifier, labeled.diagnosis)
        fitted, prior = _detector(given, options, stage, ", ".join(map(str, paths)))
        stage.step(0, 1, "the diagnosis classifier and its cross-validation")
        classifier, diagnosis = diagnosing.result()
    summary = {
        "false_alarm_rate": options.false_alarm_rate,
        "false_alarms_per_hour_budget": options.false_alarms_per_hour,
        "alarm_policy": options.alarm_policy.to_json(),
        "calibration": fitted.calibration.to_json(),
        "checks": {"expected_alarms_per_normal_hour": round(fitted.calibration.events_per_hour, 4),
                   "expected_flagged_row_share": fitted.calibration.row_rate, **fitted.check.to_json()},
        "prior": prior,
        "diagnosis": diagnosis,
        "training": {
            "data": [str(p) for p in paths],
            "normal_rows_used": int(fitted.normal_rows),
            "prior_normal_rows": int(fitted.normal_rows - given.normal.row_count()) if prior and prior["reason"] else 0,
            "rows_fitted": int(fitted.rows_fitted),
            "wells": len(given.rows_by_well),
            "rows_by_well_and_class": dict(sorted(given.rows_by_well.items())),
            "estimator": {"type": "IsolationForest", "n_estimators": options.n_estimators,
                          "max_samples": int(fitted.estimator.max_samples_), "seed": options.seed},
            "seconds": round(time.perf_counter() - started, 1),
        },
    }
    return model_artifact.dump(fitted.estimator, fitted.calibration.threshold, summary, classifier)


def _detector(given: _TrainingData, options: TrainingOptions, stage: _Stages,
              where: str) -> tuple[_Fitted, dict[str, Any] | None]:
    """The fitted detector, on the given data alone when it can set a threshold that fires, else with the
    synthetic prior's normal rows (described in the second item), or refused without the prior."""
    shortfall = given.shortfall()
    fitted = None if shortfall else _fit(given, options, stage=stage)
    if fitted is not None and not fitted.check.passes():
        shortfall = fitted.check.describe()
    if not shortfall:
        assert fitted is not None
        return fitted, ({**synthetic_prior.describe(), "reason": None, "used_for": "diagnosis only"}
                        if options.synthetic_prior else None)
    if not options.synthetic_prior:
        raise InputError(f"{where}: {shortfall}; add normal (class 0) operation of more wells, "
                         "or allow the synthetic prior")
    prior = {**synthetic_prior.describe(), "reason": shortfall, "used_for": "normal baseline and diagnosis"}
    return _fit(given.plus(stage.prior()), options, given, stage), prior


@dataclass
class _TrainingData:
    """What training keeps of some wells: settled normal rows, classifier rows, labeled event stretches."""

    normal: _NormalRows
    diagnosis: DiagnosisRows
    events: list[tuple[np.ndarray, np.ndarray]]  # per labeled event: features and times from before its onset
    rows_by_well: dict[str, dict[str, int]]

    @classmethod
    def gather(cls, wells: Iterable[WellFeatures], seed: int, prefix: str = "") -> _TrainingData:
        data = cls(_NormalRows(), DiagnosisRows(seed), [], {})
        for well in wells:
            labels, counts = np.unique(well.labels, return_counts=True)
            data.rows_by_well[prefix + well.well_id] = {"unlabeled" if label < 0 else str(label): int(count)
                                                        for label, count in zip(labels, counts, strict=True)}
            data.normal.add(well)
            data.diagnosis.add(prefix + well.well_id, well.deviations, well.labels, well.diagnosable())
            data.events.extend(_labeled_events(well))
        return data

    def plus(self, other: _TrainingData) -> _TrainingData:
        """Both data sets (kept apart: stretches, events and wells never merge)."""
        diagnosis = DiagnosisRows(self.diagnosis.seed, self.diagnosis.inputs + other.diagnosis.inputs,
                                  self.diagnosis.classes + other.diagnosis.classes,
                                  self.diagnosis.wells + other.diagnosis.wells)
        normal = _NormalRows(self.normal.features + other.normal.features, self.normal.times + other.normal.times)
        return _TrainingData(normal, diagnosis, self.events + other.events, {**self.rows_by_well, **other.rows_by_well})

    def shortfall(self) -> str | None:
        """Why these normal rows cannot set a threshold that would fire elsewhere, or None."""
        hours = self.normal.row_count() / 3600.0
        if hours < MIN_NORMAL_HOURS:
            return (f"only {hours:.1f} h of settled normal (class 0) operation; a threshold needs at least "
                    f"{MIN_NORMAL_HOURS:.0f} h")
        return None


def _labeled_events(well: WellFeatures) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each file's labeled event, from just before its onset (first transient row, else first event row) to its end."""
    events = []
    for start, stop in itertools.pairwise(well.offsets):
        labels = well.labels[start:stop]
        marks = labels >= TRANSIENT_OFFSET
        if not marks.any():
            marks = labels > NORMAL_CLASS
        if marks.any():
            first = start + max(int(np.argmax(marks)) - _BEFORE_ONSET_ROWS, 0)
            # a copy: a view would keep the whole well's features alive
            events.append((well.features[first:stop].copy(), well.times[first:stop]))
    return events


@functools.cache
def _synthetic_data(seed: int, cache: Path | None) -> _TrainingData:
    """The synthetic prior, through the features once per process (its well ids prefixed)."""
    return _TrainingData.gather(well_features([synthetic_prior.prior_files(cache)]), seed,
                                synthetic_prior.WELL_PREFIX)


@dataclass
class _Stages:
    """Reports training's steps after the features through ``progress`` (a step of a few seconds each), so a
    long run never looks stuck on its last file."""

    progress: Progress | None
    options: TrainingOptions

    def step(self, done: int, total: int, what: str) -> None:
        if self.progress:
            self.progress(done, total, what)

    def prior(self) -> _TrainingData:
        self.step(0, 1, "the synthetic prior")
        return _synthetic_data(self.options.seed, self.options.prior_cache)


@dataclass(frozen=True)
class _EventCheck:
    """How many labeled events of the given data the model alarms on (a sanity check, not an evaluation)."""

    events: int
    alarmed: int

    def passes(self) -> bool:
        return self.events == 0 or self.alarmed >= MIN_EVENTS_ALARMED * self.events

    def describe(self) -> str:
        return (f"the threshold its normal rows set alarms on only {self.alarmed} of the {self.events} labeled "
                f"events in the same data")

    def to_json(self) -> dict[str, int]:
        return {"labeled_events": self.events, "labeled_events_alarmed": self.alarmed}


@dataclass(frozen=True)
class _Fitted:
    estimator: IsolationForest
    calibration: Calibration
    check: _EventCheck
    normal_rows: int
    rows_fitted: int


def _fit(data: _TrainingData, options: TrainingOptions, checked: _TrainingData | None = None,
         stage: _Stages | None = None) -> _Fitted:
    """Forest and threshold from ``data``'s normal rows, checked on the labeled events of ``checked`` (or ``data``)."""
    if stage:
        stage.step(0, 3, "fitting the detector")
    features, times = data.normal.stacked()
    if features.shape[0] < 100:
        raise InputError(f"only {features.shape[0]} settled normal (class 0) rows; need at least 100 to train")
    rng = np.random.default_rng(options.seed)
    fit_rows = features
    if features.shape[0] > options.max_training_rows:
        fit_rows = features[np.sort(rng.choice(features.shape[0], options.max_training_rows, replace=False))]
    estimator = IsolationForest(n_estimators=options.n_estimators, max_samples=min(options.max_samples,
                                fit_rows.shape[0]), random_state=options.seed, n_jobs=1)
    estimator.fit(fit_rows)
    if stage:
        stage.step(1, 3, f"scoring {features.shape[0]:,} normal rows for the threshold")
    own_rows = None if checked is None else checked.normal.row_count()  # the user's rows lead (plus() order)
    calibration = calibrate(-estimator.score_samples(features), times, data.normal.stretch_ids(), options, own_rows)
    if stage:
        stage.step(2, 3, "checking the labeled events")
    events = (checked or data).events
    alarmed = _alarmed_events(estimator, events, calibration.threshold, options.alarm_policy)
    return _Fitted(estimator, calibration, _EventCheck(len(events), alarmed), features.shape[0],
                   fit_rows.shape[0])


def _alarmed_events(estimator: IsolationForest, events: list[tuple[np.ndarray, np.ndarray]], threshold: float,
                    policy: AlarmPolicy) -> int:
    """How many events raise an alarm. Scored in one call: a row's score does not depend on the others
    scored with it, and one call per event cost a Python step per tree per event."""
    if not events:
        return 0
    scores = -estimator.score_samples(np.vstack([features for features, _ in events]))
    pieces = np.split(scores, np.cumsum([len(times) for _, times in events])[:-1])
    return sum(count_events(times, scores_of > threshold, policy) > 0
               for (_, times), scores_of in zip(events, pieces, strict=True))


@dataclass
class _NormalRows:
    """Settled normal rows, kept in uninterrupted stretches (one well, no silence, nothing else between)."""

    features: list[np.ndarray] = field(default_factory=list)
    times: list[np.ndarray] = field(default_factory=list)

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

    def row_count(self) -> int:
        return sum(len(t) for t in self.times)

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


def calibrate(scores: np.ndarray, times: np.ndarray, stretches: np.ndarray, options: TrainingOptions,
              own_rows: int | None = None) -> Calibration:
    """Lowest threshold whose flags stay within both false-alarm budgets on the normal rows.

    Candidates are score quantiles from the row budget upwards, so the row budget always
    holds; the event budget is checked by debouncing each normal stretch as the consumer would.
    When a prior joined the user's data, ``own_rows`` says how many leading rows are the
    user's: the event budget must then hold on them too, so hours of quiet synthetic wells
    cannot buy a noisy real well more alarms than its own budget.
    """
    hours = len(scores) / 3600.0
    bounds = np.flatnonzero(np.diff(stretches, prepend=-1, append=-1))
    pieces = list(itertools.pairwise(bounds))
    own_rows = len(scores) if own_rows is None else own_rows
    # Less normal data than one budgeted alarm takes cannot show the budget holds; it may show one alarm.
    allowed = max(options.false_alarms_per_hour * hours, 1.0)
    allowed_own = max(options.false_alarms_per_hour * own_rows / 3600.0, 1.0)
    candidates = np.unique(np.quantile(scores, np.linspace(1.0 - options.false_alarm_rate, 1.0, 41)))
    for threshold in candidates[:-1]:
        flags = scores > threshold
        counts = [(a < own_rows, count_events(times[a:b], flags[a:b], options.alarm_policy))
                  for a, b in pieces if flags[a:b].any()]
        events = sum(n for _, n in counts)
        if events <= allowed and sum(n for own, n in counts if own) <= allowed_own:
            return Calibration(float(threshold), float(flags.mean()), events, hours)
    return Calibration(float(candidates[-1]), 0.0, 0, hours)  # above every normal row: nothing flags
