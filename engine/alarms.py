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

How events reach the lake exactly once, visible from the moment they open: the consumer
appends *versions* of events to ``anomaly_event_versions`` under the micro-batch's own key — a
version of every event that opened, grew or cleared in that batch, numbered by ``revision``
— and ``anomaly_events`` is the view of each event's newest version (one row per event, see
:data:`engine.schema.LAKE_VIEWS`). An event still open is ``state = 'active'`` with a null
``end_time``; its last version is ``'cleared'`` and written exactly once, in the batch where it
clears. The open event of each well (with the revision its next version gets) lives in
:class:`AlarmState` inside the well's checkpointed state, so a retried batch starts from the
same checkpoint, re-derives the same versions with the same revisions, and its lake write
replaces the earlier attempt's (also when it derives none); a version is never written twice
nor lost. A stream that ends (an evaluation run, a file) calls :func:`close_all` to clear the
events still open.

The diagnosis columns (``likely_class``, ``likely_class_probability``, ``top_sensors``,
``explanation``) are fields of :class:`OpenEvent`, written with every version; they stay null
until a diagnosis sets them (:mod:`engine.diagnosis`, from the evidence the caller passes):
at the peak of the event's first piece when it opens, and again whenever a later piece
brings a higher peak.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine import arrow_numpy
from engine.schema import ANOMALY_EVENT_VERSIONS_SCHEMA
from engine.well_rows import WellRows, well_rows

if TYPE_CHECKING:
    from engine.diagnosis import Diagnosis, Evidence
    from engine.features import WellState

ACTIVE, CLEARED = "active", "cleared"


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
    #: The revision the event's next version in the lake gets (0 for its first).
    revision: int = 0
    #: The diagnosis (engine/diagnosis.py): a 3W class code, its probability, the 3W tags that
    #: drove the alarm (strongest first, comma-separated) and a sentence for the operator.
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


#: One change of an event within a batch: the well, the event as it now is, and whether it cleared.
Change = tuple[str, OpenEvent, bool]


def update_alarms(rows: pa.Table, states: Mapping[str, WellState], policy: AlarmPolicy,
                  evidence: Evidence | None = None) -> pa.Table:
    """Advance each well's alarm with scored rows (``well_data`` columns); return the event versions to land.

    One version per event that opened, grew or cleared in these rows (rows of
    ``anomaly_event_versions``). Rows must be in time order within each well and every well must
    have a state (scoring creates them). Rows without a flag (no model yet) count as unflagged.
    ``evidence`` (from :func:`engine.scoring.score_and_explain`, aligned with ``rows``)
    diagnoses events.
    """
    changes: list[Change] = []
    if rows.num_rows == 0:
        return versions_table([])
    times = arrow_numpy.values(rows["event_time"])
    flags = arrow_numpy.filled(rows["anomaly_flag"], 0).astype(np.int8)
    scores = arrow_numpy.filled(rows["anomaly_score"], np.nan)
    labels = arrow_numpy.filled(rows["class"], -1)
    versions = rows["model_version"]
    groups = well_rows(rows["well_id"])
    quiet = _QuietRows.of(groups, times, flags, policy)
    for position, (well, index) in enumerate(groups):
        if quiet.pass_through(position, states[well].alarm, policy):
            continue
        version = versions[int(index[0])].as_py()
        diagnose = None if evidence is None else _at_rows(evidence, index)
        touched = _advance(states[well].alarm, times[index], flags[index], scores[index], labels[index], version,
                           policy, diagnose)
        changes.extend((well, event, cleared) for event, cleared in touched)
    return versions_table(changes)


def close_all(states: Mapping[str, WellState]) -> pa.Table:
    """End of the stream: clear every open event and return their final versions."""
    changes = [(well, state.alarm.open, True) for well, state in sorted(states.items())
               if state.alarm.open is not None]
    for state in states.values():
        state.alarm.open = None
    return versions_table(changes)


def cleared(versions: pa.Table) -> pa.Table:
    """The final versions among event versions: one row per event that ended."""
    return versions.filter(pc.equal(versions["state"], CLEARED))


def count_events(times: np.ndarray, flags: np.ndarray, policy: AlarmPolicy) -> int:
    """How many events one uninterrupted sequence of rows of one well raises (for calibration)."""
    touched = _advance(AlarmState(), times, flags.astype(np.int8), np.zeros(len(times)), np.full(len(times), -1),
                       None, policy)
    return len({id(event) for event, _ in touched})


def _at_rows(evidence: Evidence, index: np.ndarray) -> Callable[[int], Diagnosis]:
    """Diagnosis by a position among one well's rows (``index`` maps them to the batch's rows)."""
    return lambda position: evidence.diagnose(int(index[position]))


