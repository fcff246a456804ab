"""The feature recurrences of a whole batch in compiled code: every well, stretch and sensor in one call.

:mod:`engine.features` defines the features; this module runs them. The numpy version took
dozens of array passes and a ``scipy.signal.lfilter`` call per horizon for every stretch of
every well, so a batch of many short wells paid ~0.4 ms of Python per well and a long one
paid a pass over memory per step. ``feature_kernel.c`` walks each sensor's rows once, with
every running mean in registers.

The numbers are those of the numpy code, bit for bit:

* each recurrence repeats ``lfilter``'s direct form II transposed for ``b = [b0]``,
  ``a = [1, a1]`` (``b`` padded with a zero): ``y = z + b0*x``, then ``z = x*0.0 - y*a1``,
  starting from ``z = (1 - alpha) * state``; compiled with ``-ffp-contract=off`` and no fast
  math, so nothing is fused or reassociated;
* ``log``, ``exp`` and ``pow`` stay numpy's: its SIMD versions round differently from the C
  library's, so the kernel stops where one is needed (three passes) and numpy applies it to
  the whole batch in between.

Why C through ``ctypes`` and not numba: numba gave the same speed once compiled, but importing
it and loading its cached code took ~1 s and ~140 MB in every consumer, more than the features
of a 500k-row run cost and past issue 14's memory bound. The shared library is built from the
source with the system C compiler the first time it is needed (the image builds it at build
time, ``python -m engine.native``); its name carries a hash of the source and flags,
so an edited kernel is rebuilt rather than a stale one loaded (:mod:`engine.native`).
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import numpy as np

from engine import native
from engine.features import (
    _BASE,
    _COUNT,
    _LAST,
    _MEAN_1M,
    _MEAN_3M,
    _MEAN_10M,
    _PER_SENSOR,
    _SCALE_START,
    _SPREAD_KIND,
    _VAR_3M,
    FEATURE_KINDS,
)

KINDS = len(FEATURE_KINDS)
SOURCE = Path(__file__).with_name("feature_kernel.c")
#: The state layout is the features' (part of FEATURE_VERSION); the C code gets it at compile time.
_LAYOUT = {"LAST": _LAST, "COUNT": _COUNT, "MEAN_1M": _MEAN_1M, "MEAN_3M": _MEAN_3M, "MEAN_10M": _MEAN_10M,
           "VAR_3M": _VAR_3M, "BASE": _BASE, "SCALES": _SCALE_START, "KINDS": KINDS, "SPREAD": _SPREAD_KIND,
           "PER_SENSOR": _PER_SENSOR}


def _array(dtype: type) -> type:
    return np.ctypeslib.ndpointer(dtype=dtype, flags="C_CONTIGUOUS")


_I64, _F64, _FLAG = ctypes.c_int64, ctypes.c_double, ctypes.c_int
_INTS, _FLOATS, _BYTES = _array(np.int64), _array(np.float64), _array(np.uint8)
_SIGNATURES = {
    "feature_segments": (_I64, [_INTS, _INTS, _INTS, _I64, _INTS, _I64, _INTS, _FLAG]),
    "feature_means": (None, [_FLOATS, _I64, _INTS, _INTS, _I64, _FLOATS, _FLOATS, _FLOATS, _F64, _F64, _FLOATS,
                             _FLOATS, _BYTES, _INTS, _FLOATS]),
    "feature_divisor_runs": (_I64, [_INTS, _I64, _I64, _INTS, _INTS, _FLOATS, _FLAG]),
    "feature_scales": (None, [_INTS, _INTS, _I64, _I64, _FLOATS, _F64, _INTS, _FLOATS, _INTS, _FLOATS, _FLOATS,
                              _FLOATS, _BYTES]),
    "feature_apply_scales": (None, [_FLOATS, _FLOATS, _BYTES, _I64]),
    "feature_inputs_magnitudes": (None, [_FLOATS, _I64, _I64, _FLOATS, _FLOATS]),
    "feature_inputs_finish": (None, [_FLOATS, _I64, _I64, _FLOATS, _FLOATS, _F64]),
}
_KERNEL = native.load(SOURCE, _SIGNATURES, _LAYOUT)
_NOTHING_INT, _NOTHING_FLOAT = np.empty(0, np.int64), np.empty(0)  # the output of a call that only counts
#: Batches up to this many rows reuse their thread's scratch arrays (a consumer's slices do).
SCRATCH_ROWS = 16384
_scratch = threading.local()


def _scratch_arrays(rows: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The log squares (set to 1: log 1 = 0 where a sensor is unknown) and the scored flags of a batch.

    Fresh arrays of a few MB per slice came from fresh pages, whose first touch cost as much
    as the kernel's arithmetic; a slice's scratch is reused by the thread's next slice instead.
    """
    if rows > SCRATCH_ROWS:
        return np.ones((rows, width, KINDS)), np.zeros((rows, width), np.uint8)
    if getattr(_scratch, "width", None) != width:
        _scratch.width = width
        _scratch.log_squares = np.empty(SCRATCH_ROWS * width * KINDS)
        _scratch.scored = np.empty(SCRATCH_ROWS * width, np.uint8)
    log_squares = _scratch.log_squares[:rows * width * KINDS].reshape(rows, width, KINDS)
    scored = _scratch.scored[:rows * width].reshape(rows, width)
    log_squares.fill(1.0)
    scored.fill(0)
    return log_squares, scored


