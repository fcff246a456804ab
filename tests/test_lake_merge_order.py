"""Compaction's merged row groups: the rows of consecutive sources, gathered, in exactly the order
Arrow's own ``sort_by`` on (well, time) gives them, whichever way the merge assembles them
(slices of long per-well runs, or a take of rows interleaved one by one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from engine import lake
from engine.lake import concatenate

#: Nullable keys, unlike the lake tables', so the nulls' place is checked too.
SCHEMA = pa.schema([("well_id", pa.string()), ("event_time", pa.timestamp("ms", tz="UTC")),
                    ("value", pa.float32()), ("source", pa.int32())])
WELLS = ["WELL-00002", "WELL-00010", "well-a", "WELL-É", "WELL-00001", "Z"]
GROUP_ROWS = 500


def _source(rng: np.random.Generator, index: int, rows: int, grouped: bool) -> pa.Table:
    """A batch of some wells' rows: grouped by well (as the consumer writes them) or interleaved
    row by row; times repeat (ties keep their source order) and a few keys are null."""
    wells = rng.choice(WELLS, size=rows)
    times = 1_700_000_000_000 + 1000 * rng.integers(0, rows // 2, size=rows)
    if grouped:
        order = np.lexsort((times, wells))
        wells, times = wells[order], times[order]
    well_ids = pa.array(wells.tolist(), pa.string(), mask=rng.random(rows) < 0.03)
    event_times = pa.array(times, pa.int64(), mask=rng.random(rows) < 0.03).cast(SCHEMA.field("event_time").type)
    return pa.table([well_ids, event_times, pa.array(rng.random(rows), pa.float32()),
                     pa.array(np.full(rows, index), pa.int32())], schema=SCHEMA)


def _expected(tables: list[pa.Table]) -> list[pa.Table]:
    """The former merge: consecutive row groups gathered to at least GROUP_ROWS rows, each sorted by Arrow."""
    groups, pending = [], []
    for table in tables:
        pending.append(table)
        if sum(t.num_rows for t in pending) >= GROUP_ROWS:
            groups.append(pending)
            pending = []
    groups += [pending] if pending else []
    return [pa.concat_tables(group).sort_by([("well_id", "ascending"), ("event_time", "ascending")])
            for group in groups]


@pytest.mark.parametrize("grouped", [True, False], ids=["runs per well", "interleaved rows"])
@pytest.mark.parametrize("sliced_run_rows", [1, GROUP_ROWS * 10], ids=["sliced", "taken"])
def test_merged_row_groups_hold_the_rows_arrow_sort_by_gives(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, grouped: bool, sliced_run_rows: int) -> None:
    monkeypatch.setattr(lake, "MERGED_ROW_GROUP_ROWS", GROUP_ROWS)
    monkeypatch.setattr(lake, "SLICED_RUN_ROWS", sliced_run_rows)
    rng = np.random.default_rng(14)
    tables = [_source(rng, index, int(rng.integers(40, 400)), grouped) for index in range(12)]
    sources = []
    for index, table in enumerate(tables):
        sources.append(tmp_path / f"source-{index}.parquet")
        pq.write_table(table, sources[-1])
    target = tmp_path / "merged.parquet"

    assert concatenate(sources, SCHEMA, target) == sum(t.num_rows for t in tables)
    merged = pq.ParquetFile(target)
    expected = _expected(tables)
    assert merged.num_row_groups == len(expected) > 2  # wells' rows are split across groups
    for index, group in enumerate(expected):
        assert merged.read_row_group(index).equals(group)


#: A stream's keys as batches carry them: no nulls, each well's records in time order, wells'
#: records interleaved within a batch, times tied across wells and within a record.
STREAM = pa.schema([("well_id", pa.string(), False), ("event_time", pa.timestamp("ms", tz="UTC"), False),
                    ("value", pa.float32())])


def _stream_batches(rng: np.random.Generator, batches: int) -> list[pa.Table]:
    """Consecutive batches of records (a few rows of one well each), each well's times never
    going back from one record to its next, in this batch or the next."""
    clock = dict.fromkeys(WELLS, 1_700_000_000_000)
    tables = []
    for _ in range(batches):
        wells, times = [], []
        for _ in range(int(rng.integers(3, 12))):
            well, rows = str(rng.choice(WELLS)), int(rng.integers(1, 60))
            steps = 1000 * rng.integers(0, 2, size=rows)  # ties within a record too
            times += (clock[well] + np.cumsum(steps)).tolist()
            clock[well] = times[-1]
            wells += [well] * rows
        tables.append(pa.table([pa.array(wells, pa.string()), pa.array(times, pa.int64()).cast(STREAM.field(1).type),
                                pa.array(rng.random(len(wells)), pa.float32())], schema=STREAM))
    return tables


def _arrow_order(table: pa.Table, order: list[str]) -> np.ndarray:
    return pc.sort_indices(table, [(name, "ascending") for name in order]).to_numpy()


@pytest.mark.parametrize("order", [["well_id", "event_time"], ["well_id"]], ids=["well, time", "well"])
def test_runs_of_a_stream_give_arrow_s_order_without_a_sort(order: list[str]) -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        table = pa.concat_tables(_stream_batches(rng, int(rng.integers(1, 4))))  # chunked, as gathered
        positions = lake._run_order(table, order)
        assert positions is not None
        assert np.array_equal(positions, _arrow_order(table, order))
        assert lake._sorted(table, order).equals(table.sort_by([(name, "ascending") for name in order]))


def _with_time(table: pa.Table, times: list[int]) -> pa.Table:
    return table.set_column(1, STREAM.field(1), pa.array(times, pa.int64()).cast(STREAM.field(1).type))


def _declined() -> list[pa.Table]:
    """Tables whose runs do not decide the order alone."""
    times = pa.array(np.arange(6), pa.int64()).cast(STREAM.field(1).type)
    base = pa.table([pa.array(["b", "b", "a", "a", "b", "b"]), times, pa.array(np.arange(6), pa.float32())],
                    schema=STREAM)  # values name the rows
    back_in_a_run = _with_time(base, [5, 0, 1, 2, 6, 7])  # well b goes back within its first run
    back_across_runs = _with_time(base, [5, 6, 1, 2, 3, 4])  # b's second run starts before its first ends
    nan_times = base.set_column(1, pa.field("event_time", pa.float64()), pa.array([0.0, np.nan, 1, 2, 3, 4]))
    null_well = base.set_column(0, pa.field("well_id", pa.string()), pa.array(["b", None, "a", "a", "b", "b"]))
    number_wells = base.set_column(0, pa.field("well_id", pa.int64()), pa.array([2, 2, 1, 1, 2, 2]))
    return [back_in_a_run, back_across_runs, nan_times, null_well, number_wells]


@pytest.mark.parametrize("table", _declined(), ids=["back in a run", "back across runs", "NaN time", "null well",
                                                     "numbered wells"])
def test_runs_that_do_not_decide_the_order_are_sorted(table: pa.Table) -> None:
    order = ["well_id", "event_time"]
    assert lake._run_order(table, order) is None
    expected = table.sort_by([(name, "ascending") for name in order])
    assert lake._sorted(table, order)["value"].equals(expected["value"])  # NaN is not equal to itself


def test_a_stream_s_batches_merge_into_arrow_s_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lake, "MERGED_ROW_GROUP_ROWS", GROUP_ROWS)
    tables = _stream_batches(np.random.default_rng(9), 16)
    sources = []
    for index, table in enumerate(tables):
        sources.append(tmp_path / f"batch-{index}.parquet")
        pq.write_table(table, sources[-1])
    ordered_by_runs: list[np.ndarray | None] = []
    run_order = lake._run_order

    def recorded(table: pa.Table, order: list[str]) -> np.ndarray | None:
        ordered_by_runs.append(run_order(table, order))
        return ordered_by_runs[-1]

    monkeypatch.setattr(lake, "_run_order", recorded)

    assert concatenate(sources, STREAM, tmp_path / "merged.parquet") == sum(t.num_rows for t in tables)
    merged = pq.ParquetFile(tmp_path / "merged.parquet")
    expected = _expected(tables)
    assert merged.num_row_groups == len(expected) > 2
    assert all(positions is not None for positions in ordered_by_runs)  # no row was sorted
    for index, group in enumerate(expected):
        assert merged.read_row_group(index).equals(group)
