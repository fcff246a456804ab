"""Faster paths give exactly what the straightforward ones give: per-well work in one pass over a
batch (the same de-duplication marks, scores bit for bit, rows in the lake), the feature maxima,
the feature code against a sensor-by-sensor reference, and the forest's scores against scikit-learn's."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from scipy.signal import lfilter
from sklearn.ensemble import IsolationForest

from engine import scoring
from engine.alarms import _label_counts
from engine.backend import open_backend
from engine.config import Settings
from engine.consumer import Consumer, ConsumerOptions, _drop_seen
from engine.features import (
    ABSOLUTE_SPREAD_FLOOR,
    BASELINE_SECONDS,
    DEAD_BAND,
    FEATURE_KINDS,
    FEATURE_SENSORS,
    HORIZONS,
    MAX_GAP_SECONDS,
    PER_SENSOR_KIND,
    RELATIVE_SPREAD_FLOOR,
    SCALE_SECONDS,
    SPREAD_SECONDS,
    WARMUP_ROWS,
    StateEncoder,
    WellState,
    encode_states,
    model_inputs,
    sensor_deviations,
)
from engine.forest_scores import ForestScorer, forest_arrays
from engine.model import Model, load
from engine.producer import Producer, ReplayOptions
from engine.readers import discover, read_instance
from engine.schema import UNITS, WELL_DATA_TABLE
from engine.scoring import score_and_explain, score_observations
from engine.well_rows import well_rows
from ml.train_model import files_by_well, train


@pytest.fixture(scope="module")
def artifact(demo_dir: Path) -> tuple[bytes, dict[str, object]]:
    return train([demo_dir])


@pytest.fixture(scope="module")
def model(artifact: tuple[bytes, dict[str, object]]) -> Model:
    return load(*artifact, "test")


def each_well_alone(demo_dir: Path) -> dict[str, pa.Table]:
    """The straightforward path: each well's files in time order, as one table."""
    return {well: pa.concat_tables([read_instance(f.path) for f in files])
            for well, files in files_by_well(discover([demo_dir])).items()}


def interleave(tables: list[pa.Table]) -> pa.Table:
    """Rows of several wells mixed row by row (each well's rows still in time order)."""
    mixed = pa.concat_tables(tables)
    well = np.concatenate([np.full(t.num_rows, i) for i, t in enumerate(tables)])
    position = np.concatenate([np.arange(t.num_rows) for t in tables])
    return mixed.take(np.lexsort((well, position)))


def test_well_rows_gives_each_wells_positions_in_order_of_first_appearance() -> None:
    rows = well_rows(pa.chunked_array([["b", "a", "b"], ["c", "a", "b"]]))
    assert [(well, positions.tolist()) for well, positions in rows] == [("b", [0, 2, 5]), ("a", [1, 4]), ("c", [3])]
    assert not rows.grouped
    assert well_rows(pa.array(["x", "x", "y"])).grouped


@pytest.mark.parametrize("in_order", [False, True])
def test_drop_seen_keeps_exactly_the_rows_a_row_by_row_pass_keeps(in_order: bool) -> None:
    rng = np.random.default_rng(3)
    wells = rng.choice([f"W{i}" for i in range(40)], 5000)
    # Each well's rows later and later (the usual batch; some before their well's mark), or with
    # duplicates and rows out of order.
    times = (np.sort(rng.choice(10_000, 5000, replace=False)) if in_order else rng.integers(0, 3000, 5000)) * 1000
    observations = pa.table({"well_id": wells, "event_time": pa.array(times).cast(pa.timestamp("ms", tz="UTC"))})
    marks = {f"W{i}": 1_000_000 for i in range(0, 40, 3)}
    states = {well: WellState(last_event_ms=mark) for well, mark in marks.items()}

    kept = _drop_seen(observations, states)

    expected_rows, expected_marks = [], dict(marks)
    for well, time in zip(wells.tolist(), times.tolist(), strict=True):  # a row is new if later than all before it
        if time > expected_marks.get(well, -1):
            expected_rows.append((well, time))
            expected_marks[well] = time
    assert list(zip(kept["well_id"].to_pylist(), kept["event_time"].cast(pa.int64()).to_pylist(),
                    strict=True)) == expected_rows
    assert {well: state.last_event_ms for well, state in states.items()} == expected_marks


