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
* the work is vectorised: one ``scipy.signal.lfilter`` call per horizon runs the recurrence
  for all sensors of a well in C.

Missing sensors are normal: a gap in a sensor repeats its last value; a sensor never seen
yields zeros, so a well without P-PDG is scored on what it has. A well silent for longer than
:data:`MAX_GAP_SECONDS` starts afresh (its old baseline says nothing about the new stretch),
and a sensor needs :data:`WARMUP_ROWS` observations before its features leave zero. Rows are
taken to be 1 s apart (3W's rate), so horizons are counted in rows.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

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
_SCALES = slice(7, 7 + len(FEATURE_KINDS))
_STATE_WIDTH = 7 + len(FEATURE_KINDS)
_SPREAD_KIND = FEATURE_KINDS.index("spread_3m")
_PER_SENSOR = FEATURE_KINDS.index(PER_SENSOR_KIND)
_LOG_KINDS = [k for k in range(len(FEATURE_KINDS)) if k != _SPREAD_KIND]
_FLOORS = np.array([ABSOLUTE_SPREAD_FLOOR[UNITS[sensor]] for sensor in FEATURE_SENSORS])
_MAX_GAP_MS = MAX_GAP_SECONDS * 1000


def _lfilter(b: list[float], a: list[float], x: np.ndarray, axis: int,
             zi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``scipy.signal.lfilter``, imported on first use: every command imports this module (for the
    feature names), and importing ``scipy.signal`` costs seconds a producer or a query never needs."""
    from scipy.signal import lfilter as scipy_lfilter

    return scipy_lfilter(b, a, x, axis=axis, zi=zi)


def _alpha(seconds: int) -> float:
    return 2.0 / (seconds + 1.0)


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
        flat = self.sensors.ravel()
        values = np.where(np.isnan(flat), None, flat).tolist()  # NaN (never seen) as null, in one pass
        return {"feature_version": FEATURE_VERSION, "sensors": values, "last_event_ms": self.last_event_ms,
                "feature_time_ms": self.feature_time_ms, "alarm": self.alarm.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> WellState:
        """Restore a state; one written by other features restarts them but keeps the de-dup mark."""
        if data.get("feature_version") != FEATURE_VERSION:
            return cls(last_event_ms=data.get("last_event_ms"))
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
            self._encoded[well] = json.dumps(states[well].to_json())
        return ("{" + ", ".join(f"{json.dumps(well)}: {self._encoded[well]}" for well in sorted(states)) + "}").encode()


def decode_states(payload: bytes | None) -> dict[str, WellState]:
    if not payload:
        return {}
    return {well: WellState.from_json(data) for well, data in json.loads(payload).items()}


def compute_features(observations: pa.Table, states: dict[str, WellState]) -> np.ndarray:
    """Feature matrix (rows x :data:`FEATURE_NAMES`) for observations, advancing ``states``.

    Rows must be in time order within each well; wells may be interleaved.
    """
    return model_inputs(sensor_deviations(observations, states))


def sensor_deviations(observations: pa.Table, states: dict[str, WellState]) -> np.ndarray:
    """Per-sensor deviations (rows x :data:`FEATURE_SENSORS` x :data:`FEATURE_KINDS`), advancing ``states``.

    In typical sizes of the well (the spread as a log ratio), before compression: what the
    model inputs are made of, and what a diagnosis explains an alarm with (which sensor moved,
    which way, how far).
    """
    if observations.num_rows == 0:
        return np.zeros((0, len(FEATURE_SENSORS), len(FEATURE_KINDS)))
    wells = well_rows(observations["well_id"])
    times = observations["event_time"].cast(pa.int64()).to_numpy()
    values = np.column_stack([
        observations[name].to_numpy(zero_copy_only=False).astype(np.float64) for name in FEATURE_SENSORS
    ])
    if len(wells.wells) == 1:  # the usual slice of a record: its rows are the well's, no copy
        return _well_deviations(values, times, states.setdefault(wells.wells[0], WellState()))
    features = np.empty((observations.num_rows, len(FEATURE_SENSORS), len(FEATURE_KINDS)))
    for well, rows in wells:
        features[rows] = _well_deviations(values[rows], times[rows], states.setdefault(well, WellState()))
    return features


def warmup_mask(times: np.ndarray) -> np.ndarray:
    """Which of one well's time-ordered rows fall in a warm-up, where features are held at 0.

    That is the first :data:`WARMUP_ROWS` rows of the data and of every stretch after a
    silence longer than :data:`MAX_GAP_SECONDS` (a sensor first seen later warms up later).
    """
    starts = np.flatnonzero(np.diff(times, prepend=times[:1] - _MAX_GAP_MS - 1) > _MAX_GAP_MS)
    position = np.arange(len(times)) - starts[np.searchsorted(starts, np.arange(len(times)), side="right") - 1]
    return position < WARMUP_ROWS


def _well_deviations(values: np.ndarray, times: np.ndarray, state: WellState) -> np.ndarray:
    """Deviations of consecutive rows of one well, restarting after long silences; advances ``state``."""
    previous = times[0] if state.feature_time_ms is None else state.feature_time_ms
    gaps = np.diff(times, prepend=previous) > _MAX_GAP_MS
    restarts = np.flatnonzero(gaps).tolist()
    if restarts in ([], [0]):  # no silence inside the rows (the usual case): one segment, no copy
        if restarts:
            state.sensors = _empty_sensor_state()
        per_sensor = _segment_features(values, state.sensors)
    else:
        per_sensor = np.zeros((len(times), len(FEATURE_SENSORS), len(FEATURE_KINDS)))
        for start, stop in itertools.pairwise([0, *restarts, len(times)]):
            if start == stop:
                continue
            if gaps[start]:
                state.sensors = _empty_sensor_state()
            per_sensor[start:stop] = _segment_features(values[start:stop], state.sensors)
    state.feature_time_ms = int(times[-1])
    return per_sensor


def model_inputs(deviations: np.ndarray) -> np.ndarray:
    """The detector's feature rows (:data:`FEATURE_NAMES`) from per-sensor deviations (rows x sensors x kinds).

    Levels and slopes get a signed ``log1p`` (the spread already is a log ratio); the largest
    magnitude per kind is taken before compressing, which is the same since both are monotone.
    """
    level = deviations[:, :, _PER_SENSOR]
    largest = _largest_over_sensors(deviations)
    largest[:, _LOG_KINDS] = np.log1p(largest[:, _LOG_KINDS])
    features = np.concatenate([np.sign(level) * np.log1p(np.abs(level)), largest], axis=1)
    return np.sign(features) * np.maximum(np.abs(features) - DEAD_BAND, 0.0)


def _largest_over_sensors(deviations: np.ndarray) -> np.ndarray:
    """``np.abs(deviations).max(axis=1)`` a sensor at a time: a reduction over the middle axis walks
    memory with a stride and took half of training's feature time; the maximum is exact, so the
    result is bit-identical."""
    largest = np.abs(deviations[:, 0, :])
    for sensor in range(1, deviations.shape[1]):
        np.maximum(largest, np.abs(deviations[:, sensor, :]), out=largest)
    return largest


def _segment_features(values: np.ndarray, sensors: np.ndarray) -> np.ndarray:
    """Deviations (rows x sensors x kinds) of rows without a long silence; updates ``sensors`` in place.

    Sensors are processed together from the row where each is first known; that row is 0 for
    every sensor seen before, so usually a single block covers them all.
    """
    filled = _forward_fill(values, sensors[:, _LAST])
    known = ~np.isnan(filled)
    first = np.where(known.any(axis=0), known.argmax(axis=0), values.shape[0])
    if not first.any():  # every sensor known from the first row (the usual case): one block, no copy
        return _block_features(filled, sensors, _FLOORS)
    out = np.zeros((values.shape[0], len(FEATURE_SENSORS), len(FEATURE_KINDS)))
    for start in np.unique(first[first < values.shape[0]]):
        columns = np.flatnonzero(first == start)
        block_state = sensors[columns]
        out[start:, columns] = _block_features(filled[start:, columns], block_state, _FLOORS[columns])
        sensors[columns] = block_state
    return out


def _block_features(x: np.ndarray, state: np.ndarray, floors: np.ndarray) -> np.ndarray:
    """Deviations (rows x sensors x kinds) of sensors known on every row of ``x``; updates ``state`` rows.

    Each raw quantity (a trailing mean's distance from the baseline, the short-term spread,
    the 1-vs-3-minute slope) is divided by its own typical size on this well: the geometric
    mean of its recent squares (an EWMA of logs over :data:`SCALE_SECONDS`, bias-corrected
    while young, taken up to the previous row). Logs make that scale robust: an event that
    drives a quantity 100 times its usual size for ten minutes moves its scale by a third,
    where an ordinary variance would have swallowed the event within minutes.
    """
    fresh = state[:, _COUNT] == 0  # first sight: the averages start at the sensor's value
    state[np.ix_(fresh, [_MEAN_1M, _MEAN_3M, _MEAN_10M, _BASE])] = x[0, fresh][:, None]
    state[np.ix_(fresh, [_VAR_3M])] = 0.0
    state[fresh, _SCALES] = 0.0
    before = state[:, _COUNT].copy()
    mean_1m = _ewm(x, _alpha(HORIZONS[0]), state, _MEAN_1M)
    mean_3m, var_3m = _ewm_with_variance(x, _alpha(SPREAD_SECONDS), state, _MEAN_3M, _VAR_3M)
    mean_10m = _ewm(x, _alpha(HORIZONS[2]), state, _MEAN_10M)
    base = _ewm(x, _alpha(BASELINE_SECONDS), state, _BASE)
    state[:, _COUNT] = before + x.shape[0]
    state[:, _LAST] = x[-1]

    # Each step writes into one of two buffers (rows x sensors x kinds) instead of a new array:
    # the same operations on the same numbers, without a fresh allocation and pass per step.
    block = np.empty((x.shape[0], x.shape[1], len(FEATURE_KINDS)))
    for kind, (minuend, subtrahend) in enumerate(((mean_1m, base), (mean_3m, base), (mean_10m, base))):
        np.subtract(minuend, subtrahend, out=block[:, :, kind])
    np.sqrt(var_3m, out=block[:, :, _SPREAD_KIND])
    np.subtract(mean_1m, mean_3m, out=block[:, :, FEATURE_KINDS.index("slope_1m_3m")])
    floor = np.maximum(RELATIVE_SPREAD_FLOOR * np.abs(base), floors)[:, :, None]
    log_squares = block**2
    log_squares += floor**2
    np.log(log_squares, out=log_squares)
    scale = _lagged_log_scale(log_squares, state, before)
    spread = 0.5 * (log_squares[:, :, _SPREAD_KIND] - scale[:, :, _SPREAD_KIND])
    np.multiply(-0.5, scale, out=scale)
    np.exp(scale, out=scale)
    block *= scale
    block[:, :, _SPREAD_KIND] = spread
    _zero_warmup(block, before)
    return block


def _zero_warmup(block: np.ndarray, before: np.ndarray) -> None:
    """Zero each sensor's rows up to its :data:`WARMUP_ROWS`-th observation (``before`` it had seen)."""
    for sensor in np.flatnonzero(before < WARMUP_ROWS):
        block[:int(WARMUP_ROWS - before[sensor]), sensor] = 0.0


def _lagged_log_scale(log_squares: np.ndarray, state: np.ndarray, before: np.ndarray) -> np.ndarray:
    """Bias-corrected EWMA of ``log_squares`` (rows x sensors x kinds) as of each previous row.

    The state keeps the uncorrected sums (starting at 0); dividing by ``1 - (1-alpha)**n``
    turns them into a proper weighted mean of the ``n`` rows seen, however young the sensor.
    Sensors that have seen as many rows share that divisor, so it is computed once for them.
    """
    alpha = _alpha(SCALE_SECONDS)
    rows, sensors, kinds = log_squares.shape
    sums, _ = _lfilter([alpha], [1.0, alpha - 1.0], log_squares.reshape(rows, -1), axis=0,
                      zi=((1.0 - alpha) * state[:, _SCALES]).reshape(1, -1))
    sums = sums.reshape(rows, sensors, kinds)
    seen_before, sensor_group = np.unique(before, return_inverse=True)
    seen = np.vstack([seen_before[None, :], seen_before + np.arange(1, rows)[:, None]])[:, :, None]
    divisor = (1.0 - (1.0 - alpha) ** seen)[:, sensor_group]
    scale = np.empty_like(sums)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(state[:, _SCALES], divisor[0], out=scale[0])
        np.divide(sums[:-1], divisor[1:], out=scale[1:])
    state[:, _SCALES] = sums[-1]
    return scale


def _forward_fill(x: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Replace gaps by the previous value of the column (the state's last value before the first row)."""
    if not np.isnan(x).any():
        return x
    series = np.vstack([last, x])
    index = np.where(~np.isnan(series), np.arange(series.shape[0])[:, None], 0)
    np.maximum.accumulate(index, axis=0, out=index)
    return np.take_along_axis(series, index, axis=0)[1:]


def _ewm(x: np.ndarray, alpha: float, state: np.ndarray, slot: int) -> np.ndarray:
    """EWMA ``y[t] = alpha*x[t] + (1-alpha)*y[t-1]`` of each column, continuing from ``state[:, slot]``."""
    y, _ = _lfilter([alpha], [1.0, alpha - 1.0], x, axis=0, zi=((1.0 - alpha) * state[:, slot])[None, :])
    state[:, slot] = y[-1]
    return y


def _ewm_with_variance(x: np.ndarray, alpha: float, state: np.ndarray, mean_slot: int,
                       var_slot: int) -> tuple[np.ndarray, np.ndarray]:
    """EWMA and exponentially weighted variance around it, continuing from the state's slots.

    ``var[t] = (1-alpha) * (var[t-1] + alpha * (x[t] - mean[t-1])**2)``, again a first-order
    linear recurrence once the squared deviations are known.
    """
    mean_before = np.vstack([state[:, mean_slot], np.empty((x.shape[0] - 1, x.shape[1]))])
    mean = _ewm(x, alpha, state, mean_slot)
    mean_before[1:] = mean[:-1]
    increments = (1.0 - alpha) * alpha * (x - mean_before) ** 2
    variance, _ = _lfilter([1.0], [1.0, alpha - 1.0], increments, axis=0,
                          zi=((1.0 - alpha) * state[:, var_slot])[None, :])
    state[:, var_slot] = variance[-1]
    return mean, variance