@dataclass(frozen=True)
class _QuietRows:
    """Per well of a batch, what passing its rows through the debouncer takes when none is flagged.

    Most wells of a batch of many short-lived ones have no flag and no open event: running each
    through :func:`_advance` (a dozen array calls on a few hundred rows) was most of the alarms'
    cost there. Such a well's state moves as :func:`_advance` would move it, found from these
    numbers (computed for all wells at once) in a few Python operations.
    """

    flagged: list[bool]
    rows: list[int]
    first_ms: list[int]
    last_ms: list[int]
    #: Position among the well's rows of the first row after its last silence (0: no silence).
    last_break: list[int]

    @classmethod
    def of(cls, groups: WellRows, times: np.ndarray, flags: np.ndarray, policy: AlarmPolicy) -> _QuietRows:
        ordered, starts = times[groups.order], np.array(groups.bounds[:-1])
        ends = np.array(groups.bounds[1:])
        positions = np.arange(len(ordered))
        breaks = np.zeros(len(ordered), dtype=np.int64)
        breaks[1:] = np.where(np.diff(ordered) > policy.min_gap_seconds * 1000, positions[1:], 0)
        last_break = np.maximum.reduceat(breaks, starts)  # a well's own first row is no break: not past start
        return cls(np.logical_or.reduceat(flags[groups.order] != 0, starts).tolist(), (ends - starts).tolist(),
                   ordered[starts].tolist(), ordered[ends - 1].tolist(),
                   np.where(last_break > starts, last_break - starts, 0).tolist())

    def pass_through(self, well: int, state: AlarmState, policy: AlarmPolicy) -> bool:
        """If the ``well``-th well's rows can neither raise nor continue an event (none flagged, no
        event open, too few flags left in the window), advance ``state`` past them as :func:`_advance`
        does and return True; else change nothing and return False."""
        if self.flagged[well] or state.open is not None:
            return False
        silence = state.last_ms is not None and self.first_ms[well] - state.last_ms > policy.min_gap_seconds * 1000
        recent = [] if silence else state.recent_flags
        if sum(recent) >= policy.min_flags:  # the flags before these rows may still raise the alarm
            return False
        length = len(recent) + self.rows[well]  # of the history: the recent flags, then these rows' zeros
        start = max(len(recent) + self.last_break[well] if self.last_break[well] else 0,
                    length - policy.window_rows + 1)
        state.recent_flags = recent[start:] + [0] * (length - max(start, len(recent)))
        state.last_ms = self.last_ms[well]
        return True


def _advance(state: AlarmState, times: np.ndarray, flags: np.ndarray, scores: np.ndarray, labels: np.ndarray,
             version: str | None, policy: AlarmPolicy,
             diagnose: Callable[[int], Diagnosis] | None = None) -> list[tuple[OpenEvent, bool]]:
    """Run one well's rows through its debouncer; return each event that opened, grew or cleared
    (once, as it ends up after these rows, with whether it cleared), in time order."""
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
    touched: list[tuple[OpenEvent, bool]] = []
    if active.size:
        previous = np.concatenate([[state.open.last_active_ms if state.open else -np.inf], times[active[:-1]]])
        first, *others = np.split(active, np.flatnonzero(times[active] - previous > gap_ms))
        if first.size:  # active rows within the gap of the open event continue it (diagnosed if at a new peak)
            peak = scores[first]
            higher = not np.isnan(peak).all() and float(np.nanmax(peak)) > state.open.peak_score
            state.open.absorb(_event_of(first, times, scores, labels, version, diagnose if higher else None))
        for group in others:
            if state.open is not None:
                touched.append((state.open, True))
            state.open = _event_of(group, times, scores, labels, version, diagnose)
    if state.open is not None and times[-1] - state.open.last_active_ms > gap_ms:
        touched.append((state.open, True))
        state.open = None
    if state.open is not None and active.size:  # opened or grew, still active
        touched.append((state.open, False))
    return touched


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
              version: str | None, diagnose: Callable[[int], Diagnosis] | None = None) -> OpenEvent:
    """The event made of these active row positions, diagnosed at its peak when ``diagnose`` is given."""
    peak = int(active[np.nanargmax(scores[active])]) if not np.isnan(scores[active]).all() else int(active[0])
    event = OpenEvent(int(times[active[0]]), int(times[active[-1]]), float(np.nan_to_num(scores[peak], nan=0.0)),
                      int(times[peak]), int(active.size), _label_counts(labels[active]), version)
    if diagnose is not None:
        found = diagnose(peak)
        event.likely_class, event.likely_class_probability = found.likely_class, found.probability
        event.top_sensors, event.explanation = found.top_sensors, found.explanation
    return event


def _label_counts(labels: np.ndarray) -> dict[str, int]:
    """How many rows carry each known label (negative: none), in order of first appearance, as a
    ``Counter`` of the rows would list them; counted in NumPy (an event can span thousands of rows)."""
    known = labels[labels >= 0]
    values, first, counts = np.unique(known, return_index=True, return_counts=True)
    order = np.argsort(first)
    return {str(int(value)): int(count) for value, count in zip(values[order], counts[order], strict=True)}


def versions_table(changes: Iterable[Change]) -> pa.Table:
    """Rows of ``anomaly_event_versions``: the next version of each changed event (advancing its revision)."""
    records = []
    for well, event, ended in changes:
        records.append({
            "event_id": f"{well}@{event.start_ms}",
            "well_id": well,
            "start_time": event.start_ms,
            "end_time": event.last_active_ms if ended else None,
            "state": CLEARED if ended else ACTIVE,
            "peak_score": event.peak_score,
            "model_version": event.model_version,
            "label": _dominant(event.labels),
            "likely_class": event.likely_class,
            "likely_class_probability": event.likely_class_probability,
            "top_sensors": event.top_sensors,
            "explanation": event.explanation,
            "peak_time": event.peak_ms,
            "last_active_time": event.last_active_ms,
            "duration_seconds": (event.last_active_ms - event.start_ms) / 1000.0,
            "active_rows": event.active_rows,
            "revision": event.revision,
        })
        event.revision += 1
    columns = {name: [r[name] for r in records] for name in ANOMALY_EVENT_VERSIONS_SCHEMA.names}
    arrays = [arrow_numpy.from_pylist(columns[f.name], f.type) for f in ANOMALY_EVENT_VERSIONS_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=ANOMALY_EVENT_VERSIONS_SCHEMA)


def _dominant(labels: Mapping[str, int]) -> int | None:
    """The most frequent label (the smallest on a tie), or None."""
    if not labels:
        return None
    return int(min(labels, key=lambda label: (-labels[label], int(label))))
