"""Compaction's cost on the local lake: each row is rewritten a bounded number of times, however
many passes run over a growing partition (the rules are the Lake base class's, shared by S3)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.backends.local import _lake
from engine.backends.local._lake import LocalLake
from engine.lake import (
    BATCH_COMPRESSION_LEVEL,
    COMPACT_MIN_FILES,
    MAX_COMPACTION_TIER,
    LakeFile,
    compaction_tier,
    parquet_options,
    plan_compaction,
)
from engine.schema import LAKE_TABLES, WELL_DATA_TABLE
from tests.test_backend_contract import START, lake_rows

ROWS = 10


def test_a_pass_after_every_batch_rewrites_each_row_once_per_tier(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    batches = 2 * COMPACT_MIN_FILES ** 2  # 128: enough for two tier-2 files
    rewritten = 0
    for i in range(batches):
        rows = lake_rows("WELL-00001", START + timedelta(seconds=ROWS * i), ROWS)
        lake.write(WELL_DATA_TABLE, f"shard@{i:04d}", rows)
        rewritten += lake.compact(WELL_DATA_TABLE, lambda key: True).rows_rewritten
    rewritten += lake.compact(WELL_DATA_TABLE, lambda key: True).rows_rewritten  # a pass plans from the files before it
    assert rewritten == 2 * batches * ROWS  # once into tier 1, once into tier 2: linear, not quadratic
    assert sorted(compaction_tier(Path(path).name) for path in lake.files(WELL_DATA_TABLE)) == [2, 2]
    assert lake.row_count(WELL_DATA_TABLE) == batches * ROWS


def test_the_plan_merges_final_batches_and_full_tiers_but_never_the_last_tier() -> None:
    def files(prefix: str, n: int, partition: str = "2024-03-01") -> list[LakeFile]:
        return [LakeFile(partition, f"{prefix}{i}", f"{partition}/{prefix}{i}", ROWS) for i in range(n)]

    open_batches = files("shard@", COMPACT_MIN_FILES)
    last_tier = files(f"compacted-T{MAX_COMPACTION_TIER}-", COMPACT_MIN_FILES)
    tier_one = files("compacted-T1-", COMPACT_MIN_FILES, "2024-03-02")
    plan = plan_compaction(open_batches + last_tier + tier_one, lambda key: key != "shard@0")
    assert [(m.partition, compaction_tier(m.batch_key), len(m.members)) for m in plan] == [
        ("2024-03-02", 2, COMPACT_MIN_FILES)]  # seven final batches are too few; the last tier stays


def test_workers_compacting_at_once_split_the_merges_and_never_redo_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers that stop together each compact on the way out: a partition another worker is
    merging is left to it, and a merge planned from a listing another worker has merged since
    is dropped before its members are read again."""
    merged: list[int] = []
    concatenate = _lake.concatenate

    def counted(sources: list[Path], schema: object, target: Path) -> int:
        merged.append(len(sources))
        return concatenate(sources, schema, target)

    monkeypatch.setattr(_lake, "concatenate", counted)
    first, second = LocalLake(tmp_path), LocalLake(tmp_path)
    for day in range(2):
        for i in range(COMPACT_MIN_FILES):
            rows = lake_rows("WELL-00001", START + timedelta(days=day, seconds=ROWS * i), ROWS)
            first.write(WELL_DATA_TABLE, f"shard@{day}{i:03d}", rows)
    day_one = START.date().isoformat()
    with _lake._partition_lock(tmp_path / "_locks" / f"{WELL_DATA_TABLE}-{day_one}.lock") as held:
        assert held
        assert second.compact(WELL_DATA_TABLE, lambda key: True).files_after == 1  # the other day only
    assert merged == [COMPACT_MIN_FILES]

    with second._compaction(WELL_DATA_TABLE) as stale:  # lists day one's batches...
        assert first.compact(WELL_DATA_TABLE, lambda key: True).files_after == 1  # ...merged meanwhile
        assert not any(second._merge(WELL_DATA_TABLE, merge) for merge in plan_compaction(stale, lambda key: True))
    assert merged == [COMPACT_MIN_FILES, COMPACT_MIN_FILES]  # each partition read and rewritten once
    assert first.row_count(WELL_DATA_TABLE) == 2 * COMPACT_MIN_FILES * ROWS
    assert len(first.files(WELL_DATA_TABLE)) == 2


def test_a_batch_file_is_written_at_the_fast_level_and_its_merge_at_the_default_one(tmp_path: Path) -> None:
    """Only the compression level differs; the rows read back are the rows written either way."""
    schema = LAKE_TABLES[WELL_DATA_TABLE].schema
    batch, merged = parquet_options(schema, batch=True), parquet_options(schema)
    assert batch.pop("compression_level") == BATCH_COMPRESSION_LEVEL < 0 and batch == merged
    lake = LocalLake(tmp_path)
    written = [lake_rows("WELL-00001", START + timedelta(seconds=ROWS * i), ROWS) for i in range(COMPACT_MIN_FILES)]
    for i, rows in enumerate(written):
        lake.write(WELL_DATA_TABLE, f"shard@{i:04d}", rows)
    (path,) = lake.files(WELL_DATA_TABLE)[:1]
    assert pq.read_table(path, schema=schema).equals(written[0].cast(schema))
    lake.compact(WELL_DATA_TABLE, lambda key: True)
    (merged_path,) = lake.files(WELL_DATA_TABLE)
    assert pq.read_table(merged_path, schema=schema).equals(pa.concat_tables(written).cast(schema))
