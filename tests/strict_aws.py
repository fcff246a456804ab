"""A moto as strict as AWS: the service limits moto does not enforce, enforced with AWS's error.

Installed into the test process's moto server by :mod:`tests.backends` (so every aws test
runs under it). A limit breached fails the call as AWS would, so the engine's handling of it
is what the test sees:

* **Kinesis record size.** A record's data plus partition key may not exceed 1 MiB in
  PutRecord (moto checks PutRecords only): ``ValidationException``.
* **Kinesis reads.** Each shard serves at most five GetRecords calls per second, shared by
  every reader; the sixth within a second fails with ``ProvisionedThroughputExceededException``.
* **Athena's per-query cutoff.** A workgroup's ``BytesScannedCutoffPerQuery`` cancels a query
  that would scan more: the estimate is the bytes of the objects under every partition the
  query touches (partitions its WHERE clauses on partition keys exclude are not read, as
  Athena prunes them). The query ends ``CANCELLED`` with Athena's reason.
* **DynamoDB's 400 KB items** moto enforces itself (``ValidationException``; it counts a
  binary attribute by its base64 text, so it refuses binary items a little before AWS does);
  tests/test_strict_aws.py proves it stays so.
"""

from __future__ import annotations

import collections
import functools
import threading
import time
from base64 import b64decode
from collections.abc import Sequence
from typing import Any

import duckdb
import sqlglot
from moto.core.exceptions import JsonRESTError
from moto.kinesis.models import KinesisBackend
from moto.kinesis.utils import decompose_shard_iterator
from sqlglot import exp

from engine.backends.aws._glue import SYMLINK_INPUT_FORMAT
from engine.backends.local._query import to_duckdb
from tests import athena_views

MAX_RECORD_BYTES = 1024 * 1024
READS_PER_SHARD_PER_SECOND = 5
#: What Athena says when the workgroup's per-query data limit cancels a query.
CUTOFF_REASON = "Query cancelled! : Bytes scanned limit was exceeded"

_reads: dict[tuple[str, str], collections.deque[float]] = collections.defaultdict(collections.deque)
#: The clock of the read window (a test may freeze it: the server runs in the test's process).
clock = time.monotonic
#: GetRecords calls served per stream since the process started (tests compare before and after).
get_records_calls: collections.Counter[str] = collections.Counter()
_reads_lock = threading.Lock()


def install() -> None:
    """Patch moto's Kinesis backend (once per process, like the server)."""
    original_get, original_put = KinesisBackend.get_records, KinesisBackend.put_record

    def get_records(self: KinesisBackend, stream_arn: str | None, shard_iterator: str, limit: int | None) -> Any:
        stream_name, shard_id, _ = decompose_shard_iterator(shard_iterator)
        _count_read(stream_name, shard_id, self.account_id)
        return original_get(self, stream_arn, shard_iterator, limit)

    def put_record(self: KinesisBackend, stream_arn: str, stream_name: str, partition_key: str,
                   explicit_hash_key: str, data: str) -> Any:
        size = len(b64decode(data)) + len(partition_key.encode("utf-8"))
        if size > MAX_RECORD_BYTES:
            raise JsonRESTError("ValidationException", "1 validation error detected: Value at 'data' failed to "
                                f"satisfy constraint: Member must have length less than or equal to {MAX_RECORD_BYTES}")
        return original_put(self, stream_arn, stream_name, partition_key, explicit_hash_key, data)

    KinesisBackend.get_records = get_records
    KinesisBackend.put_record = put_record


def reset() -> None:
    """Forget every shard's recent reads (with the server's reset between tests)."""
    with _reads_lock:
        _reads.clear()


def _count_read(stream_name: str, shard_id: str, account: str) -> None:
    now = clock()
    with _reads_lock:
        recent = _reads[(stream_name, shard_id)]
        while recent and now - recent[0] >= 1.0:
            recent.popleft()
        if len(recent) >= READS_PER_SHARD_PER_SECOND:
            raise JsonRESTError("ProvisionedThroughputExceededException",
                                f"Rate exceeded for shard {shard_id} in stream {stream_name} under account {account}.")
        recent.append(now)
        get_records_calls[stream_name] += 1


# -- Athena: the bytes a query would scan ------------------------------------------------
Partition = tuple[dict[str, str], int]  # partition key values, bytes of its objects


