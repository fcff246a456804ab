"""2,000 wells through the aws backend on moto: consumer rows/s and AWS calls per 1,000 rows.

Run: ``.venv/bin/python bench/bench_aws_scale.py [--wells 2000 --rows 30] [--out FILE]`` (a few minutes).

Starts the test suite's in-process moto server (``tests/backends.py``: Kinesis, S3, Glue,
DynamoDB, Athena answered by DuckDB), creates the stack's resources, puts one record of
``--rows`` observations per well on one shard, then runs one consumer with the ECS settings
(``batch_seconds`` 15, 4 MiB batches) until the stream is drained, compaction included. Every
AWS call the process makes is counted by service and operation (a hook on botocore's
``_make_api_call``), split into the producer's put and the consumer's run. moto answers in
microseconds where AWS takes milliseconds, so rows/s here is the consumer's CPU bound, and the
call counts are what AWS would bill. Then, without AWS, the cost of the records a real-time
replay sends (one row each): bytes per record, and the consumer's CPU per record and per row.
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
from engine.backend import open_backend  # noqa: E402
from engine.backends.aws import _kinesis  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.consumer import Consumer, ConsumerOptions  # noqa: E402
from engine.schema import WELL_DATA_TABLE  # noqa: E402
from tests.backends import aws_account  # noqa: E402
from tests.test_aws_many_wells import well_record  # noqa: E402


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


def run(wells: int, rows: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home, aws_account(shard_count=1), \
            mock.patch.object(_kinesis, "READS_PER_SECOND", 100.0), mock.patch.object(_kinesis, "READ_BURST", 100):
        backend = open_backend(Settings(backend="aws", home=Path(home), shard_count=1))
        with CallCounter() as put:
            backend.stream.put_records([well_record(i) for i in range(wells)])
        options = ConsumerOptions(batch_seconds=15.0, idle_exit_seconds=2.0, poll_seconds=0.05)
        with CallCounter() as consume:
            started = time.perf_counter()
            stats = Consumer(backend, options).run(threading.Event())
            elapsed = time.perf_counter() - started
        landed = backend.lake.row_count(WELL_DATA_TABLE)
    total = wells * rows
    per_thousand = {name: round(count * 1000 / total, 3) for name, count in sorted(consume.calls.items())}
    return {"wells": wells, "rows_per_well": rows, "rows": total, "rows_landed": landed,
            "batches": stats.batches, "consume_seconds": elapsed,
            "consumer_rows_per_s": total / elapsed, "put_calls": dict(put.calls),
            "consumer_calls": dict(sorted(consume.calls.items())),
            "consumer_calls_per_1000_rows": per_thousand,
            "note": "consume_seconds includes the 15 s a batch gathers and the 2 s idle exit"}


def per_record_costs(wells: int) -> dict[str, float]:
    """At 1x speed each well sends one 1-row record a second: the wire and CPU cost of such records."""
    import tests.test_aws_many_wells as shape
    from engine.consumer import _decode_all, _drop_seen
    from engine.scoring import score_observations
    from engine.stream import StreamRecord

    shape.ROWS_PER_WELL = 1
    records = [StreamRecord("s", str(i), f"WELL-{i:05d}", well_record(i).data) for i in range(wells)]
    started = time.perf_counter()
    observations, _ = _decode_all(records)
    decoded = time.perf_counter()
    states: dict[str, Any] = {}
    score_observations(_drop_seen(observations, states), states, None)
    featured = time.perf_counter()
    return {"one_row_record_bytes": sum(len(r.data) for r in records) / wells,
            "decode_ms_per_record": 1000 * (decoded - started) / wells,
            "dedup_and_features_ms_per_row": 1000 * (featured - decoded) / wells}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wells", type=int, default=2_000)
    parser.add_argument("--rows", type=int, default=30)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import tests.test_aws_many_wells as shape

    shape.ROWS_PER_WELL = args.rows
    result = {"machine": f"{platform.machine()}, {platform.python_version()}", **run(args.wells, args.rows)}
    result["one_row_records"] = per_record_costs(args.wells)
    report(result, args.out)


if __name__ == "__main__":
    main()
