"""The compiled feature kernel gives the numpy code's numbers bit for bit, and the same states.

The reference (tests/numpy_features.py) is the feature code as it was before the kernel:
numpy passes and ``scipy.signal.lfilter``, a well, a stretch and a block of sensors at a time.
Both are fed the same micro-batches, their states round-tripped through the checkpoint JSON
between batches, so the carry-over of every running mean is compared too.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

from engine import feature_kernel
from engine.features import (
    FEATURE_SENSORS,
    MAX_GAP_SECONDS,
    WellState,
    decode_states,
    encode_states,
    model_inputs,
    sensor_deviations,
)
from engine.readers import discover, read_instance
from tests import numpy_features


def noisy_wells(seed: int, wells: int = 4, rows: int = 2500) -> pa.Table:
    """Wells of random walks at 1 Hz, interleaved, with what real streams have: gaps in sensors,
    sensors first seen late or never, late gaps, exact zeros of either sign, a rare second
    between rows and a silence long enough to restart the features."""
    rng = np.random.default_rng(seed)
    tables = []
    for well in range(wells):
        steps = rng.choice([1000, 2000, (MAX_GAP_SECONDS + 60) * 1000], rows, p=[0.9, 0.0996, 0.0004])
        steps[rng.integers(rows // 3, rows)] = (MAX_GAP_SECONDS + 1) * 1000  # at least one silence
        values = 1e5 * (well + 1) * (1 + np.cumsum(rng.standard_normal((rows, len(FEATURE_SENSORS))), axis=0) / 200)
        values[rng.random(values.shape) < 0.05] = np.nan
        values[:rng.integers(1, 900), rng.integers(len(FEATURE_SENSORS))] = np.nan  # first seen late
        values[rng.integers(rows):, rng.integers(len(FEATURE_SENSORS))] = np.nan  # lost for good
        values[:, 6] = np.nan if well % 2 else values[:, 6]  # never seen on every other well
        values[rng.random(rows) < 0.01, 3] = 0.0
        values[rng.random(rows) < 0.01, 4] = -0.0
        tables.append(pa.table({
            "well_id": [f"W{well}"] * rows,
            "event_time": pa.array(1_700_000_000_000 + np.cumsum(steps)).cast(pa.timestamp("ms", tz="UTC")),
            **{name: values[:, i] for i, name in enumerate(FEATURE_SENSORS)},
        }))
    mixed = pa.concat_tables(tables)
    jitter = np.concatenate([np.arange(t.num_rows) + rng.random(t.num_rows) for t in tables])
    return mixed.take(np.argsort(jitter, kind="stable"))  # each well's rows in time order, wells interleaved


def assert_same_in_batches(table: pa.Table, cuts: list[int], states: dict[str, WellState] | None = None) -> None:
    kernel_states = decode_states(encode_states(states or {}))
    numpy_states = decode_states(encode_states(states or {}))
    for start, stop in itertools.pairwise([0, *cuts, table.num_rows]):
        piece = table.slice(start, stop - start)
        got = sensor_deviations(piece, kernel_states)
        expected = numpy_features.sensor_deviations(piece, numpy_states)
        assert got.tobytes() == expected.tobytes(), (start, stop)
        assert model_inputs(got).tobytes() == numpy_features.model_inputs(expected).tobytes(), (start, stop)
        assert encode_states(kernel_states) == encode_states(numpy_states), (start, stop)
        kernel_states = decode_states(encode_states(kernel_states))  # a checkpoint between batches
        numpy_states = decode_states(encode_states(numpy_states))


def test_kernel_matches_the_numpy_features_bit_for_bit_across_checkpointed_batches() -> None:
    for seed in range(3):
        table = noisy_wells(seed)
        rng = np.random.default_rng(seed)
        cuts = sorted(rng.choice(np.arange(1, table.num_rows), size=25, replace=False).tolist())
        assert_same_in_batches(table, [1, 2, *cuts])


def test_kernel_continues_a_state_the_numpy_code_left() -> None:
    table = noisy_wells(7, wells=2, rows=1500)
    states: dict[str, WellState] = {}
    numpy_features.sensor_deviations(table.slice(0, 1000), states)
    assert_same_in_batches(table.slice(1000), [5, 700], states)


def test_kernel_matches_the_numpy_features_on_a_real_3w_well(sample_dir: Path) -> None:
    files = sorted(discover([sample_dir]), key=lambda f: f.path.stat().st_size)[:3]
    for file in files:
        table = read_instance(file.path)
        assert_same_in_batches(table, list(range(4096, table.num_rows, 4096)))


def test_a_batch_larger_than_the_scratch_arrays_then_small_ones() -> None:
    table = noisy_wells(11, wells=4, rows=feature_kernel.SCRATCH_ROWS // 4 + 500)
    assert_same_in_batches(table, [table.num_rows - 3000, table.num_rows - 10])


def test_scoring_no_longer_imports_scipy_signal(tmp_path: Path) -> None:
    """``scipy.signal`` took ~0.7 s to import on the consumer's first batch; the kernel needs none of it."""
    script = (
        "import sys\n"
        "import numpy as np, pyarrow as pa\n"
        "import engine.consumer, engine.scoring\n"
        "from engine.features import FEATURE_SENSORS, compute_features\n"
        "rows = 400\n"
        "table = pa.table({'well_id': ['W'] * rows, 'event_time': pa.array(np.arange(rows) * 1000).cast("
        "pa.timestamp('ms', tz='UTC')), **{name: np.ones(rows) for name in FEATURE_SENSORS}})\n"
        "assert compute_features(table, {}).shape[0] == rows\n"
        "print(sorted(name for name in sys.modules if name.startswith('scipy.signal')))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[1],
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
