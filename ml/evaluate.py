"""Streaming evaluation: replay labeled files through the consumer's own scoring and alarm code.

What an operator cares about is measured on alarm *events*, not rows: for every instance of
an event class, whether an alarm was raised while the event was under way and how long after
the transient's onset (the first row labeled 100+N; the first row labeled N for events
without a transient), 0 if the alarm was already up; and how many alarms started during
normal operation, per hour of it. Row-level ROC-AUC and PR-AUC (event rows against normal
rows) show how well the score ranks.

Each well's files are streamed in time order through :func:`engine.scoring.score_and_explain`
and :func:`engine.alarms.update_alarms` with one state per well, as the consumer would see
them; an alarm still active at the end of a well's data counts as it stands. Rows in a warm-up
(:func:`engine.features.warmup_mask`) cannot alarm and count nowhere. Normal operation means
*settled* normal rows, as in training: an alarm that starts on a normal row within
:data:`ml.train_model.RECOVERY_SECONDS` after an event row is the well's return to normal
and is counted apart from false alarms, and those rows count neither as normal hours nor in
the row metrics.

Detection is counted at two levels, and the event level is the one the targets are about:
*alarm events* (what ``anomaly_events`` holds, alarms still active at the end of the data
included), which is what an operator is paged for, and *flagged rows* (any row above the
threshold after the onset), which shows what the debouncer loses. Every alarmed instance
also carries the diagnosis of its first covering alarm (:mod:`engine.diagnosis`), pooled
into a confusion matrix of likely type against the labeled class.

Scores enter the report as margins over the model's threshold, so reports of different
models (the folds of :mod:`ml.cross_validation`) pool into one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from engine.alarms import AlarmPolicy, update_alarms
from engine.errors import InputError
from engine.features import WellState, warmup_mask
from engine.model import Model
from engine.readers import InstanceFile, discover, read_instance
from engine.schema import (
    EVENT_CLASSES,
    NORMAL_CLASS,
    TRANSIENT_OFFSET,
    event_of,
)
from engine.scoring import score_and_explain
from ml.diagnosis_training import UNKNOWN, confusion_report
from ml.train_model import files_by_well, recovering

#: The event classes whose alarms the targets are about (3W benchmark 2's classes).
TARGET_CLASSES: tuple[int, ...] = (1, 2, 5, 6, 7, 8)
_CURVE_POINTS = 200


@dataclass(frozen=True)
class InstanceResult:
    """One labeled event instance and what the alarms made of it."""

    path: str
    well_id: str
    event_class: int
    onset: str
    detected: bool
    delay_seconds: float | None
    rows_detected: bool = False
    rows_delay_seconds: float | None = None
    likely_class: int | None = None
    likely_class_probability: float | None = None
    top_sensors: str | None = None


@dataclass
class StreamedWells:
    """Everything an evaluation needs from one model's replay of some wells."""

    instances: list[InstanceResult] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    margins: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    normal_seconds: int = 0


def evaluate(model: Model, data: list[Path]) -> EvaluationReport:
    """Detection metrics of ``model`` on the labeled files under ``data``."""
    files = discover(data)
    if not files:
        raise InputError(f"no 3W files (.parquet, .csv) under {', '.join(map(str, data))}")
    streamed = stream_wells(model, files)
    return EvaluationReport.build([streamed], {"model_version": model.version, "threshold": model.threshold,
                                               "data": [str(p) for p in data]})


def stream_wells(model: Model, files: Sequence[InstanceFile]) -> StreamedWells:
    """Replay each well's files through scoring and alarms; collect instances, events and row margins.

    The events are those ``anomaly_events`` would show at the end of the data: each event's
    newest version, cleared or still active.
    """
    policy = AlarmPolicy.from_manifest(model.manifest)
    out = StreamedWells()
    for well, well_files in files_by_well(files).items():
        states: dict[str, WellState] = {}
        tables, events = [], []
        for instance in well_files:
            rows, evidence = score_and_explain(read_instance(instance.path), states, model)
            events.append(update_alarms(rows, states, policy, evidence))
            tables.append(rows.select(["event_time", "class", "anomaly_score"]))
        _collect(out, well, well_files, tables, latest_versions(pa.concat_tables(events)), model.threshold)
    return out


