"""Alarm events: row flags debounced into the events an operator is paged for.

A single flagged second is noise; an operator wants one alarm per incident. Per well, the
alarm is *active* on a row when at least ``min_flags`` of the last ``window_rows`` rows
(that row included) are flagged. Active rows closer than ``min_gap_seconds`` to each other
belong to one event; an event *closes* once a row arrives more than ``min_gap_seconds``
after its last active row, and a silence that long also restarts the flag window. An
event's start is its first active row (the moment the alarm is raised), its end its last
active row; its peak score and label (the most frequent non-null source class) are taken
over its active rows, so an event's numbers do not depend on where micro-batches happen to
split the stream.

How events reach the lake (``anomaly_events``) without ever appearing twice: the consumer
writes, under the micro-batch's own key, only the events that *closed* in that batch; the
open event of each well lives in :class:`AlarmState` inside the well's checkpointed state.
A retried batch starts from the same checkpoint, so it re-derives exactly the same closed
events and its lake write replaces the earlier attempt; an event closes in exactly one
batch, so it lands exactly once. (One gap: ``Lake.write`` skips an empty table, so if the
active model changed between a failed attempt and its retry and the retry closes no event,
the failed attempt's events stay.) The price is that an ongoing alarm is not in the table
until it ends: :func:`open_events` lists the open ones from the checkpointed states, with
the same columns and ``status = 'open'``, for live views. A stream that ends (an evaluation
run, a file) calls :func:`close_all` to flush them.

The diagnosis columns (``likely_class``, ``likely_class_probability``, ``top_sensors``,
``explanation``, see :mod:`engine.diagnosis`) are fields of :class:`OpenEvent`: computed at
the peak row of the event's first piece when it opens, and again whenever a later piece
brings a higher peak; null when the caller gave no evidence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.schema import ANOMALY_EVENTS_SCHEMA

if TYPE_CHECKING:
    from engine.diagnosis import Diagnosis, Evidence
    from engine.features import WellState

OPEN, CLOSED = "open", "closed"


@dataclass(frozen=True)
class AlarmPolicy:
    """How flags become events; calibrated with the threshold and stored in the model manifest."""

    window_rows: int = 60
    min_flags: int = 20
    min_gap_seconds: int = 600

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any] | None) -> AlarmPolicy:
        """The policy a model was calibrated with (the defaults for models that predate it)."""
        stored = (manifest or {}).get("alarm_policy") or {}
        return cls(**{name: int(value) for name, value in stored.items() if name in cls.__dataclass_fields__})

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class OpenEvent:
    """An alarm that has not closed yet: what is known of it so far."""

    start_ms: int
    last_active_ms: int
    peak_score: float
    peak_ms: int
    active_rows: int
    labels: dict[str, int]
    model_version: str | None
    #: The diagnosis at the peak (engine/diagnosis.py): a 3W class code, its probability, the 3W
    #: tags that drove the alarm (strongest first, comma-separated) and a sentence for the operator.
    likely_class: int | None = None
    likely_class_probability: float | None = None
    top_sensors: str | None = None
    explanation: str | None = None

    def absorb(self, other: OpenEvent) -> None:
        """Extend this event by a later piece of the same event (a higher peak brings its diagnosis)."""
        self.last_active_ms = other.last_active_ms
        if other.peak_score > self.peak_score:
            self.peak_score, self.peak_ms = other.peak_score, other.peak_ms
            self.likely_class, self.likely_class_probability = other.likely_class, other.likely_class_probability
            self.top_sensors, self.explanation = other.top_sensors, other.explanation
        self.active_rows += other.active_rows
        for label, count in other.labels.items():
            self.labels[label] = self.labels.get(label, 0) + count


@dataclass
class AlarmState:
    """One well's debouncer memory: its latest flags, the time of its last row, its open event."""

    recent_flags: list[int] = field(default_factory=list)
    last_ms: int | None = None
    open: OpenEvent | None = None

    def to_json(self) -> dict[str, object]:
        return {"recent_flags": "".join(map(str, self.recent_flags)), "last_ms": self.last_ms,
                "open": None if self.open is None else asdict(self.open)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlarmState:
        opened = data.get("open")
        return cls([int(c) for c in data.get("recent_flags", "")], data.get("last_ms"),
                   None if opened is None else OpenEvent(**opened))


def update_alarms(rows: pa.Table, states: Mapping[str, WellState], policy: AlarmPolicy,
                  evidence: Evidence | None = None) -> pa.Table:
    """Advance each well's alarm with scored rows (``well_data`` columns); return the events that closed.

    Rows must be in time order within each well and every well must have a state (scoring
    creates them). Rows without a flag (no model yet) count as unflagged. ``evidence``
    (from :func:`engine.scoring.score_and_explain`, aligned with ``rows``) diagnoses events.
    """
    closed: list[tuple[str, OpenEvent]] = []
    if rows.num_rows == 0:
        return events_table([], CLOSED)
    encoded = pc.dictionary_encode(rows["well_id"]).combine_chunks()
    codes = encoded.indices.to_numpy()
    times = rows["event_time"].cast(pa.int64()).to_numpy()
    flags = pc.fill_null(rows["anomaly_flag"], 0).to_numpy().astype(np.int8)
    scores = pc.fill_null(rows["anomaly_score"], np.nan).to_numpy()
    labels = pc.fill_null(rows["class"], -1).to_numpy()
    versions = rows["model_version"]
    for code, well in enumerate(encoded.dictionary.to_pylist()):
        index = np.flatnonzero(codes == code)
        version = versions[int(index[0])].as_py()
        diagnose = None if evidence is None else _at_rows(evidence, index)
        pieces = _advance(states[well].alarm, times[index], flags[index], scores[index], labels[index], version,
                          policy, diagnose)
        closed.extend((well, event) for event in pieces)
    return events_table(closed, CLOSED)


def close_all(states: Mapping[str, WellState]) -> pa.Table:
    """End of the stream: close every open event and return them."""
    closed = [(well, state.alarm.open) for well, state in sorted(states.items()) if state.alarm.open is not None]
    for state in states.values():
        state.alarm.open = None
    return events_table(closed, CLOSED)


def open_events(states: Mapping[str, WellState]) -> pa.Table:
    """The alarms still open in these states (``status = 'open'``), e.g. read from checkpoints for a live view."""
    return events_table([(w, s.alarm.open) for w, s in sorted(states.items()) if s.alarm.open is not None], OPEN)


def count_events(times: np.ndarray, flags: np.ndarray, policy: AlarmPolicy) -> int:
    """How many events one uninterrupted sequence of rows of one well raises (for calibration)."""
    state = AlarmState()
    closed = _advance(state, times, flags.astype(np.int8), np.zeros(len(times)), np.full(len(times), -1), None,
                      policy)
    return len(closed) + (state.open is not None)


def _at_rows(evidence: Evidence, index: np.ndarray) -> Callable[[int], Diagnosis]:
    """Diagnosis by a position among one well's rows (``index`` maps them to the batch's rows)."""
    return lambda position: evidence.diagnose(int(index[position]))


def _advance(state: AlarmState, times: np.ndarray, flags: np.ndarray, scores: np.ndarray, labels: np.ndarray,
             version: str | None, policy: AlarmPolicy,
             diagnose: Callable[[int], Diagnosis] | None = None) -> list[OpenEvent]:
    """Run one well's rows through its debouncer; return the events that closed, in time order."""
    gap_ms = policy.min_gap_seconds * 1000
    if state.last_ms is not None and times[0] - state.last_ms > gap_ms:
        state.recent_flags = []  # after a silence, older flags say nothing about now
    history = np.concatenate([np.asarray(state.recent_flags, dtype=np.int64), flags])
    offset = len(history) - len(flags)
    counts, segment_start = _window_counts(history, offset + np.flatnonzero(np.diff(times) > gap_ms) + 1,
                                           policy.window_rows)
    state.recent_flags = history[max(segment_start, len(history) - policy.window_rows + 1):].tolist()
    state.last_ms = int(times[-1])
    active = np.flatnonzero(counts[offset:] >= policy.min_flags)
    closed: list[OpenEvent] = []
    if active.size:
        previous = np.concatenate([[state.open.last_active_ms if state.open else -np.inf], times[active[:-1]]])
        first, *others = np.split(active, np.flatnonzero(times[active] - previous > gap_ms))
        if first.size:  # active rows within the gap of the open event continue it (diagnosed if at a new peak)
            higher = np.nan_to_num(np.nanmax(scores[first]), nan=0.0) > state.open.peak_score
            state.open.absorb(_event_of(first, times, scores, labels, version, diagnose if higher else None))
        for group in others:
            if state.open is not None:
                closed.append(state.open)
            state.open = _event_of(group, times, scores, labels, version, diagnose)
    if state.open is not None and times[-1] - state.open.last_active_ms > gap_ms:
        closed.append(state.open)
        state.open = None
    return closed


def _window_counts(history: np.ndarray, breaks: np.ndarray, window: int) -> tuple[np.ndarray, int]:
    """Flags among the last ``window`` rows at each position, not reaching back over a silence.

    ``breaks`` are positions where a stretch after a silence begins; also returns where the
    last stretch begins.
    """
    segment = np.zeros(len(history), dtype=np.int64)
    segment[breaks] = breaks
    np.maximum.accumulate(segment, out=segment)
    totals = np.concatenate([[0], np.cumsum(history)])
    position = np.arange(len(history))
    return totals[position + 1] - totals[np.maximum(position + 1 - window, segment)], int(segment[-1])


def _event_of(active: np.ndarray, times: np.ndarray, scores: np.ndarray, labels: np.ndarray,
              version: str | None, diagnose: Callable[[int], Diagnosis] | None) -> OpenEvent:
    """The event made of these active row positions, diagnosed at its peak when ``diagnose`` is given."""
    peak = int(active[np.nanargmax(scores[active])]) if not np.isnan(scores[active]).all() else int(active[0])
    counts = Counter(int(label) for label in labels[active] if label >= 0)
    event = OpenEvent(int(times[active[0]]), int(times[active[-1]]), float(np.nan_to_num(scores[peak], nan=0.0)),
                      int(times[peak]), int(active.size), {str(k): v for k, v in counts.items()}, version)
    if diagnose is not None:
        found = diagnose(peak)
        event.likely_class, event.likely_class_probability = found.likely_class, found.probability
        event.top_sensors, event.explanation = found.top_sensors, found.explanation
    return event


def events_table(events: Iterable[tuple[str, OpenEvent]], status: str) -> pa.Table:
    """Rows of ``anomaly_events`` for (well, event) pairs."""
    records = [{
        "well_id": well,
        "event_id": f"{well}@{event.start_ms}",
        "start_time": event.start_ms,
        "end_time": event.last_active_ms,
        "peak_time": event.peak_ms,
        "peak_score": event.peak_score,
        "duration_seconds": (event.last_active_ms - event.start_ms) / 1000.0,
        "active_rows": event.active_rows,
        "label": _dominant(event.labels),
        "model_version": event.model_version,
        "status": status,
        "likely_class": event.likely_class,
        "likely_class_probability": event.likely_class_probability,
        "top_sensors": event.top_sensors,
        "explanation": event.explanation,
    } for well, event in events]
    columns = {name: [r[name] for r in records] for name in ANOMALY_EVENTS_SCHEMA.names}
    arrays = [pa.array(columns[f.name], pa.int64() if pa.types.is_timestamp(f.type) else f.type).cast(f.type)
              for f in ANOMALY_EVENTS_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=ANOMALY_EVENTS_SCHEMA)


def _dominant(labels: Mapping[str, int]) -> int | None:
    """The most frequent label (the smallest on a tie), or None."""
    if not labels:
        return None
    return int(min(labels, key=lambda label: (-labels[label], int(label))))
