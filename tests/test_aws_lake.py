"""The S3 lake and its Glue catalog against moto: layout, partitions, and crashes at every step.

A "crash" is a write moto refuses (access denied) at a chosen object, which stops the lake
exactly there, as a killed worker would; the next attempt must leave exactly the live rows.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from moto.glue.models import GlueBackend
from moto.s3.exceptions import AccessForbidden
from moto.s3.models import S3Backend

from engine.backend import Backend, open_backend
from engine.backends.aws import AwsNames, _s3_lake
from engine.backends.aws._glue import glue_type
from engine.config import Settings
from engine.errors import BackendError
from engine.schema import ANOMALY_EVENTS_TABLE, LAKE_TABLES, LAKE_VIEWS, PARTITION_COLUMN, WELL_DATA_TABLE
from tests.backends import aws_account, aws_client
from tests.test_backend_contract import START, lake_rows


@pytest.fixture
def names() -> Iterator[AwsNames]:
    with aws_account() as names:
        yield names


@pytest.fixture
def backend(names: AwsNames, tmp_path: Path) -> Backend:
    return open_backend(Settings(backend="aws", home=tmp_path))


def objects(names: AwsNames, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in aws_client("s3").list_objects_v2(
        Bucket=names.curated_bucket, Prefix=prefix).get("Contents", []))


def stems(keys: list[str]) -> list[str]:
    """``date=…/<batch key>`` of data keys ``<table>/date=…/<batch key>-<attempt>.parquet``."""
    return sorted(key.split("/", 1)[1].rsplit("-", 1)[0] for key in keys)


def live(names: AwsNames, day: str, table: str = WELL_DATA_TABLE) -> list[str]:
    """The data keys a partition's symlink manifest lists: what Athena reads."""
    key = f"_symlinks/{table}/date={day}/manifest"
    if key not in objects(names, key):
        return []  # nothing was ever published in that partition
    manifest = aws_client("s3").get_object(Bucket=names.curated_bucket, Key=key)
    return [line.split("/", 3)[3] for line in manifest["Body"].read().decode().split()]


def count(backend: Backend) -> int:
    return int(backend.sql.query("SELECT count(*) FROM well_data").iloc[0, 0])


def refuse(monkeypatch: pytest.MonkeyPatch, method: str, when: Callable[..., bool]) -> None:
    """Make moto's S3 refuse ``method`` calls for which ``when(*args)`` holds (until the test ends)."""
    original = getattr(S3Backend, method)

    def refusing(self: S3Backend, *args: Any, **kwargs: Any) -> Any:
        if when(*args):
            raise AccessForbidden("injected crash")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(S3Backend, method, refusing)


