"""Arrow columns to NumPy and back through their buffers, for the replay's hot path.

pyarrow imports pandas, when it is installed, the first time an array is built from Python or
NumPy objects (``pa.array``, ``pa.scalar``) or converted with ``to_numpy``: some 0.35 s of a
producer that replays a few wells' day in about a second and a half. Reading and writing the
buffers directly gives the same values and leaves pandas out of a replay.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def values(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A fixed-width numeric column's values, no copy for a one-chunk column; NaN where a float is null.

    For a column of another kind (integers, times) the values under nulls are whatever bytes lie
    there: use it on columns without nulls.
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_timestamp(array.type):
        array = array.cast(pa.int64())
    dtype = _numpy_dtype(array.type)
    data = array.buffers()[1]
    if data is None or len(array) == 0:  # an empty array, or one of nulls only that Arrow gave no data
        return np.full(len(array), np.nan if dtype.kind == "f" else 0, dtype=dtype)
    result = np.frombuffer(data, dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)
    if array.null_count and dtype.kind == "f":
        result = np.where(valid(array), result, np.nan)
    return result


def _numpy_dtype(type: pa.DataType) -> np.dtype:
    """The little-endian NumPy type of a fixed-width Arrow type's values (times as their integers)."""
    kind = "f" if pa.types.is_floating(type) else "u" if pa.types.is_unsigned_integer(type) else "i"
    return np.dtype(f"<{kind}{type.byte_width}")


def valid(array: pa.Array) -> np.ndarray:
    """Which entries of an array are not null, as booleans."""
    if array.null_count == 0:
        return np.ones(len(array), dtype=bool)
    bits = np.frombuffer(array.buffers()[0], dtype=np.uint8)
    return np.unpackbits(bits, count=array.offset + len(array), bitorder="little")[array.offset:].astype(bool)


def float32_columns(matrix: np.ndarray, missing: np.ndarray) -> list[pa.Array]:
    """Each row of a float32 matrix as an array, null where ``missing`` is true.

    The rows are slices of one array over the whole matrix: one validity bitmap and one array
    built for a file's 27 sensors instead of one each.
    """
    rows, count = matrix.shape
    data = np.ascontiguousarray(matrix, dtype=np.float32).ravel()
    nulls = int(missing.sum())
    validity = pa.py_buffer(np.packbits(~missing.ravel(), bitorder="little")) if nulls else None
    whole = pa.Array.from_buffers(pa.float32(), rows * count, [validity, pa.py_buffer(data)], nulls)
    return [whole.slice(row * count, count) for row in range(rows)]


def repeated_strings(strings: list[str], counts: list[int]) -> pa.Array:
    """Each string repeated its count of times, in order, as a string array built as its offsets and
    bytes: the well ids of a group of files read together (one run per file), or of one file."""
    encoded = [string.encode() for string in strings]
    offsets = np.zeros(sum(counts) + 1, dtype=np.int32)
    np.cumsum(np.repeat(np.array([len(e) for e in encoded], dtype=np.int32), counts), out=offsets[1:])
    data = b"".join(e * count for e, count in zip(encoded, counts, strict=True))
    return pa.Array.from_buffers(pa.string(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)], 0)


def filled(column: pa.Array | pa.ChunkedArray, fill: int | float) -> np.ndarray:
    """A fixed-width numeric column's values with ``fill`` under its nulls, in the column's own
    dtype: ``pc.fill_null(column, fill).to_numpy()`` without the Python scalar (``pa.scalar``
    imports pandas)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    result = values(array)
    if array.null_count:
        result = result.copy()
        result[~valid(array)] = fill
    return result


def array(data: np.ndarray, type: pa.DataType | None = None) -> pa.Array:
    """A NumPy array of numbers or booleans, without nulls, as an Arrow array of ``type`` (default:
    the array's own), sharing its memory where Arrow's layout is NumPy's (all but booleans)."""
    kind = pa.from_numpy_dtype(data.dtype) if type is None else type
    if pa.types.is_boolean(kind):
        buffer = pa.py_buffer(np.packbits(np.asarray(data, dtype=bool), bitorder="little"))
    else:
        buffer = pa.py_buffer(np.ascontiguousarray(data, dtype=_numpy_dtype(kind)))
    return pa.Array.from_buffers(kind, len(data), [None, buffer], 0)


def from_pylist(items: list[object], type: pa.DataType) -> pa.Array:
    """A list of Python numbers (times as epoch integers), strings or bytes, None for null, as an
    array of ``type``: ``pa.array(items, type)`` without its look for pandas objects."""
    missing = np.fromiter((item is None for item in items), dtype=bool, count=len(items))
    nulls = int(missing.sum())
    validity = pa.py_buffer(np.packbits(~missing, bitorder="little")) if nulls else None
    if pa.types.is_string(type) or pa.types.is_binary(type):
        raw = str.encode if pa.types.is_string(type) else lambda item: bytes(memoryview(item))
        encoded = [b"" if item is None else raw(item) for item in items]
        offsets = np.zeros(len(items) + 1, dtype=np.int32)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        buffers = [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    else:
        data = np.array([0 if item is None else item for item in items], dtype=_numpy_dtype(type))
        buffers = [validity, pa.py_buffer(data)]
    return pa.Array.from_buffers(type, len(items), buffers, nulls)


def empty_table(schema: pa.Schema) -> pa.Table:
    """A table of ``schema`` with no rows (``schema.empty_table()`` imports pandas)."""
    return pa.Table.from_batches([], schema)
