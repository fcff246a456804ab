"""The shared feature code: exact micro-batch continuation, well-relative values, missing sensors."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from engine.features import (
    FEATURE_NAMES,
    MAX_GAP_SECONDS,
    WARMUP_ROWS,
    WellState,
    compute_features,
    decode_states,
    encode_states,
    warmup_mask,
)
from engine.readers import discover, read_instance, to_observations

START = pd.Timestamp("2024-01-01", tz="UTC")


def synthetic_well(well: str, seconds: int, seed: int = 0, scale: float = 1.0, start: int = 0,
                   **overrides: np.ndarray) -> pa.Table:
    """A steady, noisy well at 1 Hz from ``start`` seconds on: pressures of 2-30 MPa, temperatures of 60-80 degC."""
    rng = np.random.default_rng(seed)
    levels = {"p_pdg": 3.0e7, "p_tpt": 1.5e7, "t_tpt": 80.0, "p_mon_ckp": 5.0e6, "t_jus_ckp": 60.0,
              "p_jus_ckgl": 1.8e7, "qgl": 1.2, "p_jus_ckp": 2.0e6, "t_mon_ckp": 62.0}
    offsets = pd.to_timedelta(start + np.arange(seconds), unit="s")
    frame = pd.DataFrame({"well_id": well, "event_time": START + offsets})
    for sensor, level in levels.items():
        frame[sensor] = scale * level * (1.0 + 0.002 * rng.standard_normal(seconds))
    for sensor, values in overrides.items():
        frame[sensor] = values
    return to_observations(frame)


def in_batches(table: pa.Table, cuts: list[int], states: dict[str, WellState]) -> np.ndarray:
    """Features of ``table`` fed in pieces, the states JSON round-tripped between pieces like a checkpoint."""
    parts, bounds = [], [0, *cuts, table.num_rows]
    for start, stop in itertools.pairwise(bounds):
        parts.append(compute_features(table.slice(start, stop - start), states))
        states = decode_states(encode_states(states))
    return np.vstack(parts)


def test_micro_batches_with_checkpointed_state_give_bit_identical_features(demo_dir: Path) -> None:
    files = discover([demo_dir])
    table = pa.concat_tables([read_instance(f.path) for f in files]).sort_by("event_time")  # wells interleaved
    whole = compute_features(table, {})
    rng = np.random.default_rng(3)
    cuts = sorted(rng.choice(np.arange(1, table.num_rows), size=60, replace=False).tolist())
    assert np.array_equal(in_batches(table, [1, 2, *cuts], {}), whole)
    assert whole.shape == (table.num_rows, len(FEATURE_NAMES))
    assert np.isfinite(whole).all() and np.abs(whole).max() > 1.0  # the demo events do show


def test_a_steady_well_reads_zero_whatever_its_operating_point() -> None:
    for scale in (0.3, 1.0, 3.0):
        features = compute_features(synthetic_well("W", 4 * 3600, scale=scale), {})
        assert np.abs(features).max() < 0.5  # noise stays inside the dead band
        assert (features == 0).mean() > 0.9


def test_features_are_relative_to_the_wells_own_level_and_noise() -> None:
    step = np.r_[np.zeros(7200), np.full(1800, 0.03)]  # p_tpt rises by 3 % after two steady hours
    rng = np.random.default_rng(5)
    noise = rng.standard_normal(9000)
    low = synthetic_well("low", 9000, p_tpt=1.0e7 * (1 + 0.002 * noise + step))
    high = synthetic_well("high", 9000, p_tpt=2.5e7 * (1 + 0.002 * noise + step))
    column = FEATURE_NAMES.index("p_tpt__level_1m")
    a, b = compute_features(low, {})[:, column], compute_features(high, {})[:, column]
    np.testing.assert_allclose(a, b, atol=1e-4)  # the same relative change reads the same (values are float32)
    assert np.abs(a[:7200]).max() < 0.5 and a[7200 + 60] > 2.0  # steady reads ~0; the step is clear within a minute


def test_missing_sensors_give_neutral_features_and_the_rest_still_scores() -> None:
    seconds = 3 * 3600
    values = 1.5e7 * (1 + 0.002 * np.random.default_rng(1).standard_normal(seconds))
    values[7200:] *= 1.05
    values[3000:3400] = np.nan  # a dropout: forward-filled, no gap in the features
    table = synthetic_well("W", seconds, p_tpt=values, p_pdg=np.full(seconds, np.nan))
    features = compute_features(table, {})
    assert np.isfinite(features).all()
    assert (features[:, FEATURE_NAMES.index("p_pdg__level_1m")] == 0).all()
    assert features[7300, FEATURE_NAMES.index("p_tpt__level_1m")] > 2.0
    assert features[7300, FEATURE_NAMES.index("max_abs__level_1m")] > 2.0


def test_warm_up_rows_are_zero_and_a_long_silence_restarts_the_warm_up() -> None:
    first = synthetic_well("W", 3600, seed=1)
    later = synthetic_well("W", 3600, seed=2, scale=2.0, start=3600 + MAX_GAP_SECONDS + 1)  # elsewhere, later
    table = pa.concat_tables([first, later])
    features = compute_features(table, {})
    times = table["event_time"].cast(pa.int64()).to_numpy()
    expected = np.zeros(len(times), dtype=bool)
    expected[:WARMUP_ROWS] = expected[3600:3600 + WARMUP_ROWS] = True
    assert np.array_equal(warmup_mask(times), expected)
    assert (features[warmup_mask(times)] == 0).all()
    assert np.abs(features[3600 + WARMUP_ROWS:]).max() < 0.5  # the new level is not compared with the old one


def test_state_json_round_trip_and_an_outdated_state_restarts_the_features_but_keeps_the_mark() -> None:
    states: dict[str, WellState] = {}
    compute_features(synthetic_well("W", 900), states)
    states["W"].last_event_ms = 123
    again = decode_states(encode_states(states))
    np.testing.assert_array_equal(again["W"].sensors, states["W"].sensors)
    assert again["W"].feature_time_ms == states["W"].feature_time_ms
    outdated = json.loads(encode_states(states))
    outdated["W"]["feature_version"] = 1
    restored = decode_states(json.dumps(outdated).encode())["W"]
    assert restored.last_event_ms == 123 and restored.feature_time_ms is None
    assert (restored.sensors[:, 1] == 0).all()  # every sensor starts afresh


def test_a_checkpoint_with_the_sensor_numbers_as_a_list_still_loads_and_continues_exactly() -> None:
    table = synthetic_well("W", 1800, qgl=np.full(1800, np.nan))  # a sensor this well lacks
    first, rest = table.slice(0, 900), table.slice(900)
    states: dict[str, WellState] = {}
    compute_features(first, states)
    assert np.isnan(states["W"].sensors).any()  # sensors never seen: NaN, written as null before
    written = json.loads(encode_states(states))
    flat = states["W"].sensors.ravel()
    written["W"]["sensors"] = np.where(np.isnan(flat), None, flat).tolist()  # as checkpoints before base64 held
    del written["W"]["sensors_f64"]
    old = decode_states(json.dumps(written).encode())
    np.testing.assert_array_equal(old["W"].sensors, states["W"].sensors)
    assert old["W"].alarm == states["W"].alarm and old["W"].last_event_ms == states["W"].last_event_ms
    new = decode_states(encode_states(states))
    assert np.array_equal(compute_features(rest, old), compute_features(rest, new))  # the kernel updates both in place
    np.testing.assert_array_equal(old["W"].sensors, new["W"].sensors)


@pytest.mark.parametrize("rows", [0, 1])
def test_tiny_inputs(rows: int) -> None:
    features = compute_features(synthetic_well("W", rows), {})
    assert features.shape == (rows, len(FEATURE_NAMES)) and not features.any()
