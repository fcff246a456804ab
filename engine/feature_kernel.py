"""The feature recurrences of a whole batch, compiled: every well, segment and sensor in one call.

:mod:`engine.features` defines the features; this module runs them. The numpy version took
dozens of array passes and a ``scipy.signal.lfilter`` call per horizon for every stretch of
every well, so a batch of many short wells paid ~0.4 ms of Python per well and a long one
paid a pass over memory per step. Here each sensor's rows are walked once, with every
running mean in registers.

The numbers are those of the numpy code, bit for bit:

* each recurrence repeats ``lfilter``'s direct form II transposed for ``b = [b0]``,
  ``a = [1, a1]`` (``b`` padded with a zero): ``y = z + b0*x``, then ``z = x*0.0 - y*a1``,
  starting from ``z = (1 - alpha) * state``; no ``fastmath``, so nothing is reassociated
  or fused;
* ``log``, ``exp`` and ``pow`` stay numpy's: its SIMD versions round differently from the C
  library a compiled loop calls, so the kernel stops where one is needed (three passes), and
  numpy applies it to the whole batch in between.

Compiled functions are cached on disk (``cache=True``): next to this file when it is
writable, else under ``NUMBA_CACHE_DIR`` (the image sets it to the writable /tmp).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# The state layout is the features' (part of FEATURE_VERSION). The compiled code freezes these
# numbers and its disk cache follows only this file, so a change to the layout edits this file too.
from engine.features import (
    _BASE,
    _COUNT,
    _LAST,
    _MEAN_1M,
    _MEAN_3M,
    _MEAN_10M,
    _SCALE_START,
    _SPREAD_KIND,
    _VAR_3M,
    FEATURE_KINDS,
)

KINDS = len(FEATURE_KINDS)

# IEEE semantics for 0/0 (a young sensor's scale reads NaN in its warm-up, as numpy's did).
_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**_JIT)
def _segments(times: np.ndarray, order: np.ndarray, bounds: np.ndarray, previous: np.ndarray,
              max_gap_ms: int) -> np.ndarray:
    """Stretches without a long silence: rows ``(well, start, stop, reset)`` in ``order`` positions."""
    count = 0
    for well in range(len(bounds) - 1):
        last = previous[well]
        for j in range(bounds[well], bounds[well + 1]):
            t = times[order[j]]
            if j == bounds[well] or t - last > max_gap_ms:
                count += 1
            last = t
    segments = np.empty((count, 4), np.int64)
    count = 0
    for well in range(len(bounds) - 1):
        last = previous[well]
        for j in range(bounds[well], bounds[well + 1]):
            t = times[order[j]]
            gap = t - last > max_gap_ms
            if j == bounds[well] or gap:
                if count and segments[count - 1, 0] == well:
                    segments[count - 1, 2] = j
                segments[count, 0], segments[count, 1] = well, j
                segments[count, 2], segments[count, 3] = bounds[well + 1], 1 if gap else 0
                count += 1
            last = t
    return segments


@njit(**_JIT)
def _means(values: np.ndarray, order: np.ndarray, segments: np.ndarray, sensors: np.ndarray,
           floors: np.ndarray, alphas: np.ndarray, relative_floor: float, warmup_rows: int,
           deviations: np.ndarray, log_squares: np.ndarray, scored: np.ndarray,
           blocks: np.ndarray, start_scales: np.ndarray) -> None:
    """First pass: trailing means, variance and baseline; the raw deviations and the log arguments.

    Writes the raw level/slope deviations of scored rows (warm-up rows stay 0), the squares
    plus floor squares whose logs the scales average, and per (segment, sensor) the block
    (first row, rows seen before) and the log-scale state it starts from.
    """
    a1, a3, a10, ab = alphas[0], alphas[1], alphas[2], alphas[3]
    spread_weight = (1.0 - a3) * a3
    for s in range(segments.shape[0]):
        well, start, stop, reset = segments[s]
        if reset:
            sensors[well] = np.nan
            sensors[well, :, _COUNT] = 0.0
        for c in range(sensors.shape[1]):
            state = sensors[well, c]
            last = state[_LAST]
            active = False
            blocks[s, c, 0] = -1
            y1 = y3 = y10 = yb = yv = 0.0
            z1 = z3 = z10 = zb = zv = 0.0
            before = 0.0
            for j in range(start, stop):
                r = order[j]
                x = values[r, c]
                if np.isnan(x):
                    x = last
                last = x
                if not active:
                    if np.isnan(x):
                        continue
                    active = True
                    before = state[_COUNT]
                    if before == 0.0:  # first sight: the averages start at the sensor's value
                        state[_MEAN_1M] = state[_MEAN_3M] = state[_MEAN_10M] = state[_BASE] = x
                        state[_VAR_3M] = 0.0
                        state[_SCALE_START:] = 0.0
                    blocks[s, c, 0] = j
                    blocks[s, c, 1] = before
                    start_scales[s, c] = state[_SCALE_START:]
                    y3 = state[_MEAN_3M]
                    z1 = (1.0 - a1) * state[_MEAN_1M]
                    z3 = (1.0 - a3) * state[_MEAN_3M]
                    z10 = (1.0 - a10) * state[_MEAN_10M]
                    zb = (1.0 - ab) * state[_BASE]
                    zv = (1.0 - a3) * state[_VAR_3M]
                mean_before = y3
                y1 = z1 + a1 * x
                z1 = x * 0.0 - y1 * (a1 - 1.0)
                y3 = z3 + a3 * x
                z3 = x * 0.0 - y3 * (a3 - 1.0)
                y10 = z10 + a10 * x
                z10 = x * 0.0 - y10 * (a10 - 1.0)
                yb = zb + ab * x
                zb = x * 0.0 - yb * (ab - 1.0)
                d = x - mean_before
                increment = spread_weight * (d * d)
                yv = zv + 1.0 * increment
                zv = increment * 0.0 - yv * (a3 - 1.0)

                floor = relative_floor * abs(yb)
                if not (floor >= floors[c]) and not np.isnan(floor):
                    floor = floors[c]
                floor_square = floor * floor
                raw = (y1 - yb, y3 - yb, y10 - yb, np.sqrt(yv), y1 - y3)
                for k in range(KINDS):
                    log_squares[r, c, k] = raw[k] * raw[k] + floor_square
                if before + (j - blocks[s, c, 0]) >= warmup_rows:
                    scored[r, c] = True
                    for k in range(KINDS):
                        if k != _SPREAD_KIND:
                            deviations[r, c, k] = raw[k]
            if active:
                state[_LAST] = last
                state[_COUNT] = before + (stop - blocks[s, c, 0])
                state[_MEAN_1M], state[_MEAN_3M], state[_MEAN_10M], state[_BASE] = y1, y3, y10, yb
                state[_VAR_3M] = yv


@njit(**_JIT)
def _scales(order: np.ndarray, segments: np.ndarray, sensors: np.ndarray, alpha: float,
            blocks: np.ndarray, start_scales: np.ndarray, runs: np.ndarray, divisors: np.ndarray,
            deviations: np.ndarray, log_squares: np.ndarray, scored: np.ndarray) -> None:
    """Second pass: each kind's running log-scale as of the previous row, bias-corrected.

    Writes the spread (a log ratio) into ``deviations`` and, in place of each log square,
    ``-0.5 * scale`` (whose exp scales the other kinds). The state keeps the uncorrected sums
    of a well's last stretch (an earlier stretch in the batch was followed by a restart).
    """
    for s in range(segments.shape[0]):
        well, stop = segments[s, 0], segments[s, 2]
        last_stretch = s + 1 == segments.shape[0] or segments[s + 1, 0] != well
        for c in range(sensors.shape[1]):
            first = blocks[s, c, 0]
            if first < 0:
                continue
            run = runs[s, c]
            for k in range(KINDS):
                previous = start_scales[s, c, k]
                z = (1.0 - alpha) * previous
                for j in range(first, stop):
                    r = order[j]
                    value = log_squares[r, c, k]
                    scale = previous / divisors[run + j - first]
                    previous = z + alpha * value
                    z = value * 0.0 - previous * (alpha - 1.0)
                    if scored[r, c]:
                        if k == _SPREAD_KIND:
                            deviations[r, c, k] = 0.5 * (value - scale)
                        log_squares[r, c, k] = -0.5 * scale
                if last_stretch:
                    sensors[well, c, _SCALE_START + k] = previous


@njit(**_JIT)
def _divisor_runs(segments: np.ndarray, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows seen before each row of each block, once per distinct block of a stretch.

    Returns the offset of each (segment, sensor) block's run in the flat ``seen`` counts:
    sensors of a stretch that started together with the same history share one run, so
    ``pow`` (numpy's, for its rounding) runs about once per row instead of once per sensor.
    """
    runs = np.full(blocks.shape[:2], -1, np.int64)
    total = 0
    for s in range(segments.shape[0]):
        for c in range(blocks.shape[1]):
            if blocks[s, c, 0] < 0:
                continue
            for other in range(c):
                if runs[s, other] >= 0 and blocks[s, other, 0] == blocks[s, c, 0] \
                        and blocks[s, other, 1] == blocks[s, c, 1]:
                    runs[s, c] = runs[s, other]
                    break
            if runs[s, c] < 0:
                runs[s, c] = total
                total += segments[s, 2] - blocks[s, c, 0]
    seen = np.empty(total)
    for s in range(segments.shape[0]):
        for c in range(blocks.shape[1]):
            first = blocks[s, c, 0]
            if first >= 0:
                for i in range(segments[s, 2] - first):
                    seen[runs[s, c] + i] = blocks[s, c, 1] + i
    return runs, seen