def latest_versions(versions: pa.Table) -> pa.Table:
    """Each event's newest version (what the ``anomaly_events`` view shows), in start order."""
    if versions.num_rows == 0:
        return versions
    ordered = versions.sort_by([("event_id", "ascending"), ("revision", "ascending")])
    ids = ordered["event_id"].to_numpy(zero_copy_only=False)
    last = np.flatnonzero(np.append(ids[1:] != ids[:-1], True))
    return ordered.take(pa.array(last)).sort_by("start_time")


def _collect(out: StreamedWells, well: str, files: list[InstanceFile], tables: list[pa.Table],
             events: pa.Table, threshold: float) -> None:
    """Add one well's rows, instances and alarm events to ``out``."""
    times = np.concatenate([t["event_time"].cast(pa.int64()).to_numpy() for t in tables])
    labels = np.concatenate([pc.fill_null(t["class"], -1).to_numpy() for t in tables]).astype(np.int64)
    margins = np.concatenate([t["anomaly_score"].to_numpy() for t in tables]) - threshold
    after_event = recovering(times, labels)
    usable = ~warmup_mask(times) & ~((labels == NORMAL_CLASS) & after_event)
    out.margins.append(margins[usable])
    out.labels.append(labels[usable])
    out.normal_seconds += int(((labels == NORMAL_CLASS) & usable).sum())
    starts = events["start_time"].cast(pa.int64()).to_numpy()
    ends = events["last_active_time"].cast(pa.int64()).to_numpy()
    at_start = np.clip(np.searchsorted(times, starts), 0, len(times) - 1)
    for row, event in enumerate(events.to_pylist()):
        normal = labels[at_start[row]] == NORMAL_CLASS
        ended = None if event["end_time"] is None else str(event["end_time"])
        out.events.append({"well_id": well, "start_time": str(event["start_time"]), "end_time": ended,
                           "peak_score": event["peak_score"], "label": event["label"], "state": event["state"],
                           "false_alarm": bool(normal and not after_event[at_start[row]]),
                           "after_event": bool(normal and after_event[at_start[row]])})
    offset = 0
    diagnoses = events.select(["likely_class", "likely_class_probability", "top_sensors"]).to_pylist()
    for instance, table in zip(files, tables, strict=True):
        size = table.num_rows
        piece = slice(offset, offset + size)
        result = _instance_result(instance, times[piece], labels[piece], margins[piece] > 0, starts, ends, diagnoses)
        offset += size
        if result is not None:
            out.instances.append(result)


def _instance_result(instance: InstanceFile, times: np.ndarray, labels: np.ndarray, flagged: np.ndarray,
                     starts: np.ndarray, ends: np.ndarray, diagnoses: list[dict[str, Any]]) -> InstanceResult | None:
    """Whether and when an alarm (and a flagged row) covered the instance's event, and what the alarm said it was.

    None for normal or unlabeled instances. ``starts``, ``ends`` and ``diagnoses`` describe the
    well's alarm events in time order.
    """
    events = [event_of(int(label)) for label in labels if label > NORMAL_CLASS]
    if not events:
        return None
    event_class = instance.event_class if instance.event_class in events else max(set(events), key=events.count)
    marks = labels == event_class + TRANSIENT_OFFSET
    if not marks.any():  # an event without a transient (3, 4) or an instance cut after it
        marks = labels == event_class
    onset, end = int(times[np.argmax(marks)]), int(times[-1])
    covering = np.flatnonzero((starts <= end) & (ends >= onset))
    delay, diagnosis = None, {}
    if covering.size:
        delay = max(0.0, (starts[covering].min() - onset) / 1000.0)
        diagnosis = diagnoses[int(covering[0])]
    flagged_after = np.flatnonzero(flagged & (times >= onset))
    row_delay = (times[flagged_after[0]] - onset) / 1000.0 if flagged_after.size else None
    return InstanceResult(str(instance.path), instance.well_id, event_class,
                          str(np.datetime64(onset, "ms")), covering.size > 0, delay, flagged_after.size > 0,
                          row_delay, diagnosis.get("likely_class"), diagnosis.get("likely_class_probability"),
                          diagnosis.get("top_sensors"))


