"""2,000 wells through the aws backend on moto: bytes per record, consumer CPU per row, AWS calls per 1,000 rows.

Run: ``.venv/bin/python bench/bench_aws_scale.py [--wells 2000 --seconds 30] [--out FILE]`` (a few minutes).

Starts the test suite's in-process moto server (``tests/backends.py``: Kinesis, S3, Glue,
DynamoDB, Athena answered by DuckDB), creates the stack's resources, and puts on one shard the
records a real-time replay sends on aws: one per well every ``Backend.min_record_seconds`` (that
many rows at 1 Hz) for ``--seconds`` of each well, cut from demo data (``engine.demo_data``,
whose values compress as sensor data does). Then one consumer runs with the ECS settings
(``batch_seconds`` 15, 4 MiB batches) until the stream is drained, compaction included. Every
AWS call the process makes is counted by service and operation (a hook on botocore's
``_make_api_call``), split into the producer's put and the consumer's run, and the consumer's
CPU time is its thread's (the moto server answers on threads of its own). moto answers in
microseconds where AWS takes milliseconds, so wall-clock rows/s here says little; CPU per row
and the call counts are what sizes and bills a deployment. The aws backend's design fields the
scaling table needs (record seconds, housekeeping interval, lease time) are recorded beside them.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from unittest import mock

import botocore.client

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.report import report  # noqa: E402
from engine import codec, demo_data  # noqa: E402
from engine.backend import open_backend  # noqa: E402
from engine.backends.aws import _kinesis  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.consumer import Consumer, ConsumerOptions  # noqa: E402
from engine.readers import read_instance  # noqa: E402
from engine.schema import WELL_DATA_TABLE  # noqa: E402
from engine.stream import OutgoingRecord  # noqa: E402
from tests.backends import aws_account  # noqa: E402


class CallCounter:
    """Every botocore API call of this process, by ``service.Operation``."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._original = botocore.client.BaseClient._make_api_call

    def __enter__(self) -> CallCounter:
        counter = self

        def counting(client: Any, operation: str, params: dict[str, Any]) -> Any:
            counter.calls[f"{client.meta.service_model.service_name}.{operation}"] += 1
            return counter._original(client, operation, params)

        self._patch = mock.patch.object(botocore.client.BaseClient, "_make_api_call", counting)
        self._patch.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._patch.stop()


def real_time_records(wells: int, seconds: int, record_seconds: float) -> list[OutgoingRecord]:
    """``seconds`` of each of ``wells`` demo wells at 1 Hz, as records of ``record_seconds`` rows."""
    rows = round(record_seconds)
    with tempfile.TemporaryDirectory() as folder:
        files = demo_data.generate(Path(folder), wells=wells, hours=seconds / 3600, compression="zstd")
        # A well's seconds may be cut into two instances (files): their rows follow each other.
        tables = [read_instance(path) for path in sorted(files)]
    return [OutgoingRecord(table["well_id"][0].as_py(), codec.encode(table.slice(start, rows)))
            for table in tables for start in range(0, table.num_rows, rows)]


def run(wells: int, seconds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home, aws_account(shard_count=1), \
            mock.patch.object(_kinesis, "READS_PER_SECOND", 100.0), mock.patch.object(_kinesis, "READ_BURST", 100), \
            mock.patch.object(_kinesis, "SHARD_RECORDS_PER_SECOND", 100_000), \
            mock.patch.object(_kinesis, "SHARD_BYTES_PER_SECOND", 1 << 30):  # moto has no write limit
        backend = open_backend(Settings(backend="aws", home=Path(home), shard_count=1))
        records = real_time_records(wells, seconds, backend.min_record_seconds)
        rows = sum(codec.decode(record.data).num_rows for record in records)
        with CallCounter() as put:
            backend.stream.put_records(records)
        options = ConsumerOptions(batch_seconds=15.0, idle_exit_seconds=2.0, poll_seconds=0.05)
        with CallCounter() as consume:
            started, cpu_started = time.perf_counter(), time.thread_time()
            stats = Consumer(backend, options).run(threading.Event())
            elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu_started
        landed = backend.lake.row_count(WELL_DATA_TABLE)
        design = {"min_record_seconds": backend.min_record_seconds,
                  "housekeeping_seconds": backend.housekeeping_seconds,
                  "lease_seconds": backend.leases.lease_seconds}
    per_thousand = {name: round(count * 1000 / rows, 3) for name, count in sorted(consume.calls.items())}
    return {"wells": wells, "seconds_per_well": seconds, "records": len(records), "rows": rows,
            "rows_landed": landed, "record_bytes": sum(len(record.data) for record in records) / len(records),
            "batches": stats.batches, "consume_seconds": elapsed, "consumer_cpu_seconds": cpu,
            "consumer_rows_per_cpu_second": rows / cpu, "put_calls": dict(put.calls),
            "consumer_calls": dict(sorted(consume.calls.items())),
            "consumer_calls_per_1000_rows": per_thousand,
            "note": "consume_seconds includes the 15 s a batch gathers and the 2 s idle exit",
            "aws_backend": design}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wells", type=int, default=2_000)
    parser.add_argument("--seconds", type=int, default=30, help="seconds of each well at 1 Hz")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    report({"machine": f"{platform.machine()}, {platform.python_version()}", **run(args.wells, args.seconds)},
           args.out)


if __name__ == "__main__":
    main()