def scan_estimate(query: str, catalog: dict[str, list[Partition]], parameters: Sequence[str] = ()) -> int:
    """Bytes Athena would read for ``query``: the objects of every partition it does not prune.

    ``parameters`` are the execution parameters (SQL literals): Athena plans with their values, so
    ``"date" BETWEEN ? AND ?`` prunes like the same condition written with literals.
    """
    try:
        tree = sqlglot.parse_one(_bind(query, parameters), read="trino")
    except sqlglot.errors.ParseError:
        return 0  # Athena refuses it before reading anything
    filters = [condition for where in tree.find_all(exp.Where) for condition in _conjuncts(where.this)]
    total = 0
    for name in {table.name for table in tree.find_all(exp.Table)} & set(catalog):
        for values, size in catalog[name]:
            if all(_may_hold(condition, values) for condition in filters):
                total += size
    return total


def _bind(query: str, parameters: Sequence[str]) -> str:
    """``query`` with each ``?`` replaced by its execution parameter, in order."""
    placeholders = [t for t in sqlglot.Dialect.get_or_raise("trino").tokenize(query)
                    if t.token_type == sqlglot.TokenType.PLACEHOLDER]
    for token, literal in reversed(list(zip(placeholders, parameters, strict=False))):
        query = query[:token.start] + literal + query[token.end + 1:]
    return query


def _conjuncts(condition: exp.Expression) -> list[exp.Expression]:
    if isinstance(condition, exp.And):
        return _conjuncts(condition.left) + _conjuncts(condition.right)
    return [condition]


def _may_hold(condition: exp.Expression, values: dict[str, str]) -> bool:
    """False only for a condition on partition keys alone that this partition's values fail."""
    columns = {column.name for column in condition.find_all(exp.Column)}
    if not columns or not columns <= set(values) or condition.find(exp.Subquery, exp.Select):
        return True
    bound = condition.copy().transform(
        lambda node: exp.Literal.string(values[node.name]) if isinstance(node, exp.Column) else node)
    return _may_be_true(bound.sql(dialect="trino"))


@functools.lru_cache(maxsize=65_536)
def _may_be_true(constant: str) -> bool:
    """A condition on literals only, evaluated once (every query repeats it for each partition)."""
    try:
        with duckdb.connect() as connection:
            result = connection.execute(to_duckdb("SELECT " + constant)).fetchone()
    except duckdb.Error:
        return True
    return bool(result and result[0] is not False)


def workgroup_cutoff(configuration: dict[str, Any] | None) -> int | None:
    """The workgroup's per-query scan limit in bytes, if it sets one."""
    cutoff = (configuration or {}).get("BytesScannedCutoffPerQuery")
    return int(cutoff) if cutoff else None


def symlink_targets(s3: Any, bucket: str, key: str) -> list[tuple[str, str]]:
    """(bucket, key) of each file a symlink manifest lists, one ``s3://bucket/key`` a line, as
    ``SymlinkTextInputFormat`` reads them."""
    lines = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().split()
    return [(path.split("/", 1)[0], path.split("/", 1)[1]) for path in (line.removeprefix("s3://") for line in lines)]


def catalog_sizes(glue: Any, s3: Any, database: str) -> dict[str, list[Partition]]:
    """Each Glue table's partitions with the bytes of the objects Athena would read under them."""
    catalog: dict[str, list[Partition]] = {}
    tables = glue.get_tables(DatabaseName=database)["TableList"]
    for table in tables:
        if athena_views.is_view(table):
            continue
        keys = [key["Name"] for key in table.get("PartitionKeys", [])]
        partitions = []
        for partition in glue.get_partitions(DatabaseName=database, TableName=table["Name"])["Partitions"]:
            bucket, _, prefix = partition["StorageDescriptor"]["Location"].removeprefix("s3://").partition("/")
            listed = [o for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
                      if not o["Key"].rsplit("/", 1)[-1].startswith(("_", "."))]
            if table["StorageDescriptor"].get("InputFormat") == SYMLINK_INPUT_FORMAT:  # the files listed
                size = sum(s3.head_object(Bucket=target_bucket, Key=target)["ContentLength"]
                           for o in listed for target_bucket, target in symlink_targets(s3, bucket, o["Key"]))
            else:
                size = sum(o["Size"] for o in listed)
            partitions.append((dict(zip(keys, partition["Values"], strict=True)), size))
        catalog[table["Name"]] = partitions
    for view in filter(athena_views.is_view, tables):  # a view reads every partition of its tables
        named = {t.name for t in sqlglot.parse_one(athena_views.view_sql(view), read="trino").find_all(exp.Table)}
        catalog[view["Name"]] = [p for name in sorted(named & set(catalog)) for p in catalog[name]]
    return catalog
