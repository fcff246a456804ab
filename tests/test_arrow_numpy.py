"""Arrow buffers read and written directly give what pyarrow's own conversions give."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine import arrow_numpy


def test_values_of_sliced_chunked_and_null_columns_match_to_numpy() -> None:
    floats = pa.chunked_array([pa.array([1.5, None, 3.0, -0.0]), pa.array([None, 7.25])])
    times = pa.array(np.array([5, 9, 12], dtype="datetime64[ms]")).cast(pa.timestamp("ms", tz="UTC"))
    for column in (floats, floats.combine_chunks().slice(1, 4), pa.array([4, 5, 6], pa.int16()).slice(1),
                   pa.array([0.5, 1.0], pa.float32()), pa.nulls(3, pa.float64()), pa.array([], pa.float64())):
        np.testing.assert_array_equal(arrow_numpy.values(column), column.to_numpy(zero_copy_only=False))
    assert arrow_numpy.values(times).tolist() == [5, 9, 12]
    sliced = pa.array([True, None, False, None, True] * 3).slice(3)
    assert arrow_numpy.valid(sliced).tolist() == sliced.is_valid().to_pylist()


def test_built_arrays_equal_pyarrows() -> None:
    matrix = np.array([[1.0, np.nan, 2.5, 0.0, np.nan], [9.0, 1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    missing = np.isnan(matrix)
    columns = arrow_numpy.float32_columns(matrix, missing)
    assert [c.equals(pa.array(row, mask=np.isnan(row))) for c, row in zip(columns, matrix, strict=True)] == [True] * 2
    assert arrow_numpy.float32_columns(matrix[1:], missing[1:])[0].equals(pa.array(matrix[1]))
    assert arrow_numpy.repeated_strings(["WELL-00001"], [3]).equals(pa.array(["WELL-00001"] * 3))
    assert arrow_numpy.repeated_strings(["x"], [0]).equals(pa.array([], pa.string()))
    assert arrow_numpy.repeated_strings(["a", "", "bcd"], [2, 1, 2]).equals(pa.array(["a", "a", "", "bcd", "bcd"]))


def test_filled_matches_fill_null_in_the_columns_own_dtype() -> None:
    for column, fill in ((pa.array([1, None, 3], pa.int8()), 0), (pa.array([None, 2, None], pa.int16()).slice(1), -1),
                         (pa.chunked_array([[0.5, None], [None, 2.0]]), np.nan), (pa.array([7, 8], pa.int32()), -1)):
        expected = pc.fill_null(column, fill).to_numpy()
        assert arrow_numpy.filled(column, fill).dtype == expected.dtype
        np.testing.assert_array_equal(arrow_numpy.filled(column, fill), expected)


def test_arrays_from_numpy_equal_pyarrows() -> None:
    for data, kind in ((np.array([1.5, np.nan, -0.0]), None), (np.array([0, 1, 1], dtype=np.int64), pa.int8())):
        built, expected = arrow_numpy.array(data, kind), pa.array(data, kind)
        assert built.type == expected.type and built.null_count == 0
        assert arrow_numpy.values(built).tobytes() == expected.to_numpy().tobytes()  # NaN and -0.0 bit for bit
    for flags in (np.array([True, False, False] * 7), np.array([], dtype=bool)):
        assert arrow_numpy.array(flags).equals(pa.array(flags))
    times = pa.timestamp("ms", tz="UTC")
    assert arrow_numpy.array(np.array([5, 6]), times).equals(pa.array([5, 6], pa.int64()).cast(times))
    assert arrow_numpy.array(np.arange(10)[::3]).to_pylist() == [0, 3, 6, 9]  # a strided view is copied


def test_arrays_from_python_lists_equal_pyarrows() -> None:
    cases = [([1, None, -3], pa.int16()), ([None, None], pa.int64()), ([0.25, None, float("inf")], pa.float64()),
             (["WELL-1", None, "", "é"], pa.string()), ([], pa.string()), ([None], pa.string()),
             ([b"\x00garbage", None, b""], pa.binary())]
    for items, kind in cases:
        assert arrow_numpy.from_pylist(items, kind).equals(pa.array(items, kind))
    times = pa.timestamp("ms", tz="UTC")
    assert arrow_numpy.from_pylist([1_700_000_000_000, None], times).equals(
        pa.array([1_700_000_000_000, None], pa.int64()).cast(times))


def test_empty_table_equals_pyarrows() -> None:
    schema = pa.schema([pa.field("a", pa.string(), nullable=False), pa.field("t", pa.timestamp("ms", tz="UTC"))])
    assert arrow_numpy.empty_table(schema).equals(schema.empty_table())
    assert arrow_numpy.empty_table(schema).schema == schema