def test_interleaved_wells_score_bit_identically_to_each_well_alone(demo_dir: Path, model: Model) -> None:
    alone = each_well_alone(demo_dir)
    mixed = score_observations(interleave(list(alone.values())), {}, model)
    for well, table in alone.items():
        expected = score_observations(table, {}, model)
        got = mixed.filter(pa.compute.equal(mixed["well_id"], well))
        assert got["anomaly_score"].to_numpy().tobytes() == expected["anomaly_score"].to_numpy().tobytes()
        assert got.drop_columns(["ingest_time"]).equals(expected.drop_columns(["ingest_time"]))


def test_a_batch_scored_in_many_slices_gives_its_rows_and_float32_deviations_in_one_piece(
        demo_dir: Path, model: Model, monkeypatch: pytest.MonkeyPatch) -> None:
    mixed = interleave(list(each_well_alone(demo_dir).values()))
    whole = score_observations(mixed, {}, model)
    deviations = sensor_deviations(mixed, {})
    monkeypatch.setattr(scoring, "SLICE_ROWS", 997)  # slices cut wells and records anywhere

    rows, evidence = score_and_explain(mixed, {}, model)

    assert rows.drop_columns(["ingest_time"]).equals(whole.drop_columns(["ingest_time"]))
    assert set(rows["model_version"].to_pylist()) == {model.version}
    assert rows["ingest_time"].null_count == 0 and rows.schema.equals(whole.schema)
    assert evidence.deviations.dtype == np.float32
    assert evidence.deviations.tobytes() == deviations.astype(np.float32).tobytes()


