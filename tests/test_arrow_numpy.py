"""Arrow buffers read and written directly give what pyarrow's own conversions give."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

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
