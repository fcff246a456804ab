"""Monthly cost of a PetroStream deployment, item by item, from ``cost_model.json``.

One model feeds both docs/COST.md (its tables are rendered here and a test keeps them
equal) and the portal's cost view (``estimate(Scenario(...))``), so the numbers a user
reads in either place are the same. Prices are list prices with the date they were taken.

Usage: ``python -m deploy.cost --markdown`` prints the tables docs/COST.md embeds.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "SCENARIOS",
    "Estimate",
    "LineItem",
    "Measured",
    "MeasuredCall",
    "Scenario",
    "estimate",
    "load_measured",
    "load_model",
    "main",
    "measured_calls",
    "measured_seconds",
    "render_items",
    "render_measured",
    "render_prices",
    "render_scenarios",
]

MODEL_FILE = Path(__file__).with_name("cost_model.json")
#: API calls measured at demo load on moto (``python -m tests.metering`` writes it).
MEASURED_FILE = Path(__file__).with_name("measured_calls.json")
_SECONDS_PER_HOUR = 3600
_KB_PER_GB = 1024 * 1024
_MB_PER_TB = 1024 * 1024


@dataclass(frozen=True)
class Scenario:
    """The knobs of infra/variables.tf that move the bill; the defaults match Terraform's."""

    name: str = "Default (1 shard, 1 consumer on-demand, the rest Spot, local portal)"
    shards: int = 1
    kinesis_on_demand: bool = False
    consumers: int = 1
    spot: bool = True
    #: Tasks of each service placed on on-demand Fargate before Spot takes the rest
    #: (``fargate_on_demand_base``): a service keeps running when Spot capacity is short.
    on_demand_base: int = 1
    portal: bool = False


@dataclass(frozen=True)
class LineItem:
    """One row of the bill: what, how much of it, and its monthly cost."""

    item: str
    usage: str
    usd: float


@dataclass(frozen=True)
class Estimate:
    """Every line item of one scenario; the total is the sum of the rounded lines."""

    scenario: Scenario
    items: tuple[LineItem, ...]

    @property
    def total(self) -> float:
        return round(sum(item.usd for item in self.items), 2)


@cache
def load_model(path: Path = MODEL_FILE) -> dict[str, Any]:
    """The prices and usage assumptions (read once)."""
    return json.loads(path.read_text(encoding="utf-8"))


def _prices(model: dict[str, Any]) -> dict[str, float]:
    return {name: price["value"] for name, price in model["prices"].items()}


def _fargate(model: dict[str, Any], task: str, count: int, spot: bool) -> LineItem:
    prices, size = _prices(model), model["tasks"][task]
    hourly = size["vcpu"] * prices["fargate_vcpu_hour"] + size["memory_gb"] * prices["fargate_gb_hour"]
    if spot:
        hourly *= 1 - prices["fargate_spot_discount"]
    kind = "Spot" if spot else "on-demand"
    usage = f"{count} × {size['vcpu']:g} vCPU / {size['memory_gb']:g} GB, {kind}, 24/7"
    return LineItem(f"Fargate {task}", usage, round(count * hourly * model["hours_per_month"], 2))


def _service(model: dict[str, Any], task: str, count: int, scenario: Scenario) -> list[LineItem]:
    """A service's tasks: its on-demand base first, Spot for the rest (all on-demand without Spot)."""
    on_demand = count if not scenario.spot else min(count, scenario.on_demand_base)
    parts = [(on_demand, False), (count - on_demand, True)]
    return [_fargate(model, task, n, spot) for n, spot in parts if n > 0]


#: S3 operations billed at the PUT, COPY, POST, LIST rate (DeleteObjects is a POST); DeleteObject is
#: free; every other S3 request is billed at the GET rate.
S3_PUT_TIER = frozenset({"PutObject", "CopyObject", "ListObjectsV2", "ListObjects", "DeleteObjects",
                         "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"})
S3_FREE = frozenset({"DeleteObject", "AbortMultipartUpload"})
#: DynamoDB reads: one read unit per call (the lease table's items together are under 4 KB).
DYNAMODB_READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem"})


