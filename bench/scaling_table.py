"""docs/SCALING.md's table: shards, consumer tasks, requests and USD/month for N wells at 1 Hz on aws.

Run: ``.venv/bin/python bench/scaling_table.py [bench/aws_scale.json]`` (the output of
``bench/bench_aws_scale.py``); prints the Markdown that docs/SCALING.md embeds between its
``scaling:table`` markers (a test keeps them equal).

Nothing here is a free-standing guess; each input comes from one place:

* measured by the bench (the JSON): bytes per stream record, the consumer's rows per CPU second,
  and the aws backend's ``min_record_seconds``, ``housekeeping_seconds`` and lease time;
* measured at demo load (``deploy/measured_calls.json``): the S3 requests of one batch, compaction
  and housekeeping included (its ``s3_by_key`` counts one consumer-state PUT per batch), apart
  from the model-pointer GETs, which each task makes every ``ConsumerOptions.model_poll_seconds``;
* the code: Kinesis's per-shard write limits and headroom (``engine/backends/aws/_kinesis.py``);
  per batch one DynamoDB checkpoint and one fence read (the lease); per lease time / 3 each task
  renews its shards' leases, writes its heartbeat and scans leases and heartbeats;
* infra/variables.tf defaults: batch seconds (a batch every batch seconds + record seconds), task
  size, CPU target, the on-demand base;
* deploy/cost_model.json: every price, the hours in a month and Firehose's billing increment.

A shard is consumed by one task at a time, so the shard count is the larger of what the stream's
writes need and what the consumers' CPU needs. Not in the table: the producer (at scale, whatever
feeds the wells), S3 storage, Athena, logs, KMS and ECR, which grow with data kept and queries
run, not with wells (docs/COST.md).
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from deploy.cost import MEASURED_FILE, S3_FREE, S3_PUT_TIER, load_model  # noqa: E402
from engine.backends.aws._kinesis import SHARD_BYTES_PER_SECOND, SHARD_RECORDS_PER_SECOND, WRITE_HEADROOM  # noqa: E402
from engine.consumer import ConsumerOptions  # noqa: E402

DEFAULT_INPUT = REPO / "bench" / "aws_scale.json"
WELLS = (6, 20, 200, 2_000)
#: DynamoDB reads a scan in 4 KB units; a lease or heartbeat item stays under 1 KB
#: (tests/test_aws_many_wells.py), so this bounds a scan's read units from above.
ITEMS_PER_READ_UNIT = 4
#: Kinesis bills a record's PUT in 25 KB payload units (cost_model.json: kinesis_put_payload_units_per_million).
PUT_PAYLOAD_UNIT_BYTES = 25 * 1024


def tf_default(name: str) -> float:
    """A number variable's default in infra/variables.tf."""
    text = (REPO / "infra" / "variables.tf").read_text(encoding="utf-8")
    match = re.search(rf'variable "{name}" \{{.*?default\s*=\s*([0-9.]+)', text, re.S)
    assert match, f"no numeric default for {name} in infra/variables.tf"
    return float(match.group(1))


def s3_per_batch() -> tuple[float, float]:
    """PUT/LIST and GET requests per batch at demo load, without the per-task model-pointer GETs."""
    by_key = json.loads(MEASURED_FILE.read_text(encoding="utf-8"))["s3_by_key"]
    batches = sum(n for key, n in by_key.items() if key.startswith("PutObject _consumer-state"))
    puts = sum(n for key, n in by_key.items() if key.split()[0] in S3_PUT_TIER)
    gets = sum(n for key, n in by_key.items() if key.split()[0] not in S3_PUT_TIER | S3_FREE
               and not key.endswith("ACTIVE.json"))
    return puts / batches, gets / batches


