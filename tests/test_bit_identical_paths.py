"""Faster paths give exactly what the straightforward ones give: per-well work in one pass over a
batch (the same de-duplication marks, scores bit for bit, rows in the lake) and the feature maxima."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from engine.backend import open_backend
from engine.config import Settings
from engine.consumer import Consumer, ConsumerOptions, _drop_seen
from engine.features import FEATURE_KINDS, FEATURE_SENSORS, WellState, _largest_over_sensors
from engine.model import Model, load
from engine.producer import Producer, ReplayOptions
from engine.readers import discover, read_instance
from engine.schema import WELL_DATA_TABLE
from engine.scoring import score_observations
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


def test_drop_seen_keeps_exactly_the_rows_a_row_by_row_pass_keeps() -> None:
    rng = np.random.default_rng(3)
    wells = rng.choice([f"W{i}" for i in range(40)], 5000)
    times = rng.integers(0, 3000, 5000) * 1000  # duplicates and rows out of order
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


def test_largest_magnitude_per_kind_is_the_straightforward_maximum_bit_for_bit() -> None:
    deviations = np.random.default_rng(5).standard_normal((2000, len(FEATURE_SENSORS), len(FEATURE_KINDS)))
    deviations[3, 2, 1] = np.nan  # a NaN wins, as in a reduction
    deviations[7, :, 0] = -0.0
    assert _largest_over_sensors(deviations).tobytes() == np.abs(deviations).max(axis=1).tobytes()
