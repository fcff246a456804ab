"""The wire format of stream records: many observations per record, columnar and compressed.

Kinesis caps a shard at 1,000 records/s and 1 MiB/s, so a record carries a block of
observations as Parquet with byte-stream-split floats and zstd, which packs 3W sensor data
to a few bytes per observation. The first byte is a format version so the codec can evolve
while old records are still in the stream.
"""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from engine.errors import InputError
from engine.schema import OBSERVATION_SCHEMA, conform

FORMAT_VERSION = 1
_VERSION_BYTE = bytes([FORMAT_VERSION])
_FLOAT_COLUMNS = [f.name for f in OBSERVATION_SCHEMA if pa.types.is_floating(f.type)]


def encode(observations: pa.Table) -> bytes:
    """Pack observations (any subset of rows of :data:`OBSERVATION_SCHEMA`) into one payload."""
    buffer = io.BytesIO()
    buffer.write(_VERSION_BYTE)
    pq.write_table(
        conform(observations, OBSERVATION_SCHEMA),
        buffer,
        compression="zstd",
        use_dictionary=["well_id"],
        column_encoding={name: "BYTE_STREAM_SPLIT" for name in _FLOAT_COLUMNS},
        write_statistics=False,
        store_schema=False,
    )
    return buffer.getvalue()


def decode(payload: bytes) -> pa.Table:
    """Unpack a payload; anything that is not a valid record raises :class:`InputError`."""
    if not payload or payload[0] != FORMAT_VERSION:
        version = payload[0] if payload else None
        raise InputError(f"unknown record format version {version!r}")
    try:
        table = pq.ParquetFile(pa.BufferReader(memoryview(payload)[1:])).read()  # no dataset set-up, no copy
        return conform(table, OBSERVATION_SCHEMA)
    except Exception as exc:
        raise InputError(f"corrupt record: {str(exc).splitlines()[0][:200]}") from exc
