"""The feature code as it was before the compiled kernel: numpy passes and ``scipy.signal.lfilter``.

Kept only as a reference the kernel must match bit for bit (tests/test_feature_kernel.py):
the same definitions, computed a well, a stretch and a block of sensors at a time.
"""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
from scipy.signal import lfilter

from engine.features import (
    _BASE,
    _COUNT,
    _FLOORS,
    _LAST,
    _MAX_GAP_MS,
    _MEAN_1M,
    _MEAN_3M,
    _MEAN_10M,
    _PER_SENSOR,
    _SCALE_START,
    _SPREAD_KIND,
    _STATE_WIDTH,
    _VAR_3M,
    BASELINE_SECONDS,
    DEAD_BAND,
    FEATURE_KINDS,
    FEATURE_SENSORS,
    HORIZONS,
    RELATIVE_SPREAD_FLOOR,
    SCALE_SECONDS,
    SPREAD_SECONDS,
    WARMUP_ROWS,
    WellState,
    _alpha,
    _empty_sensor_state,
    feature_columns,
)
from engine.well_rows import well_rows

_SCALES = slice(_SCALE_START, _STATE_WIDTH)
_LOG_KINDS = [k for k in range(len(FEATURE_KINDS)) if k != _SPREAD_KIND]


def sensor_deviations(observations: pa.Table, states: dict[str, WellState]) -> np.ndarray:
    """Per-sensor deviations (rows x :data:`FEATURE_SENSORS` x :data:`FEATURE_KINDS`), advancing ``states``.

    In typical sizes of the well (the spread as a log ratio), before compression: what the
    model inputs are made of, and what a diagnosis explains an alarm with (which sensor moved,
    which way, how far).
    """
    if observations.num_rows == 0:
        return np.zeros((0, len(FEATURE_SENSORS), len(FEATURE_KINDS)))
    wells = well_rows(observations["well_id"])
    times, values = feature_columns(observations)
    if len(wells.wells) == 1:  # the usual slice of a record: its rows are the well's, no copy
        return _well_deviations(values, times, states.setdefault(wells.wells[0], WellState()))
    features = np.empty((observations.num_rows, len(FEATURE_SENSORS), len(FEATURE_KINDS)))
    for well, rows in wells:
        features[rows] = _well_deviations(values[rows], times[rows], states.setdefault(well, WellState()))
    return features


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
    sums, _ = lfilter([alpha], [1.0, alpha - 1.0], log_squares.reshape(rows, -1), axis=0,
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
    y, _ = lfilter([alpha], [1.0, alpha - 1.0], x, axis=0, zi=((1.0 - alpha) * state[:, slot])[None, :])
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
    variance, _ = lfilter([1.0], [1.0, alpha - 1.0], increments, axis=0,
                          zi=((1.0 - alpha) * state[:, var_slot])[None, :])
    state[:, var_slot] = variance[-1]
    return mean, variance


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
