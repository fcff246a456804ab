"""The bill is measured: the default deployment's AWS calls at demo load, counted on moto in
simulated real time, match deploy/measured_calls.json (which docs/COST.md is rendered from)
and price out within the target."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from deploy import cost
from deploy.api_calls import ApiCallCounter, item_bytes
from tests.backends import REGION, aws_account
from tests.metering import BATCH_SECONDS, MEASURED_SECONDS, WELLS, measure
from tests.portal_homes import open_page
from tests.simulated_time import SimulatedClock, SimulatedStop, run_together

#: How far a re-measured operation may stray from the file (thread interleaving moves a read
#: or a batch boundary by one); a change to the pipeline's call pattern moves far more.
TOLERANCE = 0.1
#: Event time the aws backend packs into one record near real time (its ``min_record_seconds``).
AWS_RECORD_SECONDS = 5.0


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return measure(tmp_path_factory.mktemp("metering"), monkeypatch)


def test_the_measured_calls_are_the_demo_load_in_real_time(measured: dict) -> None:
    kinesis, s3, dynamodb = measured["calls"]["kinesis"], measured["calls"]["s3"], measured["calls"]["dynamodb"]
    # 6 wells at 1 Hz: the producer sends one PutRecords every AWS_RECORD_SECONDS, a record per well
    # holding that many observations, each record under Firehose's 5 KB billing increment
    windows = MEASURED_SECONDS / AWS_RECORD_SECONDS
    assert kinesis["PutRecords"] == pytest.approx(windows, abs=1)
    assert measured["kinesis_records"] == pytest.approx(WELLS * windows, abs=WELLS)
    assert set(measured["kinesis_record_kb"]) <= {"1", "2", "3", "4", "5"}
    # the consumer reads its shard about once a second while a batch gathers (as the KCL does)
    assert kinesis["GetRecords"] == pytest.approx(MEASURED_SECONDS, rel=0.1)
    # a batch gathers for BATCH_SECONDS from its first record (records come every AWS_RECORD_SECONDS),
    # and each checkpoint stores one consumer-state object
    by_key = measured["s3_by_key"]
    (batches,) = [n for kind, n in by_key.items() if kind.startswith("PutObject _consumer-state/")]
    assert batches == pytest.approx(MEASURED_SECONDS / (BATCH_SECONDS + AWS_RECORD_SECONDS), abs=1)
    for kind in ("well_data", "_manifests/well_data", "_symlinks/well_data"):  # a Parquet file, published
        assert by_key[f"PutObject {kind}"] >= batches, kind
    assert "DeleteObjects" not in s3  # a billed POST: the lake deletes with (free) single DELETEs
    assert dynamodb["PutItem"] >= batches  # at least the checkpoints
    assert measured["dynamodb_write_units"] >= dynamodb["PutItem"]


def test_the_committed_measurement_is_what_the_code_does_now(measured: dict) -> None:
    """After changing how the pipeline calls AWS: `python -m tests.metering`, then re-render docs/COST.md."""
    committed = json.loads(cost.MEASURED_FILE.read_text(encoding="utf-8"))
    assert committed["simulated_seconds"] == measured["simulated_seconds"]
    assert committed["calls"].keys() == measured["calls"].keys()
    for service, operations in measured["calls"].items():
        for operation, count in operations.items():
            expected = committed["calls"][service].get(operation, 0)
            assert count == pytest.approx(expected, rel=TOLERANCE, abs=2), f"{service}.{operation}"
    for field in ("kinesis_records", "dynamodb_write_units"):
        assert measured[field] == pytest.approx(committed[field], rel=TOLERANCE, abs=2), field


def test_the_measured_bill_of_the_default_deployment_is_within_target() -> None:
    result = cost.estimate()
    assert result.total <= cost.load_model()["target_usd_per_month"], cost.render_items(result)
    requests = {item.item: item for item in result.items}
    assert "(measured)" in requests["S3 requests"].usage and requests["S3 requests"].usd > 0


def test_the_counter_counts_each_call_of_any_client_by_operation(tmp_path: Path) -> None:
    with aws_account(shard_count=1) as names:
        counter = ApiCallCounter()
        s3 = counter.attach(boto3.session.Session(region_name=REGION)).client("s3")
        s3.put_object(Bucket=names.curated_bucket, Key="a", Body=b"x")
        s3.get_object(Bucket=names.curated_bucket, Key="a")
        s3.get_object(Bucket=names.curated_bucket, Key="a")
        kinesis = counter.attach(boto3.session.Session(region_name=REGION).client("kinesis"))
        kinesis.put_records(StreamName=names.stream_name, Records=[
            {"Data": b"x" * 5000, "PartitionKey": "w1"}, {"Data": b"y", "PartitionKey": "w2"}])
    assert counter.by_service("s3") == {"GetObject": 2, "PutObject": 1}
    assert counter.by_service("kinesis") == {"PutRecords": 1}
    assert (counter.kinesis_records, dict(counter.kinesis_record_kb)) == (2, {5: 1, 1: 1})


def test_item_bytes_follow_dynamodb_sizing() -> None:
    assert item_bytes({"pk": {"S": "shard"}}) == 2 + 5
    assert item_bytes({"n": {"N": "12345"}, "b": {"B": b"\0" * 10}}) == 1 + 3 + 1 + 10
    assert item_bytes({"m": {"M": {"a": {"S": "xy"}}}}) == 1 + 3 + 1 + 1 + 2


def test_time_only_moves_when_every_loop_waits() -> None:
    clock = SimulatedClock(start=100.0, participants=2)
    seen: list[tuple[str, float]] = []

    def loop(name: str, step: float) -> None:
        stop = SimulatedStop(clock, 103.0)
        while not stop.wait(step):
            seen.append((name, clock.time()))

    run_together(clock, [lambda: loop("a", 1.0), lambda: loop("b", 1.5)])
    assert sorted(seen) == [("a", 101.0), ("a", 102.0), ("b", 101.5)]


def test_the_portal_cost_view_shows_the_projection_and_its_inputs(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("PETROSTREAM_BACKEND", "local")
    monkeypatch.setenv("PETROSTREAM_HOME", str(tmp_path))
    at = open_page("cost")
    assert not at.exception
    default = cost.estimate().total
    assert [m.value for m in at.metric] == [f"{default:.2f}", f"{default:.2f}"]
    items, calls, prices = (frame.value for frame in at.dataframe)
    assert items["USD/month"].sum() == pytest.approx(default)
    assert len(calls) == len(cost.measured_calls()) and "PutObject" in set(calls["operation"])
    assert len(prices) == len(cost.load_model()["prices"])
    at.number_input(key="cost-shards").set_value(2).run()
    assert at.metric[0].value == f"{cost.estimate(cost.Scenario(shards=2)).total:.2f}"
    assert float(at.metric[0].value) - default == pytest.approx(10.95)
