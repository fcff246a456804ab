"""What the consumer's state, its batches and the lake's compaction cost as a stream grows.

Run: ``.venv/bin/python bench/bench_state_and_compaction.py [--out FILE]`` (about two minutes).

Reports, from one run on one machine:

* **State and lease item size by wells per shard.** Real per-well states (each well's features
  warmed on 60 rows), encoded and zlib-compressed as the checkpoint stores them, and the
  DynamoDB lease item the aws backend writes on every renewal and checkpoint: with the state
  inline (the former design: item size and write units grow with wells, and the 400 KB item
  limit is passed) and with a pointer to the S3 state object (this design).
* **Batches at real-time speed.** The local backend, 6 wells replayed at 10x real time for
  20 s, consumed with ``batch_seconds`` 0 and 5: batches committed (each one, on AWS, is a set of
  S3 PUTs, a state PUT and a DynamoDB write) and rows per batch.
* **Compaction cost.** One date partition filling with 1,440 batches (a shard's 6 hours at 15 s
  batches), a compaction pass after every 4 (housekeeping runs once a minute): rows copied into
  merged files per landed row, with this tiered plan and with the former rule (every final
  file, compacted ones included, merged again each pass).
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from unittest import mock

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.report import report  # noqa: E402
from engine import lake as lake_rules  # noqa: E402
from engine.backend import open_backend  # noqa: E402
from engine.backends.aws._dynamodb import DynamoLeaseStore  # noqa: E402
from engine.backends.aws._errors import Resource  # noqa: E402
from engine.backends.local._lake import LocalLake  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.consumer import Consumer, ConsumerOptions  # noqa: E402
from engine.demo_data import generate  # noqa: E402
from engine.features import WellState, compute_features, encode_states  # noqa: E402
from engine.leases import Lease  # noqa: E402
from engine.producer import Producer, ReplayOptions  # noqa: E402
from engine.readers import discover, read_instance  # noqa: E402
from engine.schema import LAKE_TABLES, WELL_DATA_TABLE  # noqa: E402

SEQUENCE = "49590338271490256608559692538361571095921575989136588898"
ITEM_LIMIT = 400 * 1024


def _item_bytes(item: dict) -> int:
    """DynamoDB's item size: attribute names plus values (numbers counted as their digits)."""
    return sum(len(name) + sum(len(v) if isinstance(v, bytes) else len(str(v).encode()) for v in value.values())
               for name, value in item.items())


def state_sizes(data: Path) -> list[dict[str, float]]:
    """Each well's own state (its 60 rows scaled by a random factor, so no two states are alike)."""
    table = read_instance(discover([data])[0].path).slice(0, 60)
    rng = np.random.default_rng(7)
    store = DynamoLeaseStore(None, Resource("DynamoDB table", "bench", "PETROSTREAM_LEASE_TABLE"), "bench", None)
    lease = Lease("shardId-000000000000", "worker-1", 42, time.time(), SEQUENCE)
    pointer = _item_bytes(store._item(replace(lease, state_ref="000000000043-0123456789ab")))
    states: dict[str, WellState] = {}
    rows = []
    for wells in (100, 500, 2_000):
        while len(states) < wells:
            well = f"WELL-{len(states):05d}"
            scaled = {name: pc.multiply(table[name], float(rng.uniform(0.5, 2.0)))
                      if pa.types.is_floating(table.schema.field(name).type) else table[name]
                      for name in table.column_names}
            scaled["well_id"] = pa.array([well] * table.num_rows)
            mine: dict[str, WellState] = {}
            compute_features(pa.table(scaled).cast(table.schema), mine)
            states[well] = mine[well]
        encoded = encode_states(states)
        compressed = len(zlib.compress(encoded))
        inline = _item_bytes(store._item(lease)) + len("state") + compressed
        rows.append({"wells": wells, "state_json_bytes": len(encoded), "state_zlib_bytes": compressed,
                     "zlib_bytes_per_well": compressed / wells, "inline_item_bytes": inline,
                     "inline_write_units": math.ceil(inline / 1024), "inline_fits_400KB": inline <= ITEM_LIMIT,
                     "pointer_item_bytes": pointer, "pointer_write_units": math.ceil(pointer / 1024)})
    return rows


def batches_at_real_time(data: Path, batch_seconds: float, seconds: float = 20.0) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as home:
        backend = open_backend(Settings(home=Path(home), shard_count=2))
        consumer = Consumer(backend, ConsumerOptions(batch_seconds=batch_seconds, poll_seconds=0.05))
        stop = threading.Event()
        worker = threading.Thread(target=consumer.run, args=(stop,))
        worker.start()
        rows = 6 * int(seconds * 10)  # 6 wells at 1 Hz, replayed at 10x
        sent = Producer(backend, discover([data]), ReplayOptions(speed=10, max_rows=rows)).run(threading.Event())
        deadline = time.monotonic() + batch_seconds + 10
        while backend.lake.row_count(WELL_DATA_TABLE) < sent.sent_rows and time.monotonic() < deadline:
            time.sleep(0.1)  # the last batches are due batch_seconds after their first record
        stop.set()
        worker.join()
        landed = backend.lake.row_count(WELL_DATA_TABLE)
    return {"batch_seconds": batch_seconds, "rows_sent": sent.sent_rows, "rows_landed": landed,
            "batches": consumer.stats.batches, "rows_per_batch": landed / max(consumer.stats.batches, 1)}


def compaction_cost(tiered: bool, batches: int = 1_440, rows_per_batch: int = 25,
                    every: int = 4) -> dict[str, float]:
    """Rows rewritten per landed row as one partition fills (the former rule: every file counts as tier 0)."""
    schema = LAKE_TABLES[WELL_DATA_TABLE].schema
    start = datetime(2024, 3, 1)
    with tempfile.TemporaryDirectory() as root, mock.patch.object(
            lake_rules, "compaction_tier", lake_rules.compaction_tier if tiered else (lambda key: 0)):
        lake = LocalLake(Path(root))
        rewritten, started = 0, time.perf_counter()
        for i in range(batches):
            times = [start + timedelta(seconds=rows_per_batch * i + j) for j in range(rows_per_batch)]
            rows = pa.table({"well_id": ["WELL-00001"] * rows_per_batch, "event_time": times}).cast(
                pa.schema([schema.field("well_id"), schema.field("event_time")]))
            full = pa.table({f.name: rows[f.name] if f.name in rows.column_names else pa.nulls(rows_per_batch, f.type)
                             for f in schema}, schema=schema)
            lake.write(WELL_DATA_TABLE, f"shard@{i:06d}", full)
            if i % every == every - 1:
                rewritten += lake.compact(WELL_DATA_TABLE, lambda key: True).rows_rewritten
        elapsed = time.perf_counter() - started
        files = len(lake.files(WELL_DATA_TABLE))
    landed = batches * rows_per_batch
    return {"plan": "tiered" if tiered else "former (re-merge everything)", "rows_landed": landed,
            "rows_rewritten": rewritten, "rewritten_per_landed_row": rewritten / landed,
            "live_files": files, "seconds": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--compaction-batches", type=int, default=1_440,
                        help="batches landing in one partition (the former rule takes ~10 min at 1,440)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        generate(data, wells=6, hours=1.0, seed=3)
        result = {
            "machine": f"{platform.machine()}, {platform.python_version()}",
            "state": state_sizes(data),
            "batches": [batches_at_real_time(data, seconds) for seconds in (0.0, 5.0)],
            "compaction": [compaction_cost(tiered, args.compaction_batches) for tiered in (True, False)],
        }
    report(result, args.out)


if __name__ == "__main__":
    main()
