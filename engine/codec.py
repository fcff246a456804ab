"""The wire format of stream records: many observations per record, columnar and compressed.

Kinesis caps a shard at 1,000 records/s and 1 MiB/s, so a record carries a block of one
well's observations, packed to a few bytes per observation. The first byte is a format
version so the codec can evolve while old records are still in the stream; :func:`decode`
reads every version this module ever wrote.

* Version 2 (written today): a header (rows, message bytes), then one zstd frame holding an
  Arrow IPC record-batch message of :data:`OBSERVATION_SCHEMA`, whose schema is fixed by the
  version and not sent. Each float column's data is byte-transposed first (byte 0 of every
  value, then byte 1, ...: Parquet's byte-stream-split), which packs sensor data about as well
  as Parquet. Encoding costs a few Arrow calls per record, not a Parquet writer's fixed cost
  per column chunk (2–4 ms a record, most of a replay of many short wells), and a 5-row record
  is some 700 bytes instead of 3.7 KB of Parquet footer and column metadata.
* Version 1: the rows as a Parquet file (byte-stream-split floats, zstd).

Records come from the stream, which anyone allowed to put records can write, and a payload of
constant columns decompresses thousands of times over. :func:`decode` therefore refuses a
record that declares more than :data:`MAX_RECORD_ROWS` rows or :data:`MAX_RECORD_BYTES`
uncompressed bytes before decompressing anything: version 2 from its header (and the frame is
decompressed into exactly the declared size, or refused), version 1 from its Parquet footer.
A version-2 message must also be what the encoder writes: no per-buffer compression (whose
declared sizes Arrow would allocate unchecked), the declared rows, and buffers that hold them.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engine.errors import InputError
from engine.schema import OBSERVATION_SCHEMA, conform

FORMAT_VERSION = 2
PARQUET_VERSION = 1
#: Rows one record may declare: a Kinesis record (at most 1 MiB) holds some 40,000 observations;
#: the producer sends 2,000 per record.
MAX_RECORD_ROWS = 100_000
#: Uncompressed bytes one record may declare (its rows, every column; about 130 bytes per row).
MAX_RECORD_BYTES = 64 * 2**20

_HEADER = struct.Struct("<BII")  # version, rows, bytes of the uncompressed message
_FLOAT_POSITIONS = [i for i, f in enumerate(OBSERVATION_SCHEMA) if pa.types.is_floating(f.type)]
_FLOAT_WIDTH = 4
#: Each float column's values buffer among a record batch's buffers (a column's buffers: validity, then
#: offsets if it has them, then values; every column of the schema lists its validity buffer).
_FLOAT_BUFFERS = np.array([sum(OBSERVATION_SCHEMA.field(j).type.num_buffers for j in range(i)) + 1
                           for i in _FLOAT_POSITIONS])
_BUFFER_COUNT = sum(field.type.num_buffers for field in OBSERVATION_SCHEMA)
assert all(OBSERVATION_SCHEMA.field(i).type == pa.float32() for i in _FLOAT_POSITIONS)
_ZSTD = pa.Codec("zstd")
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: Decompressed bytes of the records decoded together at most: enough for the fixed costs of small
#: records to be shared, and little enough to stay in the CPU's cache until their floats are restored.
_JOINT_BYTES = 256 * 1024


def encode(observations: pa.Table) -> bytes:
    """Pack observations (any subset of rows of :data:`OBSERVATION_SCHEMA`) into one payload."""
    batch = _one_batch(conform(observations, OBSERVATION_SCHEMA))
    message = batch.serialize()
    data = np.frombuffer(message, dtype=np.uint8).copy()
    if batch.num_rows:
        starts = _float_starts(len(data), pa.ipc.read_message(message), message.address, batch.num_rows)
        _transpose(data, starts, batch.num_rows, restore=False)
    return _HEADER.pack(FORMAT_VERSION, batch.num_rows, message.size) + _ZSTD.compress(data, asbytes=True)


def decode(payload: bytes) -> pa.Table:
    """Unpack a payload; anything that is not a valid record raises :class:`InputError`."""
    return pa.Table.from_batches(decode_batches(payload), OBSERVATION_SCHEMA)


def decode_batches(payload: bytes) -> list[pa.RecordBatch]:
    """:func:`decode`'s rows as record batches, for a caller joining many records into one table
    (making a table of each small record costs about as much as decoding it)."""
    version = payload[0] if payload else None
    decoders = {FORMAT_VERSION: _decode_ipc, PARQUET_VERSION: _decode_parquet}
    if version not in decoders:
        raise InputError(f"unknown record format version {version!r}")
    try:
        return decoders[version](payload)
    except InputError:
        raise
    except Exception as exc:
        raise _as_input_error(exc) from exc


def decode_many(payloads: Sequence[bytes]) -> list[list[pa.RecordBatch] | InputError]:
    """:func:`decode_batches` of each payload: its record batches, or the :class:`InputError` it raises.

    A record of one short-lived well's 180 rows spends most of its decode in fixed costs per call:
    a zstd context per decompression, and some twenty NumPy calls restoring its float columns.
    So the version-2 records whose zstd frame states its content size (the encoder's do), up to
    :data:`_JOINT_BYTES` of them at a time, are decompressed in one call: frames one after
    the other are one zstd input, and zstd checks every frame's output against the size its
    header states, so each message lands exactly in its own slot, or the call fails. Each message
    is then read and checked alone, as :func:`decode_batches` does, and the float columns of
    all records of one length are restored together. Every other record, and every record of a
    joint decompression that fails, is decoded alone: a corrupt record fails alone, with the
    reason :func:`decode_batches` gives it, and takes no other record with it.
    """
    results: list[list[pa.RecordBatch] | InputError | None] = [None] * len(payloads)
    for group in _joint_groups(payloads):
        _decode_together(payloads, group, results)
    for index, result in enumerate(results):
        if result is None:
            try:
                results[index] = decode_batches(payloads[index])
            except InputError as exc:
                results[index] = exc
    return results


def _joint_groups(payloads: Sequence[bytes]) -> list[list[int]]:
    """Positions of the records that can be decompressed together, in groups of at most
    :data:`_JOINT_BYTES` declared bytes."""
    groups: list[list[int]] = [[]]
    total = 0
    for index, payload in enumerate(payloads):
        if len(payload) <= _HEADER.size or payload[0] != FORMAT_VERSION:
            continue
        _, rows, size = _HEADER.unpack_from(payload)
        if rows > MAX_RECORD_ROWS or size > MAX_RECORD_BYTES or _frame_content_size(payload) != size:
            continue  # decoded alone, for its reason
        if total + size > _JOINT_BYTES:
            groups.append([])
            total = 0
        groups[-1].append(index)
        total += size
    return [group for group in groups if len(group) > 1]  # a record alone gains nothing


def _decode_together(payloads: Sequence[bytes], group: list[int],
                     results: list[list[pa.RecordBatch] | InputError | None]) -> None:
    """Decode the records at ``group`` (see :func:`decode_many`) into ``results``; leave them all
    unset if their joint decompression fails."""
    sizes = [_HEADER.unpack_from(payloads[index])[2] for index in group]
    try:
        buffer = _ZSTD.decompress(b"".join(memoryview(payloads[index])[_HEADER.size:] for index in group),
                                  decompressed_size=sum(sizes))
    except Exception:
        return
    data = np.frombuffer(buffer, dtype=np.uint8)
    floats: dict[int, list[np.ndarray]] = {}  # rows -> where the float columns of records of that length start
    offset = 0
    for index, size in zip(group, sizes, strict=True):
        rows = _HEADER.unpack_from(payloads[index])[1]
        try:
            batch, starts = _read_message(buffer.slice(offset, size), rows)
        except Exception as exc:
            results[index] = _as_input_error(exc)
        else:
            results[index] = [batch]
            if starts is not None:
                floats.setdefault(rows, []).append(starts + offset)
        offset += size
    for rows, starts in floats.items():
        _transpose(data, np.concatenate(starts), rows, restore=True)


def _as_input_error(exc: Exception) -> InputError:
    """What a record that fails to decode is refused with."""
    if isinstance(exc, InputError):
        return exc
    return InputError(f"corrupt record: {str(exc).splitlines()[0][:200]}")


def _frame_content_size(payload: bytes) -> int | None:
    """The content size the header of the zstd frame after the record header states (None: not stated,
    or not a zstd frame). Format: RFC 8878, section 3.1.1.1."""
    frame = _HEADER.size
    if len(payload) < frame + 6 or payload[frame:frame + 4] != _ZSTD_MAGIC:
        return None
    descriptor = payload[frame + 4]
    single_segment = descriptor >> 5 & 1
    at = frame + 5 + (1 - single_segment) + (0, 1, 2, 4)[descriptor & 3]  # past the window and dictionary id
    width = (single_segment, 2, 4, 8)[descriptor >> 6]
    if width == 0 or len(payload) < at + width:
        return None
    size = int.from_bytes(payload[at:at + width], "little")
    return size + 256 if width == 2 else size


def _decode_ipc(payload: bytes) -> list[pa.RecordBatch]:
    _, rows, size = _HEADER.unpack_from(payload)
    _check_declared_size(rows, size)
    # A new, mutable buffer: the float columns are restored in place, under the batch's arrays.
    buffer = _ZSTD.decompress(memoryview(payload)[_HEADER.size:], decompressed_size=size)
    batch, starts = _read_message(buffer, rows)
    if starts is not None:
        _transpose(np.frombuffer(buffer, dtype=np.uint8), starts, rows, restore=True)
    return [batch]


def _read_message(buffer: pa.Buffer, rows: int) -> tuple[pa.RecordBatch, np.ndarray | None]:
    """The record batch a decompressed version-2 message holds, checked to be what the encoder
    writes, with its float columns still transposed, and where in ``buffer`` they start (None for
    no rows)."""
    message = pa.ipc.read_message(buffer)
    metadata = message.metadata.to_pybytes()
    if _field_position(metadata, _record_batch_header(metadata), 3) is not None:  # RecordBatch.compression
        raise InputError("corrupt record: compressed buffers inside the message")
    batch = pa.ipc.read_record_batch(message, OBSERVATION_SCHEMA)
    batch.validate(full=True)  # every buffer inside the message and large enough for its rows
    if batch.num_rows != rows:
        raise InputError(f"corrupt record: {batch.num_rows:,} rows where the header declares {rows:,}")
    return batch, (_float_starts(buffer.size, message, buffer.address, rows) if rows else None)


def _decode_parquet(payload: bytes) -> list[pa.RecordBatch]:
    parquet = pq.ParquetFile(pa.BufferReader(memoryview(payload)[1:]))  # no copy of the payload
    metadata = parquet.metadata
    _check_declared_size(metadata.num_rows,
                         sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups)))
    return conform(parquet.read(), OBSERVATION_SCHEMA).to_batches()


def _check_declared_size(rows: int, declared: int) -> None:
    if rows > MAX_RECORD_ROWS or declared > MAX_RECORD_BYTES:
        raise InputError(f"record declares {rows:,} rows ({declared / 2**20:,.1f} MiB uncompressed), "
                         f"more than the {MAX_RECORD_ROWS:,} rows / {MAX_RECORD_BYTES // 2**20} MiB a record may hold")


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    batches = table.to_batches()
    if len(batches) == 1:
        return batches[0]
    return pa.RecordBatch.from_arrays([column.combine_chunks() for column in table.columns], schema=table.schema)


def _float_starts(size: int, message: pa.Message, base: int, rows: int) -> np.ndarray:
    """Where each float column's values start in the ``size`` bytes of ``message`` (of ``rows`` rows,
    read without a copy from address ``base``), each checked to lie inside them.

    Read from the message's own list of its buffers: asking each column of a batch for its
    buffers costs more than decoding a small record does.
    """
    metadata = message.metadata.to_pybytes()
    vector = _table_field(metadata, _record_batch_header(metadata), 2)  # RecordBatch.buffers
    if vector is None or struct.unpack_from("<I", metadata, vector)[0] != _BUFFER_COUNT:
        raise InputError(f"corrupt record: a message without the {_BUFFER_COUNT} buffers of its schema")
    buffers = np.frombuffer(metadata, dtype="<i8", count=2 * _BUFFER_COUNT, offset=vector + 4)  # offset, length, …
    starts = buffers[2 * _FLOAT_BUFFERS] + (message.body.address - base)
    if starts.min() < 0 or starts.max() + rows * _FLOAT_WIDTH > size:
        raise InputError("corrupt record: a float column outside the message")
    return starts


def _transpose(data: np.ndarray, starts: np.ndarray, rows: int, restore: bool) -> None:
    """Byte-transpose (or, to ``restore``, transpose back) the float columns of ``rows`` values that
    start in ``data`` at ``starts`` (of one record, or of many records of that length at once).

    All columns are moved at once, a byte plane at a time: column by column cost some 2 µs each,
    27 per record.
    """
    width = rows * _FLOAT_WIDTH
    # Every run of ``width`` bytes of ``data`` (a view, each row inside it), so a column is a row.
    windows = np.lib.stride_tricks.as_strided(data, shape=(len(data) - width + 1, width), strides=(1, 1))
    source, target = windows[starts], np.empty((len(starts), width), dtype=np.uint8)
    planes, values = (source, target) if restore else (target, source)
    planes, values = planes.reshape(-1, _FLOAT_WIDTH, rows), values.reshape(-1, rows, _FLOAT_WIDTH)
    for byte in range(_FLOAT_WIDTH):
        if restore:
            values[:, :, byte] = planes[:, byte]
        else:
            planes[:, byte] = values[:, :, byte]
    windows[starts] = target


def _record_batch_header(metadata: bytes) -> int:
    """Position of the ``RecordBatch`` table in an IPC message's flatbuffer metadata (a ``Message``)."""
    header = _table_field(metadata, struct.unpack_from("<I", metadata, 0)[0], 2)  # Message.header
    if header is None:
        raise InputError("corrupt record: a message without a record batch")
    return header


def _table_field(buffer: bytes, table: int, field: int) -> int | None:
    """Position of the table a flatbuffer table's field points to (None if the field is absent)."""
    at = _field_position(buffer, table, field)
    return None if at is None else at + struct.unpack_from("<I", buffer, at)[0]


def _field_position(buffer: bytes, table: int, field: int) -> int | None:
    if not 0 <= table < len(buffer):
        raise InputError("corrupt record: a message whose metadata points outside it")
    vtable = table - struct.unpack_from("<i", buffer, table)[0]
    if not 0 <= vtable < len(buffer):
        raise InputError("corrupt record: a message whose metadata points outside it")
    vtable_size = struct.unpack_from("<H", buffer, vtable)[0]
    entry = 4 + 2 * field
    offset = struct.unpack_from("<H", buffer, vtable + entry)[0] if entry + 2 <= vtable_size else 0
    return table + offset if offset else None
