"""Compaction's merged row groups: the rows of consecutive sources, gathered, in exactly the order
Arrow's own ``sort_by`` on (well, time) gives them, whichever way the merge assembles them
(slices of long per-well runs, or a take of rows interleaved one by one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
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