@njit(**_JIT)
def _apply_scales(deviations: np.ndarray, factors: np.ndarray, scored: np.ndarray) -> None:
    """Third pass: each scored level and slope divided by its typical size (times ``exp(-scale/2)``)."""
    for r in range(deviations.shape[0]):
        for c in range(deviations.shape[1]):
            if scored[r, c]:
                for k in range(KINDS):
                    if k != _SPREAD_KIND:
                        deviations[r, c, k] *= factors[r, c, k]


def batch_deviations(values: np.ndarray, times: np.ndarray, order: np.ndarray, bounds: np.ndarray,
                     previous: np.ndarray, sensors: np.ndarray, floors: np.ndarray, alphas: np.ndarray,
                     relative_floor: float, warmup_rows: int, max_gap_ms: int) -> np.ndarray:
    """Deviations (rows x sensors x kinds) of a batch of many wells; advances ``sensors`` in place.

    ``values`` (rows x sensors, NaN where missing) and ``times`` (ms) are in batch order; well
    ``w``'s rows, in time order, are ``order[bounds[w]:bounds[w + 1]]``; ``previous[w]`` is
    the time of the last row its state saw and ``sensors[w]`` that state (wells x sensors x
    :data:`engine.features._STATE_WIDTH`). ``alphas`` are the 1-, 3-, 10-minute, baseline and scale weights.
    """
    rows, width = values.shape
    segments = _segments(times, order, bounds, previous, max_gap_ms)
    deviations = np.zeros((rows, width, KINDS))
    log_squares = np.ones((rows, width, KINDS))  # rows a sensor is unknown on: log 1 = 0
    scored = np.zeros((rows, width), np.bool_)
    blocks = np.empty((len(segments), width, 2), np.int64)
    start_scales = np.empty((len(segments), width, KINDS))
    _means(values, order, segments, sensors, floors, alphas, relative_floor, warmup_rows,
           deviations, log_squares, scored, blocks, start_scales)
    np.log(log_squares, out=log_squares)
    runs, seen = _divisor_runs(segments, blocks)
    divisors = 1.0 - (1.0 - float(alphas[4])) ** seen  # as the numpy code: a float to an array's powers
    _scales(order, segments, sensors, alphas[4], blocks, start_scales, runs, divisors,
            deviations, log_squares, scored)
    np.exp(log_squares, out=log_squares)
    _apply_scales(deviations, log_squares, scored)
    return deviations