def scenario(wells: int, measured: dict[str, Any]) -> dict[str, Any]:
    model = load_model()
    price = {name: p["value"] for name, p in model["prices"].items()}
    hours = model["hours_per_month"]
    month = hours * 3600
    design = measured["aws_backend"]
    record_bytes, record_seconds = measured["record_bytes"], design["min_record_seconds"]
    limits = capacity(measured)
    for_writes = math.ceil(wells / min(limits["a shard's records"], limits["a shard's bytes"]))
    tasks = max(1, math.ceil(wells / limits["a consumer task's CPU"]))
    shards = max(for_writes, tasks)
    # A batch closes batch seconds after its first record; the next opens with the producer's next
    # window (every well's records are sent at once): at demo load a batch every 20 s, as measured.
    batches = shards * month / (tf_default("consumer_batch_seconds") + record_seconds)
    balances = tasks * month / (design["lease_seconds"] / 3)
    put_per_batch, get_per_batch = s3_per_batch()
    puts = batches * put_per_batch
    gets = batches * get_per_batch + tasks * month / ConsumerOptions().model_poll_seconds
    dynamo_writes = batches + balances * (1 + shards / tasks)  # checkpoints; heartbeats and lease renewals
    dynamo_reads = batches + balances * (math.ceil(shards / ITEMS_PER_READ_UNIT)
                                         + math.ceil(tasks / ITEMS_PER_READ_UNIT))  # fences; two scans
    records = wells / record_seconds * month
    on_demand = min(tasks, int(tf_default("fargate_on_demand_base")))
    task_vcpu, task_gb = tf_default("consumer_cpu") / 1024, tf_default("consumer_memory") / 1024
    task_hour = task_vcpu * price["fargate_vcpu_hour"] + task_gb * price["fargate_gb_hour"]
    increment_kb = price["firehose_billing_increment_kb"]
    usd = {
        "kinesis": shards * hours * price["kinesis_shard_hour"] + records / 1e6
        * math.ceil(record_bytes / PUT_PAYLOAD_UNIT_BYTES) * price["kinesis_put_payload_units_per_million"],
        "firehose": records * increment_kb * math.ceil(record_bytes / (increment_kb * 1024)) / 1024 ** 2
        * price["firehose_ingest_per_gb"],
        "tasks": hours * (task_hour * (on_demand + (tasks - on_demand) * (1 - price["fargate_spot_discount"]))
                          + tasks * price["public_ipv4_hour"]),
        "s3": puts / 1000 * price["s3_put_per_1000"] + gets / 1000 * price["s3_get_per_1000"],
        "dynamodb": dynamo_writes / 1e6 * price["dynamodb_on_demand_write_per_million"]
        + dynamo_reads / 1e6 * price["dynamodb_on_demand_read_per_million"],
    }
    return {"wells": wells, "shards": shards, "vcpu": wells / measured["consumer_rows_per_cpu_second"], "tasks": tasks,
            "on_demand": on_demand, "s3_puts": puts, "s3_gets": gets, "dynamodb_writes": dynamo_writes,
            "usd": usd, "usd_total": sum(usd.values())}


def capacity(measured: dict[str, Any]) -> dict[str, float]:
    """Wells at 1 Hz one unit carries: a shard by records, a shard by bytes, a consumer task by CPU."""
    record_seconds = measured["aws_backend"]["min_record_seconds"]
    per_task = tf_default("consumer_cpu") / 1024 * tf_default("consumer_cpu_target_percent") / 100
    return {"a shard's records": SHARD_RECORDS_PER_SECOND * WRITE_HEADROOM * record_seconds,
            "a shard's bytes": SHARD_BYTES_PER_SECOND * WRITE_HEADROOM * record_seconds / measured["record_bytes"],
            "a consumer task's CPU": per_task * measured["consumer_rows_per_cpu_second"]}


def render(measured: dict[str, Any]) -> str:
    """The inputs, the table and what binds first, as Markdown."""
    puts, gets = s3_per_batch()
    limits = capacity(measured)
    first = min(limits, key=limits.__getitem__)
    lines = [
        f"Inputs: {measured['record_bytes']:,.0f} B per record of {measured['aws_backend']['min_record_seconds']:g} s "
        f"({measured['record_bytes'] / measured['aws_backend']['min_record_seconds']:,.0f} B per observation); "
        f"{measured['consumer_rows_per_cpu_second']:,.0f} consumer rows per CPU second; "
        f"{puts:.2f} S3 PUT/LIST and {gets:.2f} GET per batch.",
        "",
        "| wells at 1 Hz | shards | consumer vCPU | consumer tasks | S3 PUT+LIST / month | S3 GET / month "
        "| DynamoDB writes / month | Kinesis | Firehose | Fargate + IPv4 | S3 requests "
        "| DynamoDB | USD/month |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for wells in WELLS:
        r = scenario(wells, measured)
        usd = r["usd"]
        spot_tasks = r["tasks"] - r["on_demand"]
        spot = f" ({r['on_demand']} on-demand, {spot_tasks} Spot)" if spot_tasks else ""
        lines.append(
            f"| {wells:,} | {r['shards']} | {r['vcpu']:.2f} | {r['tasks']}{spot} | {r['s3_puts'] / 1e6:.2f} M "
            f"| {r['s3_gets'] / 1e6:.2f} M | {r['dynamodb_writes'] / 1e6:.2f} M | {usd['kinesis']:,.2f} "
            f"| {usd['firehose']:,.2f} | {usd['tasks']:,.2f} | {usd['s3']:,.2f} | {usd['dynamodb']:,.2f} "
            f"| **{r['usd_total']:,.2f}** |")
    lines += ["", "Wells at 1 Hz one unit carries: " + "; ".join(
        f"{name} {wells:,.0f}" for name, wells in limits.items()) + f". First to bind: {first}."]
    return "\n".join(lines)


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_INPUT
    print(render(json.loads(path.read_text(encoding="utf-8"))))


if __name__ == "__main__":
    main()