def batch_deviations(values: np.ndarray, times: np.ndarray, order: np.ndarray, bounds: np.ndarray,
                     previous: np.ndarray, sensors: np.ndarray, floors: np.ndarray, alphas: np.ndarray,
                     relative_floor: float, warmup_rows: int, max_gap_ms: int) -> np.ndarray:
    """Deviations (rows x sensors x kinds) of a batch of many wells; advances ``sensors`` in place.

    ``values`` (rows x sensors, NaN where missing) and ``times`` (ms) are in batch order; well
    ``w``'s rows, in time order, are ``order[bounds[w]:bounds[w + 1]]``; ``previous[w]`` is
    the time of the last row its state saw and ``sensors[w]`` that state (wells x sensors x
    state width). ``alphas`` are the 1-, 3-, 10-minute, baseline and scale weights.
    """
    rows, width = values.shape
    wells = len(bounds) - 1
    count = _KERNEL.feature_segments(times, order, bounds, wells, previous, max_gap_ms, _NOTHING_INT, 0)
    segments = np.empty((count, 4), np.int64)
    _KERNEL.feature_segments(times, order, bounds, wells, previous, max_gap_ms, segments, 1)
    deviations = np.zeros((rows, width, KINDS))
    log_squares, scored = _scratch_arrays(rows, width)
    blocks = np.empty((count, width, 2), np.int64)
    start_scales = np.empty((count, width, KINDS))
    _KERNEL.feature_means(values, width, order, segments, count, sensors, floors, alphas, relative_floor,
                          float(warmup_rows), deviations, log_squares, scored, blocks, start_scales)
    np.log(log_squares, out=log_squares)
    runs = np.empty((count, width), np.int64)
    seen = np.empty(_KERNEL.feature_divisor_runs(segments, count, width, blocks, runs, _NOTHING_FLOAT, 0))
    _KERNEL.feature_divisor_runs(segments, count, width, blocks, runs, seen, 1)
    divisors = 1.0 - (1.0 - float(alphas[4])) ** seen  # as the numpy code did: a float to an array's powers
    _KERNEL.feature_scales(order, segments, count, width, sensors, float(alphas[4]), blocks, start_scales, runs,
                           divisors, deviations, log_squares, scored)
    np.exp(log_squares, out=log_squares)
    _KERNEL.feature_apply_scales(deviations, log_squares, scored, rows * width)
    return deviations


def model_inputs(deviations: np.ndarray, dead_band: float) -> np.ndarray:
    """:func:`engine.features.model_inputs` in two passes around numpy's ``log1p`` (for its rounding)."""
    deviations = np.ascontiguousarray(deviations, dtype=np.float64)
    rows, width = deviations.shape[:2]
    inputs, spread = np.empty((rows, width + KINDS)), np.empty(rows)
    _KERNEL.feature_inputs_magnitudes(deviations, rows, width, inputs, spread)
    np.log1p(inputs, out=inputs)
    _KERNEL.feature_inputs_finish(deviations, rows, width, inputs, spread, dead_band)
    return inputs

