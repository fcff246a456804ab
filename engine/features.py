"""Per-well streaming features: the one feature code for training, batch scoring and the consumer.

Each sensor is compared with the well's own recent behaviour, so one global model can watch
wells with different operating points. Everything is an exponentially weighted average
(EWMA) carried in a small per-well state, which makes three things true at once:

* a micro-batch continues exactly where the previous one stopped (the state is the only
  memory, and it is saved with the stream checkpoint, so restarts continue exactly too);
* scoring a whole file in one go gives the same numbers as streaming it in pieces;
* the work is vectorised (``scipy.signal.lfilter`` runs each recurrence in C).

Missing sensors are normal: a value missing after the sensor was seen repeats its last
value; a sensor never seen yields neutral (zero) features.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from scipy.signal import lfilter

#: Sensors the features look at: the ones most 3W wells carry.
FEATURE_SENSORS: tuple[str, ...] = ("p_pdg", "p_tpt", "t_tpt", "p_mon_ckp", "t_jus_ckp", "p_jus_ckgl", "qgl")
FAST_SECONDS = 60
MID_SECONDS = 600
BASELINE_SECONDS = 3600
#: Observations a sensor needs before its baseline is trusted; earlier rows score as neutral.
WARMUP_ROWS = 300
#: The baseline spread never counts as smaller than this share of the level (sensor resolution).
RELATIVE_SPREAD_FLOOR = 1e-3
_ABSOLUTE_SPREAD_FLOOR = 1e-6

FEATURE_KINDS: tuple[str, ...] = ("dev_fast", "dev_mid", "volatility", "slope")
FEATURE_NAMES: tuple[str, ...] = tuple(f"{s}__{k}" for s in FEATURE_SENSORS for k in FEATURE_KINDS)
FEATURE_VERSION = 1

# Order of the numbers a sensor keeps in the state.
_LAST, _COUNT, _FAST, _MID, _FAST_VAR, _BASE, _BASE_VAR = range(7)
_STATE_WIDTH = 7


def _alpha(seconds: int) -> float:
    return 2.0 / (seconds + 1.0)


@dataclass
class WellState:
    """What the features remember of one well between batches."""

    sensors: np.ndarray = field(default_factory=lambda: _empty_sensor_state())
    last_event_ms: int | None = None

    def to_json(self) -> dict[str, object]:
        values = [None if np.isnan(v) else float(v) for v in self.sensors.ravel()]
        return {"sensors": values, "last_event_ms": self.last_event_ms}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> WellState:
        raw = np.array([np.nan if v is None else v for v in data["sensors"]], dtype=np.float64)
        return cls(raw.reshape(len(FEATURE_SENSORS), _STATE_WIDTH), data.get("last_event_ms"))


def _empty_sensor_state() -> np.ndarray:
    state = np.full((len(FEATURE_SENSORS), _STATE_WIDTH), np.nan)
    state[:, _COUNT] = 0.0
    return state


def encode_states(states: dict[str, WellState]) -> bytes:
    """Serialise per-well states for a checkpoint (JSON: portable, and safe to load)."""
    return json.dumps({well: s.to_json() for well, s in sorted(states.items())}).encode()


def decode_states(payload: bytes | None) -> dict[str, WellState]:
    if not payload:
        return {}
    return {well: WellState.from_json(data) for well, data in json.loads(payload).items()}


def compute_features(observations: pa.Table, states: dict[str, WellState]) -> np.ndarray:
    """Feature matrix (rows x :data:`FEATURE_NAMES`) for observations, advancing ``states``.

    Rows must be in time order within each well; wells may be interleaved.
    """
    wells = observations["well_id"].to_numpy(zero_copy_only=False)
    values = np.column_stack([
        observations[name].to_numpy(zero_copy_only=False).astype(np.float64) for name in FEATURE_SENSORS
    ]) if observations.num_rows else np.empty((0, len(FEATURE_SENSORS)))
    features = np.zeros((observations.num_rows, len(FEATURE_NAMES)))
    for well in dict.fromkeys(wells):
        rows = np.flatnonzero(wells == well)
        state = states.setdefault(well, WellState())
        features[rows] = _well_features(values[rows], state.sensors)
    return features


def _well_features(values: np.ndarray, sensor_state: np.ndarray) -> np.ndarray:
    """Features of consecutive rows of one well; updates ``sensor_state`` in place."""
    out = np.zeros((values.shape[0], len(FEATURE_SENSORS), len(FEATURE_KINDS)))
    for column in range(values.shape[1]):
        out[:, column, :] = _sensor_features(values[:, column], sensor_state[column])
    return out.reshape(values.shape[0], -1)


def _sensor_features(x: np.ndarray, state: np.ndarray) -> np.ndarray:
    """The four features of one sensor over consecutive rows (zeros while it is unknown)."""
    result = np.zeros((x.size, len(FEATURE_KINDS)))
    filled = _forward_fill(x, state[_LAST])
    valid = np.flatnonzero(~np.isnan(filled))
    if valid.size == 0:
        return result
    start = valid[0]
    seq = filled[start:]
    if state[_COUNT] == 0:  # first sight of this sensor: the averages start at its value
        state[[_FAST, _MID, _BASE]] = seq[0]
        state[[_FAST_VAR, _BASE_VAR]] = 0.0
    fast, fast_var = _ewm_with_variance(seq, _alpha(FAST_SECONDS), state, _FAST, _FAST_VAR)
    mid, state[_MID] = _ewm(seq, _alpha(MID_SECONDS), state[_MID])
    base, base_var = _ewm_with_variance(seq, _alpha(BASELINE_SECONDS), state, _BASE, _BASE_VAR)
    count = state[_COUNT] + np.arange(1, seq.size + 1)
    state[_COUNT] = count[-1]
    state[_LAST] = seq[-1]

    spread = np.maximum(np.sqrt(base_var), np.maximum(RELATIVE_SPREAD_FLOOR * np.abs(base), _ABSOLUTE_SPREAD_FLOOR))
    block = np.column_stack([
        (fast - base) / spread,
        (mid - base) / spread,
        np.sqrt(fast_var) / spread,
        (fast - mid) / spread,
    ])
    block[count <= WARMUP_ROWS] = 0.0
    result[start:] = block
    return result


def _forward_fill(x: np.ndarray, last: float) -> np.ndarray:
    """Replace gaps by the previous value (the state's last value before the first row)."""
    series = np.concatenate(([last], x))
    index = np.where(~np.isnan(series), np.arange(series.size), 0)
    np.maximum.accumulate(index, out=index)
    return series[index][1:]


def _ewm(x: np.ndarray, alpha: float, previous: float) -> tuple[np.ndarray, float]:
    """EWMA ``y[t] = alpha*x[t] + (1-alpha)*y[t-1]`` continuing from ``previous``."""
    y, _ = lfilter([alpha], [1.0, alpha - 1.0], x, zi=[(1.0 - alpha) * previous])
    return y, float(y[-1])


def _ewm_with_variance(x: np.ndarray, alpha: float, state: np.ndarray, mean_slot: int,
                       var_slot: int) -> tuple[np.ndarray, np.ndarray]:
    """EWMA and exponentially weighted variance around it, continuing from the state's slots.

    ``var[t] = (1-alpha) * (var[t-1] + alpha * (x[t] - mean[t-1])**2)``, again a first-order
    linear recurrence once the squared deviations are known.
    """
    mean_before = np.concatenate(([state[mean_slot]], np.empty(x.size - 1)))
    mean, state[mean_slot] = _ewm(x, alpha, state[mean_slot])
    mean_before[1:] = mean[:-1]
    increments = (1.0 - alpha) * alpha * (x - mean_before) ** 2
    variance, _ = lfilter([1.0], [1.0, alpha - 1.0], increments, zi=[(1.0 - alpha) * state[var_slot]])
    state[var_slot] = variance[-1]
    return mean, variance
