"""The stream record format: lossless, readable in every version written, small, and strict with hostile records."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine import codec
from engine.errors import InputError
from engine.readers import discover, read_instance
from engine.schema import OBSERVATION_SCHEMA


@pytest.fixture(scope="module")
def well(demo_dir: Path) -> pa.Table:
    return read_instance(discover([demo_dir])[0].path)


def same_bits(left: pa.Table, right: pa.Table) -> bool:
    """Equal schema, nulls and every value's bits (``Table.equals`` calls NaN unequal to itself)."""
    if left.schema != right.schema or left.num_rows != right.num_rows:
        return False
    for a, b in zip(left.columns, right.columns, strict=True):
        a, b = a.combine_chunks(), b.combine_chunks()
        if not a.is_null().equals(b.is_null()):
            return False
        if pa.types.is_floating(a.type):
            a, b = (c.fill_null(0).to_numpy().view(np.uint32) for c in (a, b))
            if not np.array_equal(a, b):
                return False
        elif not a.equals(b):
            return False
    return True


def parquet_record(table: pa.Table) -> bytes:
    """A record as format version 1 wrote it (still in streams when the producer is upgraded)."""
    buffer = io.BytesIO()
    buffer.write(bytes([codec.PARQUET_VERSION]))
    pq.write_table(table, buffer, compression="zstd", use_dictionary=["well_id"],
                   column_encoding={f.name: "BYTE_STREAM_SPLIT" for f in OBSERVATION_SCHEMA
                                    if pa.types.is_floating(f.type)},
                   write_statistics=False, store_schema=False)
    return buffer.getvalue()


def record(rows: int, message: bytes | pa.Buffer, size: int | None = None) -> bytes:
    """A version-2 record around ``message`` (an IPC record-batch message), with the header's claims given."""
    raw = memoryview(message)
    return (struct.pack("<BII", codec.FORMAT_VERSION, rows, len(raw) if size is None else size)
            + pa.Codec("zstd").compress(raw, asbytes=True))


def test_every_slice_round_trips_bit_for_bit(well: pa.Table) -> None:
    sensor = OBSERVATION_SCHEMA.field("p_tpt")
    odd = well.slice(0, 5).set_column(well.schema.get_field_index("p_tpt"), sensor,
                                      pa.array([1.5, None, float("nan"), -0.0, np.float32(3e38)], pa.float32()))
    chunked = pa.concat_tables([well.slice(3, 10), well.slice(40, 7)])
    for table in (well.slice(0, 0), well.slice(0, 1), well.slice(11, 5), well.slice(13, 2_000), well, odd, chunked):
        assert same_bits(codec.decode(codec.encode(table)), table.combine_chunks())
    assert codec.encode(well)[0] == codec.FORMAT_VERSION == 2


def test_records_of_the_previous_format_still_decode(well: pa.Table) -> None:
    for table in (well.slice(0, 1), well.slice(7, 2_000)):
        assert same_bits(codec.decode(parquet_record(table)), table)


def test_a_five_second_record_is_smaller_than_before_and_a_large_one_no_larger(well: pa.Table) -> None:
    # Firehose bills a record in 5 KB steps and the aws producer sends 5 s of a well per record;
    # a large record's bytes per observation set how many observations a shard's 1 MiB/s carries.
    for rows in (1, 5):
        assert len(codec.encode(well.slice(100, rows))) < min(1_024, len(parquet_record(well.slice(100, rows))))
    assert len(codec.encode(well.slice(100, 2_000))) <= 1.1 * len(parquet_record(well.slice(100, 2_000)))


