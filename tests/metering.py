"""Measure the AWS calls of the default deployment at demo load, on moto, in simulated real time.

The demo load is the deployed demo producer's: 6 wells replayed at speed 1 (one observation
per well a second) into a 1-shard stream, read by one consumer with Terraform's defaults
(15 s batches, 20 s leases). The producer and the consumer run their own loops, unchanged, on
a :class:`tests.simulated_time.SimulatedClock`, so each simulated second makes the calls a
real second would; an :class:`deploy.api_calls.ApiCallCounter` on the backend's boto3 session
counts them after a warm-up (startup calls are not part of the monthly steady state).

``python -m tests.metering`` measures and writes ``deploy/measured_calls.json``, which
``deploy.cost`` turns into the request lines of docs/COST.md; ``tests/test_aws_metered_cost.py``
measures again and fails when the code's calls drift from the file.
"""

from __future__ import annotations

import functools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from deploy.api_calls import ApiCallCounter
from deploy.cost import MEASURED_FILE
from engine import consumer as consumer_module
from engine import leases as leases_module
from engine import producer as producer_module
from engine.backends.aws import _dynamodb, _kinesis, _pacing, _s3_lake, open_aws_backend
from engine.config import Settings
from engine.consumer import Consumer, ConsumerOptions
from engine.demo_data import generate
from engine.producer import Producer, ReplayOptions
from engine.readers import InstanceFile, discover
from tests import strict_aws
from tests.backends import REGION, aws_account
from tests.simulated_time import SimulatedClock, SimulatedStop, run_together

#: The deployed demo: ``python -m engine demo-data`` (6 wells) replayed with ``--speed 1``.
WELLS = 6
#: Terraform's defaults (infra/variables.tf) for the consumer.
BATCH_SECONDS = 15
LEASE_SECONDS = 20
#: Simulated seconds before counting starts, and counted.
WARM_UP_SECONDS = 30
MEASURED_SECONDS = 180
#: Modules whose ``time`` paces the loops and the leases.
_PACED = (producer_module, consumer_module, leases_module, _dynamodb, _kinesis, _s3_lake)


def concurrent_wells(work: Path, seconds: int) -> list[InstanceFile]:
    """``WELLS`` demo wells live at once for ``seconds``, as on the deployed demo's busiest stretch.

    The demo generator staggers wells' instances over its 8 hours; a few minutes of it would
    often be one or two wells. Each well's longest instance is cut to ``seconds`` and moved to a
    common start, so all wells send one observation a second together.
    """
    out = work / "concurrent"
    out.mkdir()
    longest: dict[str, pa.Table] = {}
    for instance in discover(generate(work / "demo", wells=WELLS, hours=8.0, seed=7)):
        table = pq.read_table(instance.path)
        if table.num_rows > longest.get(instance.well_id, table.slice(0, 0)).num_rows:
            longest[instance.well_id] = table
    first = min(t["timestamp"][0].as_py() for t in longest.values())
    for well, table in longest.items():
        table = table.slice(0, seconds)
        times = table["timestamp"]
        shifted = pc.add(times, pa.scalar(first - times[0].as_py(), pa.duration(times.type.unit)))
        pq.write_table(table.set_column(table.schema.get_field_index("timestamp"), "timestamp", shifted),
                       out / f"{well}_{first:%Y%m%d%H%M%S}.parquet")
    return discover([out])


def measure(work: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run producer and consumer for warm-up plus measured simulated seconds; the measured part's
    counts, as ``deploy/measured_calls.json`` holds them."""
    files = concurrent_wells(work, WARM_UP_SECONDS + MEASURED_SECONDS + 60)
    clock = SimulatedClock(start=time.time(), participants=2)
    for module in _PACED:
        monkeypatch.setattr(module, "time", clock.module())
    monkeypatch.setattr(strict_aws, "clock", clock.monotonic)
    monkeypatch.setattr(_kinesis, "TokenBucket",
                        functools.partial(_pacing.TokenBucket, clock=clock.monotonic, sleep=clock.sleep))
    begin = clock.time() + WARM_UP_SECONDS
    end = begin + MEASURED_SECONDS
    counter = ApiCallCounter(active=lambda: begin <= clock.time() < end)
    with aws_account(shard_count=1):
        settings = Settings(backend="aws", home=work / "home", batch_seconds=BATCH_SECONDS,
                            lease_seconds=LEASE_SECONDS)
        backend = open_aws_backend(settings, counter.attach(boto3.session.Session(region_name=REGION)))
        producer = Producer(backend, files, ReplayOptions(speed=1.0))
        consumer = Consumer(backend, ConsumerOptions(batch_seconds=BATCH_SECONDS))
        run_together(clock, [lambda: producer.run(SimulatedStop(clock, end + 1)),
                             lambda: consumer.run(SimulatedStop(clock, end + 1))])
    calls: dict[str, dict[str, int]] = {}
    for (service, operation), count in sorted(counter.calls.items()):
        calls.setdefault(service, {})[operation] = count
    return {"wells": WELLS, "hz": 1, "shards": 1, "consumers": 1, "batch_seconds": BATCH_SECONDS,
            "simulated_seconds": MEASURED_SECONDS, "calls": calls,
            "kinesis_records": counter.kinesis_records, "kinesis_bytes": counter.kinesis_bytes,
            "kinesis_record_kb": {str(kb): n for kb, n in sorted(counter.kinesis_record_kb.items())},
            "dynamodb_write_units": counter.dynamodb_write_units,
            "s3_by_key": {f"{operation} {kind}": n for (operation, kind), n in sorted(counter.s3_by_kind.items())}}


def main() -> int:
    """Measure and write deploy/measured_calls.json."""
    with tempfile.TemporaryDirectory() as work, pytest.MonkeyPatch.context() as monkeypatch:
        measured = measure(Path(work), monkeypatch)
    MEASURED_FILE.write_text(json.dumps(measured, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(measured, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
