"""3W readers on the real sample, on demo data, and on files that are not 3W."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from engine.errors import InputError
from engine.readers import discover, file_rows, iter_instance, read_instance, well_id_from_name
from engine.schema import OBSERVATION_SCHEMA, SENSOR_COLUMNS, event_of


@pytest.mark.parametrize(("name", "well"), [
    ("WELL-00011_20140515110134.csv", "WELL-00011"),
    ("WELL-00002_20131208230000.parquet", "WELL-00002"),
    ("SIMULATED_00050.csv", "SIMULATED_00050"),
    ("DRAWN_00003.parquet", "DRAWN_00003"),
    ("my-own-well.csv", "my-own-well"),
])
def test_well_id_comes_from_the_file_name(name: str, well: str) -> None:
    assert well_id_from_name(Path("x") / name) == well


def test_every_sample_file_reads_with_labels_and_nulls(sample_dir: Path) -> None:
    files = discover([sample_dir])
    assert len(files) == 24
    for instance in files:
        table = read_instance(instance.path)
        assert table.schema == OBSERVATION_SCHEMA
        assert pc.all(pc.equal(table["well_id"], instance.well_id)).as_py()
        assert table["event_time"].is_valid().to_pylist().count(False) == 0
        events = {event_of(label) for label in pc.unique(table["class"].drop_null()).to_pylist()}
        assert instance.event_class in events  # the folder's event (or its transient) is labeled
    first = read_instance(sample_dir / "2" / "WELL-00003_20180206182917.csv")
    assert first.num_rows == 5084
    assert first["class"].null_count == 87  # unlabeled stretches stay null
    assert first["qgl"].null_count == first.num_rows  # an all-empty sensor is all null
    assert first["p_anular"].null_count == first.num_rows  # a 3W 2.0-only variable is absent in 1.0


def test_demo_data_reads_back(demo_dir: Path) -> None:
    files = discover([demo_dir])
    assert files and all(f.path.suffix == ".parquet" for f in files)
    table = read_instance(files[0].path)
    assert table.schema == OBSERVATION_SCHEMA
    assert any(table[c].null_count < table.num_rows for c in SENSOR_COLUMNS)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "not a readable 3W file"),
    (b"\x00\xff\x13garbage\x00" * 50, "not a"),
    (b"time,foo,bar\n1,2,3\n", "no 'timestamp' column"),
    (b"timestamp,foo\n2024-01-01 00:00:00,1\n", "none of the 3W variables"),
    (b"timestamp,P-PDG,class\n", "empty 3W file"),
    (b"timestamp,P-PDG,class\nnot-a-time,1,0\n", "unreadable timestamp"),
    (b"timestamp,P-PDG,class\n2024-01-01 00:00:00,abc,0\n", "non-numeric value"),
    (b"timestamp,P-PDG,BOGUS\n2024-01-01 00:00:00,1,2\n", "unknown columns"),
])
def test_files_that_are_not_3w_fail_with_one_line_naming_the_file(
        tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "WELL-00001_20240101000000.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as caught:
        read_instance(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_a_garbage_parquet_file_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "WELL-00001_20240101000000.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match="not a readable 3W file"):
        read_instance(path)


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        discover([tmp_path / "nope"])


def test_reading_in_chunks_gives_the_rows_of_reading_whole(demo_dir: Path, tmp_path: Path) -> None:
    path = discover([demo_dir])[0].path
    whole = read_instance(path)
    chunks = list(iter_instance(path, chunk_rows=1000))
    assert len(chunks) > 1 and pa.concat_tables(chunks).equals(whole)
    csv = tmp_path / "WELL-00001_20240101000000.csv"
    csv.write_text("timestamp,P-PDG,class\n2024-01-01 00:00:00,1.0,0\n2024-01-01 00:00:01,2.0,0\n")
    assert [c.num_rows for c in iter_instance(csv, chunk_rows=1)] == [1, 1]


def test_a_row_back_in_time_across_chunks_is_dropped_not_sent_backwards(tmp_path: Path) -> None:
    path = tmp_path / "WELL-00001_20240101000000.parquet"
    seconds = np.array([0, 1, 2, 1, 3], dtype="datetime64[s]").astype("datetime64[ns]")
    pq.write_table(pa.table({"timestamp": seconds, "P-PDG": [1.0, 2.0, 3.0, 9.0, 4.0]}), path, row_group_size=3)
    times = pa.concat_tables(iter_instance(path, chunk_rows=3))["event_time"].cast(pa.int64()).to_pylist()
    assert times == [0, 1000, 2000, 3000]


def test_a_file_past_the_row_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "WELL-00001_20240101000000.csv"
    path.write_text("timestamp,P-PDG\n" + "".join(f"2024-01-01 00:00:{s:02d},1.0\n" for s in range(20)))
    assert file_rows(path) == 20 and read_instance(path, max_rows=20).num_rows == 20
    with pytest.raises(InputError, match=r"20 rows, more than the 19 rows a file read whole may hold"):
        read_instance(path, max_rows=19)