@dataclass(frozen=True)
class Measured:
    """Monthly request volumes projected from ``measured_calls.json`` (the default deployment at demo load)."""

    per_month: float
    calls: dict[str, dict[str, int]]
    kinesis_records: float
    firehose_billed_kb: float
    dynamodb_write_units: float

    def monthly(self, service: str, operations: Callable[[str], bool]) -> float:
        return sum(n for op, n in self.calls.get(service, {}).items() if operations(op)) * self.per_month

    @property
    def s3_put_tier(self) -> float:
        return self.monthly("s3", S3_PUT_TIER.__contains__)

    @property
    def s3_get_tier(self) -> float:
        return self.monthly("s3", lambda op: op not in S3_PUT_TIER and op not in S3_FREE)

    @property
    def dynamodb_read_units(self) -> float:
        return self.monthly("dynamodb", DYNAMODB_READS.__contains__)


@cache
def load_measured(path: Path = MEASURED_FILE, hours_per_month: float = 730) -> Measured:
    """The measured calls, scaled from the simulated seconds they took to a month."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    scale = hours_per_month * _SECONDS_PER_HOUR / raw["simulated_seconds"]
    increment = load_model()["prices"]["firehose_billing_increment_kb"]["value"]
    billed = sum(-(-int(kb) // increment) * increment * n for kb, n in raw["kinesis_record_kb"].items())
    return Measured(scale, raw["calls"], raw["kinesis_records"] * scale, billed * scale,
                    raw["dynamodb_write_units"] * scale)


def _stream_items(model: dict[str, Any], scenario: Scenario, measured: Measured) -> list[LineItem]:
    prices, load, hours = _prices(model), model["demo_load"], model["hours_per_month"]
    records = measured.kinesis_records
    data_gb = measured.firehose_billed_kb / _KB_PER_GB  # an upper bound of the bytes written
    if scenario.kinesis_on_demand:
        usd = (hours * prices["kinesis_on_demand_stream_hour"] + data_gb * prices["kinesis_on_demand_ingest_per_gb"]
               + data_gb * load["stream_readers"] * prices["kinesis_on_demand_retrieval_per_gb"])
        stream = [LineItem("Kinesis Data Streams (on-demand)",
                           f"{hours} stream-hours, {data_gb:.1f} GB in, read by {load['stream_readers']}",
                           round(usd, 2))]
    else:
        stream = [
            LineItem("Kinesis Data Streams shards",
                     f"{scenario.shards} shard{'s' if scenario.shards > 1 else ''} × {hours} h",
                     round(scenario.shards * hours * prices["kinesis_shard_hour"], 2)),
            LineItem("Kinesis PUT payload units", f"{records / 1e6:.1f} M records (measured)",
                     round(records / 1e6 * prices["kinesis_put_payload_units_per_million"], 2)),
        ]
    billed_gb = measured.firehose_billed_kb / _KB_PER_GB
    firehose = LineItem("Firehose to the raw bucket",
                        f"{billed_gb:.1f} GB billed ({records / 1e6:.1f} M records in "
                        f"{prices['firehose_billing_increment_kb']} KB increments, measured)",
                        round(billed_gb * prices["firehose_ingest_per_gb"], 2))
    return [*stream, firehose]


def _storage_and_query_items(model: dict[str, Any], measured: Measured) -> list[LineItem]:
    prices, load = _prices(model), model["demo_load"]
    scanned_tb = load["athena_queries"] * load["athena_mb_per_query"] / _MB_PER_TB
    kms_requests = max(0, load["kms_requests"] - prices["kms_free_requests"])
    puts, gets = measured.s3_put_tier, measured.s3_get_tier
    writes, reads = measured.dynamodb_write_units / 1e6, measured.dynamodb_read_units / 1e6
    return [
        LineItem("S3 storage (lake, raw copy, models, logs)", f"{load['s3_stored_gb']} GB Standard",
                 round(load["s3_stored_gb"] * prices["s3_standard_gb_month"], 2)),
        LineItem("S3 requests", f"{puts:,.0f} PUT/LIST, {gets:,.0f} GET (measured)",
                 round(puts / 1000 * prices["s3_put_per_1000"] + gets / 1000 * prices["s3_get_per_1000"], 2)),
        LineItem("Athena", f"{load['athena_queries']:,} queries × {load['athena_mb_per_query']} MB minimum",
                 round(scanned_tb * prices["athena_per_tb_scanned"], 2)),
        LineItem("DynamoDB leases (on-demand)", f"{writes:.2f} M write units, {reads:.2f} M read units (measured)",
                 round(writes * prices["dynamodb_on_demand_write_per_million"]
                       + reads * prices["dynamodb_on_demand_read_per_million"], 2)),
        LineItem("CloudWatch Logs", f"{load['log_ingest_gb']:g} GB ingested, kept 1 day",
                 round(load["log_ingest_gb"] * prices["cloudwatch_logs_ingest_per_gb"], 2)),
        LineItem("KMS", f"{load['kms_keys']} keys (data, model signing), {load['kms_requests']:,} requests "
                        f"({prices['kms_free_requests']:,} free)",
                 round(load["kms_keys"] * prices["kms_key_month"]
                       + kms_requests / 10000 * prices["kms_per_10000_requests"], 2)),
        LineItem("ECR image storage", f"{load['ecr_stored_gb']:g} GB",
                 round(load["ecr_stored_gb"] * prices["ecr_gb_month"], 2)),
        LineItem("Glue Data Catalog", "under 1 M objects and requests (free tier)", 0.0),
        LineItem("AWS Budgets", "2 budgets without actions", 0.0),
        LineItem("VPC, subnets, gateway endpoints, security groups", "no NAT gateway", 0.0),
    ]


def estimate(scenario: Scenario | None = None, model: dict[str, Any] | None = None) -> Estimate:
    """The monthly bill of ``scenario`` (default: the default deployment) running 24/7 at demo load."""
    scenario = scenario or Scenario()
    model = model or load_model()
    measured = load_measured(hours_per_month=model["hours_per_month"])
    prices, hours = _prices(model), model["hours_per_month"]
    # The producer is a one-off task started on Spot (project_up.sh, the Replay page): it resumes.
    tasks = [*_service(model, "consumer", scenario.consumers, scenario), _fargate(model, "producer", 1, scenario.spot)]
    addresses = scenario.consumers + 1
    if scenario.portal:
        tasks += _service(model, "portal", 1, scenario)
        addresses += 1 + 2  # the portal task and the load balancer's node in each of two zones
    items = [*_stream_items(model, scenario, measured), *tasks,
             LineItem("Public IPv4 addresses", f"{addresses} addresses × {hours} h",
                      round(addresses * hours * prices["public_ipv4_hour"], 2))]
    if scenario.portal:
        lcu = model["demo_load"]["alb_lcu"]
        items.append(LineItem("Application Load Balancer", f"{hours} h + {lcu:g} LCU",
                              round(hours * (prices["alb_hour"] + lcu * prices["alb_lcu_hour"]), 2)))
    items += _storage_and_query_items(model, measured)
    return Estimate(scenario, tuple(items))


_DEFAULT = Scenario()
#: The variations docs/COST.md compares with the default deployment.
SCENARIOS: tuple[Scenario, ...] = (
    _DEFAULT,
    replace(_DEFAULT, name="2 shards, 2 consumers", shards=2, consumers=2),
    replace(_DEFAULT, name="4 shards, 4 consumers", shards=4, consumers=4),
    replace(_DEFAULT, name="Default on on-demand Fargate (no Spot)", spot=False),
    replace(_DEFAULT, name="Default all on Spot (no on-demand base: nothing runs when Spot is short)",
            on_demand_base=0),
    replace(_DEFAULT, name="Default with an on-demand Kinesis stream", kinesis_on_demand=True),
    replace(_DEFAULT, name="Default plus hosted portal (ALB, enable_portal)", portal=True),
)


def render_items(result: Estimate) -> str:
    """The item-by-item Markdown table of one estimate."""
    lines = ["| Item | Usage assumed per month | USD/month |", "|---|---|---:|"]
    lines += [f"| {item.item} | {item.usage} | {item.usd:.2f} |" for item in result.items]
    lines.append(f"| **Total** | | **{result.total:.2f}** |")
    return "\n".join(lines)


@dataclass(frozen=True)
class MeasuredCall:
    """One operation's count at demo load, projected to a month, and how AWS bills it."""

    service: str
    operation: str
    calls: int
    per_month: float
    billed_as: str


