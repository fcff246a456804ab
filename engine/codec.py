"""The wire format of stream records: many observations per record, columnar and compressed.

Kinesis caps a shard at 1,000 records/s and 1 MiB/s, so a record carries a block of
observations as Parquet with byte-stream-split floats and zstd, which packs 3W sensor data
to a few bytes per observation. The first byte is a format version so the codec can evolve
while old records are still in the stream.

Records come from the stream, which anyone allowed to put records can write, and a Parquet
payload of constant columns decompresses thousands of times over. :func:`decode` therefore
reads the payload's footer first and refuses a record that declares more than
:data:`MAX_RECORD_ROWS` rows or :data:`MAX_RECORD_BYTES` uncompressed bytes, before
decompressing anything.
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
#: Rows one record may declare: a Kinesis record (at most 1 MiB) holds some 40,000 observations;
#: the producer sends 2,000 per record.
MAX_RECORD_ROWS = 100_000
#: Uncompressed bytes one record may declare (its rows, every column; about 130 bytes per row).
MAX_RECORD_BYTES = 64 * 2**20


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
        parquet = pq.ParquetFile(pa.BufferReader(memoryview(payload)[1:]))  # no copy of the payload
        _check_declared_size(parquet.metadata)
        return conform(parquet.read(), OBSERVATION_SCHEMA)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"corrupt record: {str(exc).splitlines()[0][:200]}") from exc


def _check_declared_size(metadata: pq.FileMetaData) -> None:
    declared = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    if metadata.num_rows > MAX_RECORD_ROWS or declared > MAX_RECORD_BYTES:
        raise InputError(f"record declares {metadata.num_rows:,} rows ({declared / 2**20:,.1f} MiB uncompressed), "
                         f"more than the {MAX_RECORD_ROWS:,} rows / {MAX_RECORD_BYTES // 2**20} MiB a record may hold")