@pytest.mark.parametrize("seed", range(4))
def test_an_events_label_counts_are_a_counter_of_its_rows_in_first_appearance_order(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for size, kinds in [(0, 3), (1, 1), (7, 3), (500, 4), (3000, 200)]:
        labels = rng.integers(-1, kinds, size).astype(np.int16)  # -1: a row without a label
        expected = {str(k): v for k, v in Counter(int(label) for label in labels if label >= 0).items()}
        got = _label_counts(labels)
        assert list(got.items()) == list(expected.items())


def test_the_lake_holds_what_scoring_each_well_alone_gives(tmp_path: Path, demo_dir: Path, model: Model,
                                                           artifact: tuple[bytes, dict[str, object]]) -> None:
    backend = open_backend(Settings(home=tmp_path, shard_count=1))  # one shard: every batch mixes the wells
    backend.models.publish(*artifact)
    Producer(backend, discover([demo_dir]), ReplayOptions(speed=0, rows_per_record=700)).run(threading.Event())
    Consumer(backend, ConsumerOptions(idle_exit_seconds=0.3, poll_seconds=0.05, records_per_read=7)).run(
        threading.Event())

    landed = pa.concat_tables(
        [pa.parquet.read_table(path) for path in backend.lake.files(WELL_DATA_TABLE)]).drop_columns(["ingest_time"])
    for well, table in each_well_alone(demo_dir).items():
        expected = score_observations(table, {}, model).drop_columns(["ingest_time"])
        got = landed.filter(pa.compute.equal(landed["well_id"], well))
        got = got.take(pa.compute.sort_indices(got, [("event_time", "ascending")])).select(expected.column_names)
        assert got["anomaly_score"].to_numpy().tobytes() == expected["anomaly_score"].to_numpy().tobytes()
        assert set(got["model_version"].to_pylist()) == {backend.models.active_version()}
        unversioned = [name for name in expected.column_names if name != "model_version"]
        assert got.cast(expected.schema).select(unversioned).equals(expected.select(unversioned))


def test_model_inputs_are_the_straightforward_definition_bit_for_bit() -> None:
    deviations = np.random.default_rng(5).standard_normal((2000, len(FEATURE_SENSORS), len(FEATURE_KINDS))) * 3
    deviations[3, 2, 1] = np.nan  # a NaN wins, as in a reduction
    deviations[7, :, 0] = -0.0
    deviations[9, 4, :] = 0.0
    deviations[11, 1, 3] = np.inf
    deviations[13, 0, :] = 0.4  # inside the dead band
    largest = np.abs(deviations).max(axis=1)
    log_kinds = [k for k, kind in enumerate(FEATURE_KINDS) if kind != "spread_3m"]
    largest[:, log_kinds] = np.log1p(largest[:, log_kinds])
    level = deviations[:, :, FEATURE_KINDS.index(PER_SENSOR_KIND)]
    features = np.concatenate([np.sign(level) * np.log1p(np.abs(level)), largest], axis=1)
    expected = np.sign(features) * np.maximum(np.abs(features) - DEAD_BAND, 0.0)
    assert model_inputs(deviations).tobytes() == expected.tobytes()


def test_forest_scores_are_scikit_learns_score_samples_bit_for_bit(model: Model) -> None:
    rng = np.random.default_rng(8)
    rows = np.where(rng.random((3000, 14)) < 0.6, 0.0, rng.standard_normal((3000, 14)) * 3)
    rows[5, 2] = np.nan  # scikit-learn's trees route a missing value; so must these
    subsampled = IsolationForest(n_estimators=7, max_features=0.5, bootstrap=True, random_state=1).fit(rows[:500])
    for forest in (model.estimator, subsampled):
        scorer = ForestScorer.from_arrays(forest_arrays(forest))
        assert scorer.score_samples(rows).tobytes() == forest.score_samples(rows).tobytes()
    assert model.score(rows)[0].tobytes() == (-model.estimator.score_samples(rows)).tobytes()


def reference_deviations(values: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The features' definition for one well's rows, spelled out a stretch and a sensor at a time."""
    out = np.zeros((len(times), len(FEATURE_SENSORS), len(FEATURE_KINDS)))
    restarts = [0, *np.flatnonzero(np.diff(times) > MAX_GAP_SECONDS * 1000) + 1, len(times)]
    for start, stop in itertools.pairwise(restarts):
        for sensor, name in enumerate(FEATURE_SENSORS):
            column = values[start:stop, sensor].copy()
            for row in range(1, len(column)):  # a gap repeats the last value
                if np.isnan(column[row]):
                    column[row] = column[row - 1]
            known = np.flatnonzero(~np.isnan(column))
            if len(known):
                first = start + known[0]
                out[first:stop, sensor] = reference_sensor(column[known[0]:], ABSOLUTE_SPREAD_FLOOR[UNITS[name]])
    return out


def reference_sensor(x: np.ndarray, absolute_floor: float) -> np.ndarray:
    """One sensor's deviations (rows x kinds) from its first observation on."""
    def ewm(series: np.ndarray, alpha: float, start: float) -> np.ndarray:
        return lfilter([alpha], [1.0, alpha - 1.0], series, zi=[(1.0 - alpha) * start])[0]

    mean_1m, mean_10m, base = (ewm(x, 2.0 / (s + 1.0), x[0]) for s in (HORIZONS[0], HORIZONS[2], BASELINE_SECONDS))
    alpha = 2.0 / (SPREAD_SECONDS + 1.0)
    mean_3m = ewm(x, alpha, x[0])
    squares = (1.0 - alpha) * alpha * (x - np.concatenate([[x[0]], mean_3m[:-1]])) ** 2
    variance = lfilter([1.0], [1.0, alpha - 1.0], squares, zi=[(1.0 - alpha) * 0.0])[0]
    floor = np.maximum(RELATIVE_SPREAD_FLOOR * np.abs(base), absolute_floor)
    alpha = 2.0 / (SCALE_SECONDS + 1.0)
    divisor = 1.0 - (1.0 - alpha) ** np.arange(len(x), dtype=np.float64)  # rows seen before each row
    out = np.zeros((len(x), len(FEATURE_KINDS)))
    raw_kinds = (mean_1m - base, mean_3m - base, mean_10m - base, np.sqrt(variance), mean_1m - mean_3m)
    for kind, raw in enumerate(raw_kinds):
        log_square = np.log(raw**2 + floor**2)
        sums = ewm(log_square, alpha, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.concatenate([[0.0], sums[:-1]]) / divisor
        out[:, kind] = (0.5 * (log_square - scale) if FEATURE_KINDS[kind] == "spread_3m"
                        else raw * np.exp(-0.5 * scale))
    out[:WARMUP_ROWS] = 0.0
    return out


def test_feature_code_gives_the_sensor_by_sensor_reference_bit_for_bit() -> None:
    rng = np.random.default_rng(4)
    wells = {}
    for index, (seconds, silence_at) in enumerate([(2600, 1500), (1900, None)]):
        times = np.arange(seconds) * 1000
        if silence_at:  # a silence longer than MAX_GAP_SECONDS restarts the features
            times[silence_at:] += (MAX_GAP_SECONDS + 5) * 1000
        values = 1e6 * (index + 1) * (1 + np.cumsum(rng.standard_normal((seconds, len(FEATURE_SENSORS))), axis=0) / 300)
        values[rng.random(values.shape) < 0.05] = np.nan  # sparse gaps
        values[:700, 2] = np.nan  # a sensor first seen later
        values[:, 6] = np.nan  # a sensor never seen
        values[1200:1260, 0] += 4e5  # an event
        wells[f"W{index}"] = (values, times)
    table = interleave([pa.table({"well_id": [well] * len(times),
                                  "event_time": pa.array(times).cast(pa.timestamp("ms", tz="UTC")),
                                  **{name: values[:, i] for i, name in enumerate(FEATURE_SENSORS)}})
                        for well, (values, times) in wells.items()])

    states: dict[str, WellState] = {}
    bounds = [0, 1, 333, 2000, 2001, 4100, table.num_rows]  # uneven micro-batches, each continuing the last
    got = np.concatenate([sensor_deviations(table.slice(a, b - a), states) for a, b in itertools.pairwise(bounds)])

    for well, (values, times) in wells.items():
        rows = np.flatnonzero(table["well_id"].to_numpy(zero_copy_only=False) == well)
        assert got[rows].tobytes() == reference_deviations(values, times).tobytes(), well


def test_state_encoder_gives_encode_states_bytes_batch_after_batch() -> None:
    rng = np.random.default_rng(2)
    wells = [f"W-{i:03d}" for i in range(60)] + ["Poço ü"]  # a key JSON escapes
    states = {well: WellState() for well in wells[:40]}
    encoder = StateEncoder()
    for batch in range(12):
        touched = set(rng.choice(wells, 8).tolist())
        for well in touched:  # a batch advances (or creates) the states of its wells only ...
            state = states.setdefault(well, WellState())
            state.last_event_ms = int(rng.integers(1e12))
            state.sensors[rng.integers(len(FEATURE_SENSORS)), rng.integers(3)] = rng.standard_normal()
            state.alarm.last_ms = int(rng.integers(1e12))
        for well in rng.choice(sorted(states), 2 if batch % 4 == 3 else 0).tolist():
            del states[well]  # ... and idle wells are forgotten
        if batch == 6:
            states = {well: WellState.from_json(state.to_json()) for well, state in states.items()}  # reloaded
        assert encoder.encode(states, touched) == encode_states(states)
    assert StateEncoder().encode({}, []) == encode_states({})
