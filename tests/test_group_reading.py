"""Short files read together (``open_instances``, in batches on threads) give what each read alone
gives, in order, and one bad file among good ones fails alone, naming itself."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine import readers
from engine.errors import InputError
from engine.readers import open_instance, open_instances


def _short_file(folder: Path, well: int, start_s: int, rows: int, **extra: object) -> Path:
    """A 3W-like Parquet file: timestamp (a second apart), two sensors, class; ``extra`` replaces columns."""
    times = (np.arange(rows, dtype=np.int64) + start_s).astype("datetime64[s]").astype("datetime64[ns]")
    columns = {"timestamp": times, "P-PDG": np.linspace(well, well + 1, rows), "T-TPT": np.full(rows, np.nan),
               "class": np.zeros(rows, dtype=np.int64), **extra}
    path = folder / f"WELL-{well:05d}_20240101000000.parquet"
    pq.write_table(pa.table(columns), path, compression="brotli")
    return path


def _alone(paths: list[Path]) -> list[tuple[int, list[pa.Table]]]:
    return [(rows, list(chunks)) for rows, chunks in (open_instance(p) for p in paths)]


def _together(paths: list[Path], **kwargs: int) -> list[tuple[int, list[pa.Table]]]:
    return [(rows, list(chunks)) for rows, chunks in open_instances(paths, **kwargs)]


def test_files_read_together_equal_files_read_alone(tmp_path: Path) -> None:
    paths = [_short_file(tmp_path, well, start_s=well * 7, rows=150 + well) for well in range(1, 9)]
    # a file out of time order with a repeated time, inside a group: sorted and deduplicated on its own
    paths[2] = _short_file(tmp_path, 3, 0, 4, timestamp=np.array([3, 1, 2, 1], dtype="datetime64[s]"))
    # other columns start another group; a longer file and a CSV file are read the usual way, in order
    paths[4] = _short_file(tmp_path, 5, 0, 100, **{"QGL": np.arange(100.0)})
    paths[6] = _short_file(tmp_path, 7, 0, readers.THREADED_READ_ROWS + 10)
    paths.append(tmp_path / "WELL-00010_20240101000000.csv")
    paths[-1].write_text("timestamp,P-PDG,class\n2024-01-01 00:00:00,1.0,0\n2024-01-01 00:00:01,2.0,0\n")
    together, alone = _together(paths, group_rows=400), _alone(paths)
    assert [rows for rows, _ in together] == [rows for rows, _ in alone]
    assert all(len(a) == len(b) == 1 and a[0].equals(b[0]) for (_, a), (_, b) in zip(together, alone, strict=True))
    assert together[2][1][0]["event_time"].cast(pa.int64()).to_pylist() == [1000, 2000, 3000]
    assert {t[1][0]["well_id"][0].as_py() for t in together} == {f"WELL-{w:05d}" for w in range(1, 11) if w != 9}


def test_a_group_converts_at_most_its_rows_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [_short_file(tmp_path, well, 0, 180) for well in range(1, 12)]
    converted: list[int] = []
    convert = readers._canonical_files

    def counting(table: pa.Table, files: list[Path], rows: list[int]) -> list[pa.Table]:
        converted.append(table.num_rows)
        return convert(table, files, rows)

    monkeypatch.setattr(readers, "_canonical_files", counting)
    assert sum(rows for rows, _ in _together(paths, group_rows=500)) == 11 * 180
    assert converted == [360] * 5 + [180]  # two 180-row files per group of at most 500 rows, in order


def test_a_file_whose_values_do_not_convert_fails_alone_naming_itself(tmp_path: Path) -> None:
    def text_times(start: int, rows: int) -> list[str]:
        return [f"2024-01-01 00:{(start + s) // 60:02d}:{(start + s) % 60:02d}" for s in range(rows)]

    paths = [_short_file(tmp_path, well, 0, 30, timestamp=text_times(well * 30, 30)) for well in range(1, 5)]
    paths[1] = _short_file(tmp_path, 2, 0, 30, timestamp=["not a time"] * 30)  # same columns, as text
    together = open_instances(paths)
    for index, (rows, chunks) in enumerate(together):
        if index == 1:
            with pytest.raises(InputError, match="unreadable timestamp") as caught:
                list(chunks)
            assert str(paths[1]) in str(caught.value)
        else:
            assert rows == 30 and next(chunks).equals(next(open_instance(paths[index])[1]))


def test_a_file_with_corrupt_pages_fails_alone_naming_itself(tmp_path: Path) -> None:
    paths = [_short_file(tmp_path, well, 0, 200) for well in range(1, 5)]
    data = bytearray(paths[2].read_bytes())
    data[4:400] = bytes(396)  # the first column chunks' pages zeroed; the footer still says what is there
    paths[2].write_bytes(bytes(data))
    together = list(open_instances(paths))
    with pytest.raises(InputError, match="not a readable 3W file") as caught:
        list(together[2][1])
    assert str(paths[2]) in str(caught.value)
    good = [0, 1, 3]
    assert all(next(together[i][1]).equals(next(open_instance(paths[i])[1])) for i in good)


def _small_batches(monkeypatch: pytest.MonkeyPatch, files: int = 3) -> list[list[Path]]:
    """Batches of ``files`` files read on two threads, whatever the machine; returns the batches as opened."""
    monkeypatch.setattr(readers, "BATCH_FILES", files)
    monkeypatch.setattr(readers, "READ_THREADS", 2)
    opened: list[list[Path]] = []
    open_batch = readers._open_batch

    def recording(paths: list[Path], chunk_rows: int, group_rows: int) -> list[tuple[int, Iterator[pa.Table]]]:
        assert threading.current_thread() is not threading.main_thread()
        opened.append(paths)
        return open_batch(paths, chunk_rows, group_rows)

    monkeypatch.setattr(readers, "_open_batch", recording)
    return opened


def test_batches_read_on_threads_give_what_each_file_read_alone_gives(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [_short_file(tmp_path, well, start_s=well * 7, rows=20 + well) for well in range(1, 21)]
    paths[5] = _short_file(tmp_path, 6, 0, 4, timestamp=np.array([3, 1, 2, 1], dtype="datetime64[s]"))
    paths[9] = _short_file(tmp_path, 10, 0, 50, **{"QGL": np.arange(50.0)})
    paths[13] = _short_file(tmp_path, 14, 0, readers.THREADED_READ_ROWS + 10)
    opened = _small_batches(monkeypatch)
    together, alone = _together(paths, group_rows=100), _alone(paths)
    assert sorted(map(tuple, opened)) == [tuple(paths[i:i + 3]) for i in range(0, len(paths), 3)]
    assert [rows for rows, _ in together] == [rows for rows, _ in alone]
    assert all(len(a) == len(b) == 1 and a[0].equals(b[0]) for (_, a), (_, b) in zip(together, alone, strict=True))
    assert [t[1][0]["well_id"][0].as_py() for t in together] == [f"WELL-{w:05d}" for w in range(1, 21)]


def test_read_ahead_stays_a_few_batches_ahead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [_short_file(tmp_path, well, 0, 30) for well in range(1, 31)]
    opened = _small_batches(monkeypatch)
    together = open_instances(paths)
    next(together)
    assert len(opened) <= readers.READ_THREADS + 1  # of ten batches: the caller's, and one per thread
    assert len(list(together)) == 29 and len(opened) == 10


def test_bad_files_in_batches_read_on_threads_fail_alone_naming_themselves(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [_short_file(tmp_path, well, 0, 200) for well in range(1, 11)]
    data = bytearray(paths[4].read_bytes())
    data[4:400] = bytes(396)  # unreadable pages
    paths[4].write_bytes(bytes(data))
    paths[8] = _short_file(tmp_path, 9, 0, 30, timestamp=["not a time"] * 30)  # values that do not convert
    _small_batches(monkeypatch)
    together = list(open_instances(paths))
    for index, reason in ((4, "not a readable 3W file"), (8, "unreadable timestamp")):
        with pytest.raises(InputError, match=reason) as caught:
            list(together[index][1])
        assert str(paths[index]) in str(caught.value)
    good = [i for i in range(10) if i not in (4, 8)]
    assert all(next(together[i][1]).equals(next(open_instance(paths[i])[1])) for i in good)


def test_an_unreadable_footer_fails_naming_itself_after_the_batches_before_it(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [_short_file(tmp_path, well, 0, 30) for well in range(1, 11)]
    paths[7].write_bytes(paths[7].read_bytes()[:-20])  # the footer cut short
    _small_batches(monkeypatch)
    together = open_instances(paths)
    assert [next(chunks)["well_id"][0].as_py() for _, chunks in itertools.islice(together, 6)] == [
        f"WELL-{w:05d}" for w in range(1, 7)]
    with pytest.raises(InputError, match="not a readable 3W file") as caught:
        next(together)
    assert str(paths[7]) in str(caught.value)