def measured_calls(measured: Measured | None = None) -> list[MeasuredCall]:
    """Every counted operation, by service and operation (the portal's cost view and docs/COST.md show them)."""
    measured = measured or load_measured()
    return [MeasuredCall(service, operation, count, count * measured.per_month, _billed_as(service, operation))
            for service, operations in sorted(measured.calls.items())
            for operation, count in sorted(operations.items())]


def measured_seconds(measured: Measured | None = None) -> int:
    """The simulated seconds the calls were counted over."""
    measured = measured or load_measured()
    return round(load_model()["hours_per_month"] * _SECONDS_PER_HOUR / measured.per_month)


def render_measured(measured: Measured | None = None) -> str:
    """The Markdown table of the API calls counted at demo load and what a month of them is."""
    lines = [f"| Service | Operation | Calls in {measured_seconds(measured)} s | Per month | Billed as |",
             "|---|---|---:|---:|---|"]
    lines += [f"| {c.service} | {c.operation} | {c.calls:,} | {c.per_month:,.0f} | {c.billed_as} |"
              for c in measured_calls(measured)]
    return "\n".join(lines)


def _billed_as(service: str, operation: str) -> str:
    if service == "s3":
        return "free (DELETE)" if operation in S3_FREE else "PUT/LIST" if operation in S3_PUT_TIER else "GET"
    if service == "dynamodb":
        return "read units" if operation in DYNAMODB_READS else "write units"
    if service == "kinesis":
        return "PUT payload units, Firehose records" if operation.startswith("PutRecord") else "free (shard-hours)"
    return "free"