def test_a_record_at_the_row_cap_decodes_and_the_header_is_refused_past_it(well: pa.Table) -> None:
    table = pa.concat_tables([well] * (codec.MAX_RECORD_ROWS // well.num_rows + 1)).slice(0, codec.MAX_RECORD_ROWS)
    assert codec.decode(codec.encode(table)).num_rows == codec.MAX_RECORD_ROWS
    message = table.slice(0, 10).combine_chunks().to_batches()[0].serialize()
    with pytest.raises(InputError, match="declares 100,001 rows"):
        codec.decode(record(codec.MAX_RECORD_ROWS + 1, message))
    with pytest.raises(InputError, match="MiB uncompressed"):
        codec.decode(record(10, message, size=codec.MAX_RECORD_BYTES + 1))


def test_a_record_that_is_not_what_its_header_says_is_refused(well: pa.Table) -> None:
    batch = well.slice(0, 10).combine_chunks().to_batches()[0]
    message = batch.serialize()
    with pytest.raises(InputError, match="corrupt record: 10 rows where the header declares 9"):
        codec.decode(record(9, message))
    with pytest.raises(InputError, match="corrupt record"):  # the frame holds more than the header declares
        codec.decode(record(10, message, size=message.size - 8))
    for payload in (record(10, message)[:20], bytes([codec.FORMAT_VERSION]), record(10, b"\x00" * 64)):
        with pytest.raises(InputError, match="corrupt record"):
            codec.decode(payload)


def test_a_message_with_compressed_buffers_is_refused_before_arrow_allocates_them(well: pa.Table) -> None:
    # Arrow would allocate each buffer's declared uncompressed size, which a record can set to anything.
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, OBSERVATION_SCHEMA, options=pa.ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_batch(well.slice(0, 10).combine_chunks().to_batches()[0])
    reader = pa.ipc.MessageReader.open_stream(sink.getvalue())
    reader.read_next_message()  # the schema
    message = reader.read_next_message()
    with pytest.raises(InputError, match="compressed buffers"):
        codec.decode(record(10, message.serialize()))


def broken_frame(payload: bytes) -> bytes:
    """``payload`` with its zstd frame header (and so its stated size) intact and its first block
    of the reserved type: not decompressible."""
    frame = 9  # after the record header
    assert payload[frame + 4] == 0x60  # a single segment, the content size in two bytes (as for a few KB)
    block = frame + 4 + 1 + 2
    return payload[:block] + bytes([payload[block] | 0b110]) + payload[block + 1:]


def assert_decoded_as_alone(payloads: list[bytes]) -> None:
    """``decode_many`` gives, for every payload, what ``decode_batches`` gives it alone: the same rows
    to the bit, or the same refusal."""
    together = codec.decode_many(payloads)
    assert len(together) == len(payloads)
    for payload, result in zip(payloads, together, strict=True):
        try:
            alone = codec.decode_batches(payload)
        except InputError as exc:
            assert isinstance(result, InputError) and str(result) == str(exc)
        else:
            assert not isinstance(result, InputError)
            assert same_bits(pa.Table.from_batches(result, OBSERVATION_SCHEMA),
                             pa.Table.from_batches(alone, OBSERVATION_SCHEMA))


def test_small_records_decoded_together_give_each_record_s_rows(
        well: pa.Table, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    lengths = [*rng.integers(1, 400, 120).tolist(), 0, 2_000, 180, 180]  # many lengths, more than one group holds
    payloads = [codec.encode(well.slice(int(rng.integers(0, well.num_rows - n)), n)) for n in lengths]
    payloads.insert(7, parquet_record(well.slice(5, 50)))  # the previous format among them: decoded alone
    alone = []
    monkeypatch.setattr(codec, "_decode_ipc", lambda payload: alone.append(payload) or [])
    codec.decode_many(payloads)
    assert alone == [payloads[lengths.index(2_000) + 1]]  # only the record larger than a group was decoded alone
    monkeypatch.undo()
    assert_decoded_as_alone(payloads)
    assert len(codec._joint_groups(payloads)) > 1


def test_a_corrupt_record_among_records_decoded_together_fails_alone_with_its_reason(well: pa.Table) -> None:
    batch = well.slice(0, 10).combine_chunks().to_batches()[0]
    message = batch.serialize()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, OBSERVATION_SCHEMA, options=pa.ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_batch(batch)
    reader = pa.ipc.MessageReader.open_stream(sink.getvalue())
    reader.read_next_message()  # the schema
    good = [codec.encode(well.slice(start, 30)) for start in range(0, 300, 30)]
    corrupt = [
        record(9, message),  # a frame that decompresses, a message that is not what the header says
        record(10, b"\x00" * 64),  # a frame that decompresses, no message in it
        record(10, reader.read_next_message().serialize()),  # compressed buffers inside
        record(10, message, size=message.size - 8),  # the frame holds more than the header declares
        broken_frame(good[3]),  # the frame states its size, its data does not decompress: the joint call fails
        good[4][:40],  # a frame cut short
        good[5] + b"junk",  # bytes after the frame
        good[6] + pa.Codec("zstd").compress(b"more", asbytes=True),  # a second frame with more in it
        b"\x02corrupt",
        b"",
    ]
    for bad in corrupt:
        payloads = [*good[:5], bad, *good[5:]]
        assert_decoded_as_alone(payloads)
        results = codec.decode_many(payloads)
        assert isinstance(results[5], InputError), bad[:20]
        assert not any(isinstance(result, InputError) for result in results[:5] + results[6:])
    # Two frames each other's size: together they fill the declared bytes, each in the other's slot.
    other = well.slice(10, 10).combine_chunks().to_batches()[0].serialize()
    shifted = [record(10, bytes(message) + bytes(24), size=message.size), record(10, other, size=other.size + 24)]
    assert_decoded_as_alone([good[0], *shifted, good[1]])
    assert all(isinstance(result, InputError) for result in codec.decode_many(shifted))
