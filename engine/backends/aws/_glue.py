"""The Glue catalog entries that make the curated Parquet queryable by Athena (and Power BI).

Terraform creates the database; the engine creates each lake table from its Arrow schema in
:mod:`engine.schema` (and updates it when the schema gains a column), and registers every
date partition it writes to. Each lake view is a Glue table of type ``VIRTUAL_VIEW`` in the
form Athena's own ``CREATE VIEW`` stores (``presto_view``: the Trino text and its column
types, base64-encoded JSON in ``ViewOriginalText``), so Athena, and tools that list the
catalog, see it as a view. Partitions already registered are remembered, so a steady
stream of batches costs no Glue calls at all.

The tables are symlink tables (``SymlinkTextInputFormat`` over the Parquet SerDe): a
partition's location is a folder under ``_symlinks/`` whose manifest lists the Parquet files to
read, so the lake swaps what queries see with one object write (see :mod:`._s3_lake`).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
from botocore.exceptions import ClientError

from engine.backends.aws._errors import Resource, error_code, is_access_denied, translated
from engine.schema import LAKE_TABLES, LAKE_VIEWS, PARTITION_COLUMN

__all__ = ["GlueCatalog", "glue_type", "view_sql"]

log = logging.getLogger("petrostream.aws")

#: Glue accepts at most this many partitions per BatchCreatePartition call.
MAX_PARTITIONS_PER_CALL = 100
#: Where the symlink manifests live in the curated bucket: ``_symlinks/<table>/date=…/``.
SYMLINKS = "_symlinks"
SYMLINK_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat"
_PARQUET_BY_MANIFEST = {
    "InputFormat": SYMLINK_INPUT_FORMAT,
    "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}
_TYPES = {
    pa.string(): "string", pa.large_string(): "string", pa.float32(): "float", pa.float64(): "double",
    pa.int8(): "tinyint", pa.int16(): "smallint", pa.int32(): "int", pa.int64(): "bigint", pa.bool_(): "boolean",
    pa.binary(): "binary", pa.large_binary(): "binary",
}


#: Hive (Glue) column types whose Trino name differs, for a view's column list.
_TRINO_TYPES = {"string": "varchar", "float": "real", "binary": "varbinary", "int": "integer"}
_VIEW_PREFIX, _VIEW_SUFFIX = "/* Presto View: ", " */"


def view_sql(table: dict[str, Any]) -> str | None:
    """The Trino text of a Glue table that is an Athena view (None for a table)."""
    text = table.get("ViewOriginalText", "")
    if table.get("TableType") != "VIRTUAL_VIEW" or not text.startswith(_VIEW_PREFIX):
        return None
    return json.loads(base64.b64decode(text[len(_VIEW_PREFIX):-len(_VIEW_SUFFIX)]))["originalSql"]


def glue_type(arrow_type: pa.DataType) -> str:
    """The Hive/Glue column type Athena reads an Arrow-written Parquet column as."""
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    try:
        return _TYPES[arrow_type]
    except KeyError:
        raise TypeError(f"no Glue type for Arrow type {arrow_type}") from None


class GlueCatalog:
    """Tables and partitions of the lake in one Glue database, pointing into one bucket."""

    def __init__(self, client: Any, database: Resource, bucket: str) -> None:
        self._client = client
        self._database = database
        self._bucket = bucket
        self._known: dict[str, set[str]] = {table: set() for table in LAKE_TABLES}
        self._lock = threading.Lock()

    def location(self, table: str, partition: str | None = None) -> str:
        """Where a table's (or partition's) symlink manifests are."""
        base = f"s3://{self._bucket}/{SYMLINKS}/{table}/"
        return base if partition is None else f"{base}{PARTITION_COLUMN}={partition}/"

    def ensure_tables(self) -> None:
        """Create each lake table that is missing; bring one whose columns changed up to date.

        Only the consumer's role may change the catalog (the producer's may not even read it);
        an identity refused here leaves that to the consumer, and a query before the consumer
        ran says the table does not exist.
        """
        with translated(self._database):
            try:
                self._ensure_tables()
            except ClientError as exc:
                if not is_access_denied(exc):
                    raise
                log.warning("not checking the lake tables in %s: %s", self._database, exc)

    def _ensure_tables(self) -> None:
        self._client.get_database(Name=self._database.name)  # missing: Terraform's to create, not ours
        for wanted in [self._table_input(table) for table in LAKE_TABLES] + [self._view_input(v) for v in LAKE_VIEWS]:
            try:
                existing = self._client.get_table(DatabaseName=self._database.name, Name=wanted["Name"])["Table"]
            except ClientError as exc:
                if error_code(exc) != "EntityNotFoundException":
                    raise
                self._create_table(wanted)
                continue
            if any(existing["StorageDescriptor"].get(part) != wanted["StorageDescriptor"].get(part)
                   for part in ("Columns", "InputFormat", "Location")) \
                    or existing.get("ViewOriginalText") != wanted.get("ViewOriginalText"):
                self._client.update_table(DatabaseName=self._database.name, TableInput=wanted)

    def add_partitions(self, table: str, values: Iterable[str]) -> None:
        """Register date partitions of a table (those already known cost nothing)."""
        with self._lock:
            new = sorted(set(values) - self._known[table])
        for start in range(0, len(new), MAX_PARTITIONS_PER_CALL):
            chunk = new[start:start + MAX_PARTITIONS_PER_CALL]
            with translated(self._database):
                response = self._client.batch_create_partition(
                    DatabaseName=self._database.name, TableName=table,
                    PartitionInputList=[self._partition_input(table, value) for value in chunk])
                failures = [e["ErrorDetail"] for e in response.get("Errors", [])
                            if e.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException"]
                if failures:
                    raise ClientError({"Error": {"Code": failures[0].get("ErrorCode", ""),
                                                 "Message": failures[0].get("ErrorMessage", "")}},
                                      "BatchCreatePartition")
            with self._lock:
                self._known[table].update(chunk)

    def newest_partition(self, table: str) -> str | None:
        """The newest date partition registered for ``table`` (Glue metadata: no Athena scan)."""
        pages = self._client.get_paginator("get_partitions").paginate(
            DatabaseName=self._database.name, TableName=table, ExcludeColumnSchema=True)
        with translated(self._database):
            return max((p["Values"][0] for page in pages for p in page["Partitions"]), default=None)

    def _create_table(self, wanted: dict[str, Any]) -> None:
        try:
            self._client.create_table(DatabaseName=self._database.name, TableInput=wanted)
        except ClientError as exc:
            if error_code(exc) != "AlreadyExistsException":  # another worker created it first
                raise

    def _table_input(self, table: str) -> dict[str, Any]:
        columns = [{"Name": f.name, "Type": glue_type(f.type)} for f in LAKE_TABLES[table].schema]
        return {
            "Name": table,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE", "parquet.compression": "ZSTD"},
            "PartitionKeys": [{"Name": PARTITION_COLUMN, "Type": "string"}],
            "StorageDescriptor": {"Columns": columns, "Location": self.location(table), **_PARQUET_BY_MANIFEST},
        }

    def _view_input(self, view: str) -> dict[str, Any]:
        spec = LAKE_VIEWS[view]
        columns = [{"Name": f.name, "Type": glue_type(f.type)} for f in spec.schema]
        definition = {"originalSql": spec.sql, "catalog": "awsdatacatalog", "schema": self._database.name,
                      "columns": [{"name": c["Name"], "type": _TRINO_TYPES.get(c["Type"], c["Type"])}
                                  for c in columns]}
        encoded = base64.b64encode(json.dumps(definition).encode()).decode()
        return {
            "Name": view,
            "TableType": "VIRTUAL_VIEW",
            "Parameters": {"presto_view": "true", "comment": "Presto View"},
            "ViewOriginalText": f"{_VIEW_PREFIX}{encoded}{_VIEW_SUFFIX}",
            "ViewExpandedText": "/* Presto View */",
            "StorageDescriptor": {"Columns": columns, "SerdeInfo": {}},
        }

    def _partition_input(self, table: str, value: str) -> dict[str, Any]:
        return {"Values": [value], "StorageDescriptor": {
            "Columns": self._table_input(table)["StorageDescriptor"]["Columns"],
            "Location": self.location(table, value), **_PARQUET_BY_MANIFEST}}
