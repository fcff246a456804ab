"""Per-well streaming features: the one feature code for training, batch scoring and the consumer.

One global model has to watch many wells whose operating points differ by orders of magnitude,
so every sensor is measured against the well's own recent behaviour. Per sensor:

* a baseline, the exponentially weighted mean (EWMA) over about an hour;
* the distances of the 1-, 3- and 10-minute trailing means from it (level), the spread
  around the 3-minute mean, and the 1-minute minus the 3-minute mean (slope);
* each of those five divided by its own typical size on this well: the geometric mean of its
  recent squares (an EWMA of logs over :data:`SCALE_SECONDS`). A log-average is robust: an
  event that drives a quantity a hundred times past its usual size for ten minutes moves
  that scale by a third, where an ordinary variance would have swallowed the event in minutes.

A well at 200 bar and one at 90 bar both read 0 while they run as usual. The model sees, per
sensor, the signed 1-minute level (which sensor moved, which way) and, per kind, the largest
magnitude over the sensors: a well whose informative sensor is P-TPT and one where it is
P-MON-CKP then look alike, and five sensor-free features carry most of the signal, which an
Isolation Forest (random splits over random features) needs. Values are compressed with a
signed ``log1p`` (the spread is a log ratio already) and a dead band maps deviations smaller
than about a third of the usual size to exactly 0: "as usual" is one dense point for the
forest, the same for a quiet real well as for a noisy one, and for a sensor in warm-up.

Everything is a first-order recurrence carried in a small per-well state, so:

* a micro-batch continues exactly where the previous one stopped (the state is saved with the
  stream checkpoint, so restarts continue exactly too), and scoring a file in one go gives
  bit-identical numbers to streaming it in pieces;
* the work is one compiled pass per batch (:mod:`engine.feature_kernel`) over all its wells,
  running every recurrence of a row together.

Missing sensors are normal: a gap in a sensor repeats its last value; a sensor never seen
yields zeros, so a well without P-PDG is scored on what it has. A well silent for longer than
:data:`MAX_GAP_SECONDS` starts afresh (its old baseline says nothing about the new stretch),
and a sensor needs :data:`WARMUP_ROWS` observations before its features leave zero. Rows are
taken to be 1 s apart (3W's rate), so horizons are counted in rows.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from engine import arrow_numpy
from engine.alarms import AlarmState
from engine.schema import UNITS
from engine.well_rows import well_rows

#: Sensors the features look at: the 3W 1.0 set most wells carry, plus the choke-side pair of 3W 2.0.
FEATURE_SENSORS: tuple[str, ...] = (
    "p_pdg", "p_tpt", "t_tpt", "p_mon_ckp", "t_jus_ckp", "p_jus_ckgl", "qgl", "p_jus_ckp", "t_mon_ckp",
)
#: Trailing horizons (seconds at 1 Hz) of the level features.
HORIZONS: tuple[int, ...] = (60, 180, 600)
#: Horizon of the short-term spread (around the 3-minute mean).
SPREAD_SECONDS = 180
BASELINE_SECONDS = 3600
#: Observations a sensor needs before its baseline is trusted; earlier rows read 0.
WARMUP_ROWS = 300
#: A well silent for longer than this starts a fresh baseline.
MAX_GAP_SECONDS = 900
#: A typical size never counts as smaller than this share of the level (sensor resolution) ...
RELATIVE_SPREAD_FLOOR = 1e-3
#: ... nor smaller than this, by unit (a sensor near zero would otherwise turn noise into alarms).
ABSOLUTE_SPREAD_FLOOR: dict[str, float] = {"Pa": 5e3, "°C": 0.05, "m3/s": 1e-3, "%": 0.5, "state": 0.1}

#: What is measured on every sensor; the model sees each kind's largest magnitude over the sensors ...
FEATURE_KINDS: tuple[str, ...] = ("level_1m", "level_3m", "level_10m", "spread_3m", "slope_1m_3m")
#: ... and, per sensor, only the fastest level (which sensor moved, and which way).
PER_SENSOR_KIND = "level_1m"
FEATURE_NAMES: tuple[str, ...] = (
    tuple(f"{sensor}__{PER_SENSOR_KIND}" for sensor in FEATURE_SENSORS) + tuple(f"max_abs__{k}" for k in FEATURE_KINDS)
)
FEATURE_VERSION = 2
#: Horizon over which each quantity's typical size is learned, per well and sensor.
SCALE_SECONDS = 4 * 3600
#: Compressed deviations up to this (``log1p``: 0.65 typical sizes; spread: a factor 1.65) read as exactly 0.
DEAD_BAND = 0.5

# Numbers a sensor keeps in the state, in this order: its last value, how many rows it has seen,
# its trailing means and short-term variance, its baseline, then one running log-scale per kind.
_LAST, _COUNT, _MEAN_1M, _MEAN_3M, _MEAN_10M, _VAR_3M, _BASE = range(7)
_SCALE_START = 7
_STATE_WIDTH = _SCALE_START + len(FEATURE_KINDS)
_SPREAD_KIND = FEATURE_KINDS.index("spread_3m")
_PER_SENSOR = FEATURE_KINDS.index(PER_SENSOR_KIND)
_FLOORS = np.array([ABSOLUTE_SPREAD_FLOOR[UNITS[sensor]] for sensor in FEATURE_SENSORS])
_MAX_GAP_MS = MAX_GAP_SECONDS * 1000
#: How a state's sensor numbers are written in a checkpoint (whatever the machine's byte order).
_SENSOR_BYTES = np.dtype("<f8")


def _alpha(seconds: int) -> float:
    return 2.0 / (seconds + 1.0)


#: Weights of the 1-, 3-, 10-minute means, the baseline and the typical sizes, in the kernel's order.
_ALPHAS = np.array([_alpha(s) for s in (HORIZONS[0], SPREAD_SECONDS, HORIZONS[2], BASELINE_SECONDS, SCALE_SECONDS)])

@dataclass
class WellState:
    """What the stream remembers of one well between batches (saved with the checkpoint).

    ``last_event_ms`` is the consumer's de-duplication mark; ``feature_time_ms`` is the last
    row the features saw (a long silence resets ``sensors``); ``alarm`` is the debouncer's.
    """

    sensors: np.ndarray = field(default_factory=lambda: _empty_sensor_state())
    last_event_ms: int | None = None
    feature_time_ms: int | None = None
    alarm: AlarmState = field(default_factory=AlarmState)

    def to_json(self) -> dict[str, object]:
        """The state as JSON values; the sensor numbers as the base64 of their float64 bytes.

        Exact (every bit, NaN for never seen included) and some 40 times cheaper than writing 108
        floats in decimal, which was most of a checkpoint of thousands of short-lived wells.
        """
        sensors = base64.b64encode(self.sensors.astype(_SENSOR_BYTES, copy=False).tobytes()).decode("ascii")
        return {"feature_version": FEATURE_VERSION, "sensors_f64": sensors, "last_event_ms": self.last_event_ms,
                "feature_time_ms": self.feature_time_ms, "alarm": self.alarm.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> WellState:
        """Restore a state; one written by other features restarts them but keeps the de-dup mark.

        Reads both encodings of the sensor numbers: base64 float64 bytes (``sensors_f64``) and,
        as checkpoints written before it hold, a list of numbers with null for NaN (``sensors``).
        """
        if data.get("feature_version") != FEATURE_VERSION:
            return cls(last_event_ms=data.get("last_event_ms"))
        if "sensors_f64" in data:
            raw = np.frombuffer(base64.b64decode(data["sensors_f64"], validate=True), dtype=_SENSOR_BYTES)
            raw = raw.astype(np.float64)  # a native, writable copy: the kernel updates it in place
        else:
            raw = np.array(data["sensors"], dtype=np.float64)  # null (never seen) reads back as NaN
        return cls(raw.reshape(len(FEATURE_SENSORS), _STATE_WIDTH), data.get("last_event_ms"),
                   data.get("feature_time_ms"), AlarmState.from_json(data.get("alarm") or {}))


def _empty_sensor_state() -> np.ndarray:
    state = np.full((len(FEATURE_SENSORS), _STATE_WIDTH), np.nan)
    state[:, _COUNT] = 0.0
    return state


def encode_states(states: dict[str, WellState]) -> bytes:
    """Serialise per-well states for a checkpoint (JSON: portable, and safe to load)."""
    return json.dumps({well: s.to_json() for well, s in sorted(states.items())}).encode()


class StateEncoder:
    """:func:`encode_states` of one shard's states batch after batch, re-encoding only the wells a batch touched.

    A checkpoint carries every well's state, and a shard of thousands of short-lived wells
    (3W's instances) has thousands of them while a batch moves a few dozen: encoding them all
    was a fifth of such a consumer's time. Each well's JSON is kept and joined the way
    ``json.dumps`` joins a dict, so the payload is byte for byte :func:`encode_states`'s.
    A states dict other than the last one seen (reloaded from a checkpoint) is encoded afresh.
    """

    def __init__(self) -> None:
        self._states: dict[str, WellState] | None = None
        self._encoded: dict[str, str] = {}

    def encode(self, states: dict[str, WellState], touched: Iterable[str]) -> bytes:
        """The payload of ``states``, whose wells outside ``touched`` are unchanged since the last call."""
        if states is not self._states:
            self._states, self._encoded = states, {}
        for well in self._encoded.keys() - states.keys():
            del self._encoded[well]
        for well in {*touched, *(states.keys() - self._encoded.keys())} & states.keys():
            self._encoded[well] = f"{json.dumps(well)}: {json.dumps(states[well].to_json())}"
        return ("{" + ", ".join([self._encoded[well] for well in sorted(states)]) + "}").encode()


def decode_states(payload: bytes | None) -> dict[str, WellState]:
    if not payload:
        return {}
    return {well: WellState.from_json(data) for well, data in json.loads(payload).items()}


def compute_features(observations: pa.Table, states: dict[str, WellState]) -> np.ndarray:
    """Feature matrix (rows x :data:`FEATURE_NAMES`) for observations, advancing ``states``.

    Rows must be in time order within each well; wells may be interleaved.
    """
    return model_inputs(sensor_deviations(observations, states))


def feature_columns(observations: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """A batch's event times (int64 ms) and its :data:`FEATURE_SENSORS` as a float64 rows x sensors
    matrix (nulls as NaN): what the feature recurrences read."""
    times = arrow_numpy.values(observations["event_time"])
    values = np.column_stack([arrow_numpy.values(observations[name]).astype(np.float64) for name in FEATURE_SENSORS])
    return times, values


def sensor_deviations(observations: pa.Table, states: dict[str, WellState]) -> np.ndarray:
    """Per-sensor deviations (rows x :data:`FEATURE_SENSORS` x :data:`FEATURE_KINDS`), advancing ``states``.

    In typical sizes of the well (the spread as a log ratio), before compression: what the
    model inputs are made of, and what a diagnosis explains an alarm with (which sensor moved,
    which way, how far). All wells of the batch go through the compiled kernel in one call.
    """
    if observations.num_rows == 0:
        return np.zeros((0, len(FEATURE_SENSORS), len(FEATURE_KINDS)))
    # Imported on first use: every command imports this module (for the feature names), and
    # loading (or, the first time, building) the kernel is work a producer or a query never needs.
    from engine.feature_kernel import batch_deviations

    wells = well_rows(observations["well_id"])
    times, values = feature_columns(observations)
    # A default built for every well (setdefault's) is a NumPy state each: thousands a batch of short wells.
    well_states = [states[well] if well in states else states.setdefault(well, WellState()) for well in wells.wells]
    bounds = np.array(wells.bounds, dtype=np.int64)
    firsts, ends = times[wells.order[bounds[:-1]]], times[wells.order[bounds[1:] - 1]]
    previous = np.array([first if state.feature_time_ms is None else state.feature_time_ms  # first sight: no silence
                         for first, state in zip(firsts.tolist(), well_states, strict=True)], dtype=np.int64)
    sensors = np.stack([state.sensors for state in well_states])
    deviations = batch_deviations(values, times, wells.order, bounds, previous, sensors, _FLOORS, _ALPHAS,
                                  RELATIVE_SPREAD_FLOOR, WARMUP_ROWS, _MAX_GAP_MS)
    for index, state in enumerate(well_states):
        state.sensors = sensors[index]
        state.feature_time_ms = int(ends[index])
    return deviations


def warmup_mask(times: np.ndarray) -> np.ndarray:
    """Which of one well's time-ordered rows fall in a warm-up, where features are held at 0.

    That is the first :data:`WARMUP_ROWS` rows of the data and of every stretch after a
    silence longer than :data:`MAX_GAP_SECONDS` (a sensor first seen later warms up later).
    """
    starts = np.flatnonzero(np.diff(times, prepend=times[:1] - _MAX_GAP_MS - 1) > _MAX_GAP_MS)
    position = np.arange(len(times)) - starts[np.searchsorted(starts, np.arange(len(times)), side="right") - 1]
    return position < WARMUP_ROWS


def model_inputs(deviations: np.ndarray) -> np.ndarray:
    """The detector's feature rows (:data:`FEATURE_NAMES`) from per-sensor deviations (rows x sensors x kinds).

    Levels and slopes get a signed ``log1p`` (the spread already is a log ratio); the largest
    magnitude per kind is taken before compressing, which is the same since both are monotone.
    Then the dead band. The kernel (:mod:`engine.feature_kernel`) does it in two passes a row.
    """
    from engine.feature_kernel import model_inputs as kernel_model_inputs

    return kernel_model_inputs(deviations, DEAD_BAND)