@dataclass
class EvaluationReport:
    """Per-class detection metrics, false alarms and row-level ranking quality, printable and saveable."""

    meta: dict[str, Any]
    summary_metrics: dict[str, Any]
    classes: list[dict[str, Any]]
    instances: list[InstanceResult]
    events: list[dict[str, Any]]
    curves: dict[str, dict[str, list[float]]]

    @classmethod
    def build(cls, parts: Iterable[StreamedWells], meta: dict[str, Any]) -> EvaluationReport:
        """Pool the replays of one or several models (their rows compare through margins)."""
        parts = list(parts)
        instances = [i for p in parts for i in p.instances]
        events = [e for p in parts for e in p.events]
        margins = np.concatenate([m for p in parts for m in p.margins] or [np.empty(0)])
        labels = np.concatenate([m for p in parts for m in p.labels] or [np.empty(0, dtype=np.int64)])
        hours = sum(p.normal_seconds for p in parts) / 3600.0
        false_alarms = sum(e["false_alarm"] for e in events)
        after_event = sum(e["after_event"] for e in events)
        classes = [_class_metrics(c, instances, margins, labels) for c in sorted({i.event_class for i in instances})]
        targets = [i for i in instances if i.event_class in TARGET_CLASSES]
        overall = _ranking(margins, labels, labels > NORMAL_CLASS)
        summary = {
            **_detection(targets),
            **_row_detection(targets),
            "false_alarms": false_alarms,
            "normal_hours": round(hours, 3),
            "false_alarms_per_hour": round(false_alarms / hours, 4) if hours else None,
            "alarms_after_events": after_event,
            "roc_auc": overall["roc_auc"],
            "pr_auc": overall["pr_auc"],
        }
        summary["diagnosis"] = diagnosis_confusion(instances)
        return cls(meta, summary, classes, instances, events, _curves(margins, labels))

    def summary(self) -> str:
        """A plain-text table for the terminal."""
        header = (f"{'class':>5}  {'event':<28} {'events':>6} {'alarmed':>7} {'share':>6} {'delay med':>9} "
                  f"{'delay p90':>9} {'ROC-AUC':>7} {'PR-AUC':>6}")
        lines = [header, "-" * len(header)]
        for row in self.classes:
            lines.append(f"{row['class']:>5}  {EVENT_CLASSES.get(row['class'], '?')[:28]:<28} {row['events']:>6} "
                         f"{row['detected']:>7} {_pct(row['detected_share']):>6} {_minutes(row['delay_median_s']):>9} "
                         f"{_minutes(row['delay_p90_s']):>9} {_num(row['roc_auc']):>7} {_num(row['pr_auc']):>6}")
        s = self.summary_metrics
        lines += [
            "",
            f"transient events ({', '.join(map(str, TARGET_CLASSES))}): {s['detected']}/{s['events']} alarmed "
            f"({_pct(s['detected_share'])}), delay after onset median {_minutes(s['delay_median_s'])}, "
            f"p90 {_minutes(s['delay_p90_s'])}",
            f"flagged rows (before debouncing): {s['rows_detected']}/{s['events']} events have a flagged row "
            f"after onset, first one median {_minutes(s['rows_delay_median_s'])} after it",
            f"false alarms: {s['false_alarms']} in {s['normal_hours']:.1f} h of settled normal operation "
            f"= {_num(s['false_alarms_per_hour'], 2)} per hour "
            f"(+ {s['alarms_after_events']} alarms on the return to normal within 1 h after an event)",
            f"rows: ROC-AUC {_num(s['roc_auc'])}, PR-AUC {_num(s['pr_auc'])} (event rows vs normal rows)",
            f"diagnosis of alarmed events (all classes): {_diagnosis_line(s['diagnosis'])}",
        ]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"meta": self.meta, "summary": self.summary_metrics, "classes": self.classes,
                "instances": [asdict(i) for i in self.instances], "events": self.events, "curves": self.curves}

    def write(self, path: Path) -> None:
        """The report as JSON at ``path`` and its plots as a self-contained HTML page next to it."""
        from ml.plots import evaluation_figures, write_html

        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.to_json()
        path.write_text(json.dumps(data, indent=2))
        write_html(evaluation_figures(data), path.with_suffix(".html"), "PetroStream evaluation")


