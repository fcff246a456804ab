"""docs/SCALING.md's table: shards, consumer tasks, requests and USD/month for 20, 200 and 2,000
wells at 1 Hz, from measured inputs and the list prices in deploy/cost_model.json.

Run: ``.venv/bin/python bench/scaling_table.py bench/results/aws_scale.json`` (the output of
``bench/bench_aws_scale.py``); prints the Markdown table.

Measured inputs (from the JSON): the bytes of a one-row record (a real-time replay sends one
record per well per second) and the consumer's CPU per record and row. Design inputs (from the
code): a batch every ``BATCH_SECONDS`` per shard costs 4 S3 PUTs (batch manifest, data, symlink
manifest, state) and 3 GETs (each table's batch manifest), one DynamoDB checkpoint; compaction
adds about one PUT per batch; housekeeping (once a minute per worker) a lock PUT and two LISTs
per table; leases are renewed and heartbeats written every lease time / 3.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRICES = {k: v["value"] for k, v in json.loads((REPO / "deploy" / "cost_model.json").read_text())["prices"].items()}
SECONDS_PER_MONTH = 730 * 3600
BATCH_SECONDS = 15
LEASE_SECONDS = 20
SHARD_RECORDS, SHARD_BYTES, HEADROOM = 1_000, 1024 * 1024, 0.9
TASK_VCPU, TASK_GB, CPU_TARGET = 0.25, 0.5, 0.7


def scenario(wells: int, record_bytes: float, cpu_ms_per_row: float) -> dict[str, float]:
    for_writes = max(math.ceil(wells / (SHARD_RECORDS * HEADROOM)),
                     math.ceil(wells * record_bytes / (SHARD_BYTES * HEADROOM)))
    vcpu = wells * cpu_ms_per_row / 1000
    tasks = max(1, math.ceil(vcpu / (TASK_VCPU * CPU_TARGET)))
    # A shard is consumed by one task at a time (its lease), so more tasks need as many shards.
    shards = max(for_writes, tasks)
    bottleneck = "consumer CPU" if tasks > for_writes else "Kinesis writes (bytes)"
    batches = shards * SECONDS_PER_MONTH / BATCH_SECONDS
    minutes = SECONDS_PER_MONTH / 60
    puts = batches * 5 + tasks * minutes * 3 * 3
    gets = batches * 3
    dynamo_writes = batches + (shards + tasks) * SECONDS_PER_MONTH / (LEASE_SECONDS / 3)
    records = wells * SECONDS_PER_MONTH
    usd = {
        "kinesis": shards * 730 * PRICES["kinesis_shard_hour"]
        + records * math.ceil(record_bytes / 25_600) * PRICES["kinesis_put_payload_units_per_million"] / 1e6,
        "firehose": records * PRICES["firehose_billing_increment_kb"] * math.ceil(record_bytes / 5120)
        / 1024 / 1024 * PRICES["firehose_ingest_per_gb"],
        "fargate_spot": tasks * 730 * (TASK_VCPU * PRICES["fargate_vcpu_hour"] + TASK_GB * PRICES["fargate_gb_hour"])
        * (1 - PRICES["fargate_spot_discount"]),
        "s3_requests": puts / 1000 * PRICES["s3_put_per_1000"] + gets / 1000 * PRICES["s3_get_per_1000"],
        "dynamodb": dynamo_writes / 1e6 * PRICES["dynamodb_on_demand_write_per_million"],
    }
    return {"wells": wells, "shards": shards, "bottleneck": bottleneck, "vcpu": vcpu, "tasks": tasks,
            "s3_puts": puts, "s3_gets": gets,
            "dynamodb_writes": dynamo_writes, **{f"usd_{k}": v for k, v in usd.items()},
            "usd_total": sum(usd.values())}


def main() -> None:
    measured = json.loads(Path(sys.argv[1]).read_text())["one_row_records"]
    record_bytes = measured["one_row_record_bytes"]
    cpu = measured["decode_ms_per_record"] + measured["dedup_and_features_ms_per_row"]
    print(f"Inputs: {record_bytes:,.0f} B per one-row record; {cpu:.2f} ms consumer CPU per row.\n")
    print("| wells at 1 Hz | shards | consumer vCPU | tasks (0.25 vCPU, 70 %) | S3 PUT+LIST / month | S3 GET / month "
          "| DynamoDB writes / month | Kinesis | Firehose | Fargate Spot | S3 requests | DynamoDB | USD/month "
          "| sets the shard count |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for wells in (20, 200, 2_000):
        r = scenario(wells, record_bytes, cpu)
        print(f"| {wells:,} | {r['shards']} | {r['vcpu']:.2f} | {r['tasks']} | {r['s3_puts'] / 1e6:.2f} M "
              f"| {r['s3_gets'] / 1e6:.2f} M | {r['dynamodb_writes'] / 1e6:.2f} M | {r['usd_kinesis']:,.0f} "
              f"| {r['usd_firehose']:,.0f} | {r['usd_fargate_spot']:,.0f} | {r['usd_s3_requests']:,.0f} "
              f"| {r['usd_dynamodb']:,.1f} | **{r['usd_total']:,.0f}** | {r['bottleneck']} |")


if __name__ == "__main__":
    main()