def test_tables_and_date_partitions_are_registered_in_glue_once(
        names: AwsNames, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    glue = aws_client("glue")
    for table, spec in LAKE_TABLES.items():
        entry = glue.get_table(DatabaseName=names.glue_database, Name=table)["Table"]
        assert [(c["Name"], c["Type"]) for c in entry["StorageDescriptor"]["Columns"]] == \
            [(f.name, glue_type(f.type)) for f in spec.schema]
        assert entry["PartitionKeys"] == [{"Name": PARTITION_COLUMN, "Type": "string"}]
        assert entry["StorageDescriptor"]["Location"] == f"s3://{names.curated_bucket}/_symlinks/{table}/"
        assert entry["StorageDescriptor"]["InputFormat"] == "org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat"
    assert glue_type(LAKE_TABLES[WELL_DATA_TABLE].schema.field("event_time").type) == "timestamp"

    registrations = []
    original = GlueBackend.batch_create_partition
    monkeypatch.setattr(GlueBackend, "batch_create_partition",
                        lambda self, *args: registrations.append(args) or original(self, *args))
    backend.lake.write(WELL_DATA_TABLE, "shard@1", lake_rows("WELL-00001", START, 7200))  # 23:00 -> 01:00
    backend.lake.write(WELL_DATA_TABLE, "shard@2", lake_rows("WELL-00001", START + timedelta(hours=2), 60))
    partitions = glue.get_partitions(DatabaseName=names.glue_database, TableName=WELL_DATA_TABLE)["Partitions"]
    assert sorted((p["Values"][0], p["StorageDescriptor"]["Location"]) for p in partitions) == [
        (day, f"s3://{names.curated_bucket}/_symlinks/well_data/date={day}/") for day in ("2024-03-01", "2024-03-02")]
    assert len(registrations) == 1  # the second batch's partition was known already
    assert stems(objects(names, "well_data/")) == ["date=2024-03-01/shard@1", "date=2024-03-02/shard@1",
                                                   "date=2024-03-02/shard@2"]
    assert [stems(live(names, day)) for day in ("2024-03-01", "2024-03-02")] == [
        ["date=2024-03-01/shard@1"], ["date=2024-03-02/shard@1", "date=2024-03-02/shard@2"]]


def test_a_table_whose_schema_gained_a_column_is_brought_up_to_date(names: AwsNames, tmp_path: Path) -> None:
    glue = aws_client("glue")
    open_backend(Settings(backend="aws", home=tmp_path))
    table = glue.get_table(DatabaseName=names.glue_database, Name=WELL_DATA_TABLE)["Table"]
    older = {key: table[key] for key in ("Name", "TableType", "Parameters", "PartitionKeys", "StorageDescriptor")}
    older["StorageDescriptor"]["Columns"] = older["StorageDescriptor"]["Columns"][:-3]
    glue.update_table(DatabaseName=names.glue_database, TableInput=older)
    open_backend(Settings(backend="aws", home=tmp_path))
    columns = glue.get_table(DatabaseName=names.glue_database, Name=WELL_DATA_TABLE)["Table"]["StorageDescriptor"]
    assert [c["Name"] for c in columns["Columns"]] == LAKE_TABLES[WELL_DATA_TABLE].schema.names


def test_lake_views_are_athena_views_in_glue_and_kept_up_to_date(names: AwsNames, tmp_path: Path) -> None:
    """As Athena's CREATE VIEW stores it: VIRTUAL_VIEW, presto_view, base64 JSON of the Trino text and types."""
    glue = aws_client("glue")
    open_backend(Settings(backend="aws", home=tmp_path))
    entry = glue.get_table(DatabaseName=names.glue_database, Name=ANOMALY_EVENTS_TABLE)["Table"]
    assert entry["TableType"] == "VIRTUAL_VIEW" and entry["Parameters"]["presto_view"] == "true"
    text = entry["ViewOriginalText"]
    assert text.startswith("/* Presto View: ") and text.endswith(" */")
    definition = json.loads(base64.b64decode(text.removeprefix("/* Presto View: ").removesuffix(" */")))
    spec = LAKE_VIEWS[ANOMALY_EVENTS_TABLE]
    assert definition["originalSql"] == spec.sql and definition["schema"] == names.glue_database
    types = {column["name"]: column["type"] for column in definition["columns"]}
    assert list(types) == spec.schema.names
    assert (types["event_id"], types["start_time"], types["label"], types["revision"]) == (
        "varchar", "timestamp", "smallint", "bigint")
    glue.update_table(DatabaseName=names.glue_database, TableInput={
        "Name": ANOMALY_EVENTS_TABLE, "TableType": "VIRTUAL_VIEW", "ViewOriginalText": "/* Presto View: e30= */",
        "StorageDescriptor": entry["StorageDescriptor"]})
    open_backend(Settings(backend="aws", home=tmp_path))
    assert glue.get_table(DatabaseName=names.glue_database, Name=ANOMALY_EVENTS_TABLE)["Table"][
        "ViewOriginalText"] == text


def test_a_retry_after_a_crash_half_way_through_a_batch_leaves_only_the_retry(
        names: AwsNames, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    two_days = lake_rows("WELL-00001", START, 7200)
    refuse(monkeypatch, "put_object", lambda bucket, key, *rest: key.startswith("well_data/date=2024-03-02/shard@7-"))
    with pytest.raises(BackendError, match="injected crash"):
        backend.lake.write(WELL_DATA_TABLE, "shard@7", two_days)  # the first day is written, then the crash
    monkeypatch.undo()
    backend.lake.write(WELL_DATA_TABLE, "shard@7", two_days.slice(0, 1800))  # the retry holds the first day only
    assert stems(live(names, "2024-03-01")) == ["date=2024-03-01/shard@7"] and live(names, "2024-03-02") == []
    assert count(backend) == backend.lake.row_count(WELL_DATA_TABLE) == 1800
    (retired,) = objects(names, "_garbage/well_data/")  # the first attempt's files, deleted after the grace period
    assert stems(json.loads(aws_client("s3").get_object(Bucket=names.curated_bucket, Key=retired)["Body"].read())) \
        == ["date=2024-03-01/shard@7", "date=2024-03-02/shard@7"]


def final_batches(backend: Backend, n: int = 9) -> None:
    for i in range(n):  # one minute each
        backend.lake.write(WELL_DATA_TABLE, f"shard@{i}", lake_rows("WELL-00001", START + timedelta(minutes=i), 60))
    backend.lake.write(WELL_DATA_TABLE, "shard@99", lake_rows("WELL-00001", START + timedelta(minutes=30), 120))


def is_final(key: str) -> bool:
    return key != "shard@99"


@pytest.mark.parametrize("crash_at", ["merged data", "retiring the members"])
def test_a_compaction_cut_short_is_completed_by_the_next_one(
        names: AwsNames, backend: Backend, monkeypatch: pytest.MonkeyPatch, crash_at: str) -> None:
    final_batches(backend)
    if crash_at == "merged data":
        refuse(monkeypatch, "put_object", lambda bucket, key, *rest: "/compacted-" in key)
    else:
        refuse(monkeypatch, "delete_object", lambda bucket, key, *rest: key.startswith("_manifests/"))
    with pytest.raises(BackendError):
        backend.lake.compact(WELL_DATA_TABLE, is_final)
    monkeypatch.undo()
    report = backend.lake.compact(WELL_DATA_TABLE, is_final)
    listed = live(names, "2024-03-01")
    assert len(listed) == 2 and any("/compacted-T1-" in key for key in listed)  # one merged file + the open batch
    assert count(backend) == backend.lake.row_count(WELL_DATA_TABLE) == 9 * 60 + 120
    assert objects(names, "_locks/") == []
    if crash_at == "merged data":  # nothing was merged the first time: the second pass did all of it
        assert (report.files_before, report.files_after) == (9, 1)


def test_a_held_compaction_lock_is_respected_and_an_expired_one_taken_over(
        names: AwsNames, backend: Backend) -> None:
    final_batches(backend)
    s3 = aws_client("s3")
    lock = {"Bucket": names.curated_bucket, "Key": "_locks/well_data.json"}
    s3.put_object(**lock, Body=json.dumps({"owner": "other", "expires_at": time.time() + 60}).encode())
    assert backend.lake.compact(WELL_DATA_TABLE, is_final).files_before == 0
    assert len(live(names, "2024-03-01")) == 10
    s3.put_object(**lock, Body=json.dumps({"owner": "dead", "expires_at": time.time() - 1}).encode())
    assert backend.lake.compact(WELL_DATA_TABLE, is_final).files_before == 9
    assert len(live(names, "2024-03-01")) == 2 and objects(names, "_locks/") == []


def test_a_reader_sees_every_row_once_at_every_step_of_a_retry_and_a_compaction(
        names: AwsNames, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    final_batches(backend)
    expected = 9 * 60 + 120
    seen: list[tuple[str, int, int]] = []

    def query_after(event_name: str, **_: Any) -> None:  # a query between every two S3 calls of the lake
        counts = backend.sql.query("SELECT count(*) AS n, count(DISTINCT event_time) AS d FROM well_data")
        seen.append((event_name.rsplit(".", 1)[-1], int(counts["n"][0]), int(counts["d"][0])))

    backend.lake._s3.meta.events.register("after-call.s3", query_after)
    backend.lake.write(WELL_DATA_TABLE, "shard@99", lake_rows("WELL-00001", START + timedelta(minutes=30), 120))
    report = backend.lake.compact(WELL_DATA_TABLE, is_final)
    backend.lake._s3.meta.events.unregister("after-call.s3", query_after)
    assert report.files_before == 9 and {"PutObject", "DeleteObject"} <= {call for call, _, _ in seen}
    assert all((n, d) == (expected, expected) for _, n, d in seen), seen


def test_replaced_files_are_deleted_only_after_the_grace_period(
        names: AwsNames, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    final_batches(backend)
    backend.lake.compact(WELL_DATA_TABLE, is_final)
    assert len(objects(names, "well_data/")) == 11  # nine members (queries may still read them), merged, open
    monkeypatch.setattr(_s3_lake, "GRACE_SECONDS", 0.0)
    time.sleep(0.01)
    backend.lake.compact(WELL_DATA_TABLE, is_final)
    assert sorted(objects(names, "well_data/")) == sorted(live(names, "2024-03-01"))
    assert objects(names, "_garbage/") == [] and count(backend) == 9 * 60 + 120


def test_two_workers_publishing_to_one_partition_keep_each_others_files(names: AwsNames, tmp_path: Path) -> None:
    first, second = (open_backend(Settings(backend="aws", home=tmp_path)) for _ in range(2))
    first.lake.write(WELL_DATA_TABLE, "shard-a@1", lake_rows("WELL-00001", START, 60))
    second.lake.write(WELL_DATA_TABLE, "shard-b@1", lake_rows("WELL-00002", START, 60))
    first.lake.write(WELL_DATA_TABLE, "shard-a@2", lake_rows("WELL-00001", START + timedelta(minutes=1), 60))
    # first's cached manifest was stale: its conditional PUT was refused, it read again and kept b's file
    assert stems(live(names, "2024-03-01")) == ["date=2024-03-01/shard-a@1", "date=2024-03-01/shard-a@2",
                                                "date=2024-03-01/shard-b@1"]
    assert count(first) == 180