def _detection(instances: list[InstanceResult]) -> dict[str, Any]:
    delays = np.array([i.delay_seconds for i in instances if i.detected], dtype=float)
    detected = int(sum(i.detected for i in instances))
    return {
        "events": len(instances),
        "detected": detected,
        "detected_share": detected / len(instances) if instances else None,
        "delay_median_s": float(np.median(delays)) if delays.size else None,
        "delay_p90_s": float(np.quantile(delays, 0.9)) if delays.size else None,
    }


def _row_detection(instances: list[InstanceResult]) -> dict[str, Any]:
    """Detection by flagged rows, before the alarm rule debounces them."""
    delays = np.array([i.rows_delay_seconds for i in instances if i.rows_detected], dtype=float)
    return {"rows_detected": int(sum(i.rows_detected for i in instances)),
            "rows_delay_median_s": float(np.median(delays)) if delays.size else None}


def diagnosis_confusion(instances: Iterable[InstanceResult]) -> dict[str, Any]:
    """Likely type of each alarmed instance's first alarm against its labeled class (``-1`` = unknown)."""
    alarmed = [i for i in instances if i.detected]
    if not alarmed:
        return {"alarmed_events": 0}
    truth = np.array([i.event_class for i in alarmed])
    said = np.array([UNKNOWN if i.likely_class is None else i.likely_class for i in alarmed])
    return {"alarmed_events": len(alarmed), "unit": "alarm events", **confusion_report(truth, said)}


def _diagnosis_line(diagnosis: dict[str, Any]) -> str:
    if not diagnosis.get("alarmed_events"):
        return "no alarmed event"
    unknown = sum(row[diagnosis["labels"].index(UNKNOWN)] for row in diagnosis["matrix"]) \
        if UNKNOWN in diagnosis["labels"] else 0
    return (f"{_pct(diagnosis['accuracy'])} named right of {diagnosis['alarmed_events']} "
            f"({unknown} unknown); per class recall "
            + ", ".join(f"{c}: {_pct(v['recall'])}" for c, v in diagnosis["per_class"].items() if v["support"]))


def _class_metrics(event_class: int, instances: list[InstanceResult], margins: np.ndarray,
                   labels: np.ndarray) -> dict[str, Any]:
    positives = (labels == event_class) | (labels == event_class + TRANSIENT_OFFSET)
    mine = [i for i in instances if i.event_class == event_class]
    return {"class": event_class, **_detection(mine), **_row_detection(mine),
            **_ranking(margins, labels, positives)}


def _ranking(margins: np.ndarray, labels: np.ndarray, positives: np.ndarray) -> dict[str, Any]:
    """ROC-AUC and PR-AUC of ``positives`` rows against normal rows (None if either is missing)."""
    keep = positives | (labels == NORMAL_CLASS)
    truth = positives[keep]
    if truth.all() or not truth.any():
        return {"roc_auc": None, "pr_auc": None, "positive_rows": int(truth.sum())}
    return {"roc_auc": float(roc_auc_score(truth, margins[keep])),
            "pr_auc": float(average_precision_score(truth, margins[keep])), "positive_rows": int(truth.sum())}


def _curves(margins: np.ndarray, labels: np.ndarray) -> dict[str, dict[str, list[float]]]:
    """ROC and PR curves of all event rows against normal rows, thinned for plotting."""
    keep = labels >= NORMAL_CLASS
    truth = labels[keep] > NORMAL_CLASS
    if truth.all() or not truth.any():
        return {}
    fpr, tpr, _ = roc_curve(truth, margins[keep])
    precision, recall, _ = precision_recall_curve(truth, margins[keep])
    roc = _thin(fpr, tpr)
    pr = _thin(recall, precision)
    return {"roc": {"fpr": roc[0], "tpr": roc[1]}, "pr": {"recall": pr[0], "precision": pr[1]}}


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[list[float], list[float]]:
    pick = np.unique(np.linspace(0, len(x) - 1, min(len(x), _CURVE_POINTS)).astype(int))
    return [round(float(v), 5) for v in x[pick]], [round(float(v), 5) for v in y[pick]]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