def render_prices(model: dict[str, Any] | None = None) -> str:
    """The Markdown table of the unit prices the estimate assumes."""
    model = model or load_model()
    lines = [f"| Service | Price ({model['currency']}) | Unit |", "|---|---:|---|"]
    lines += [f"| {price['service']} | {price['value']:g} | {price['unit']} |" for price in model["prices"].values()]
    return "\n".join(lines)


def render_scenarios(scenarios: tuple[Scenario, ...] = SCENARIOS) -> str:
    """The Markdown table comparing scenarios' totals."""
    lines = ["| Scenario | USD/month |", "|---|---:|"]
    lines += [f"| {scenario.name} | {estimate(scenario).total:.2f} |" for scenario in scenarios]
    lines.append("| After `project_down.sh` (nothing left) | 0.00 |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the tables for docs/COST.md, or one scenario's items."""
    parser = argparse.ArgumentParser(prog="python -m deploy.cost", description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="the tables docs/COST.md embeds")
    parser.add_argument("--shards", type=int, default=_DEFAULT.shards)
    parser.add_argument("--consumers", type=int, default=_DEFAULT.consumers)
    parser.add_argument("--on-demand-fargate", action="store_true")
    parser.add_argument("--on-demand-base", type=int, default=_DEFAULT.on_demand_base)
    parser.add_argument("--on-demand-kinesis", action="store_true")
    parser.add_argument("--portal", action="store_true")
    args = parser.parse_args(argv)
    if args.markdown:
        print(render_items(estimate()), render_measured(), render_prices(), render_scenarios(), sep="\n\n")
        return 0
    scenario = Scenario(name="custom", shards=args.shards, consumers=args.consumers, spot=not args.on_demand_fargate,
                        on_demand_base=args.on_demand_base, kinesis_on_demand=args.on_demand_kinesis,
                        portal=args.portal)
    print(render_items(estimate(scenario)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
