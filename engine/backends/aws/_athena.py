"""Athena as the SQL port: the same Trino text as the local backend, over the Glue tables.

A query is StartQueryExecution in the configured workgroup (which fixes the result bucket,
its encryption and the per-query scan limit), with ``?`` placeholders filled by
``ExecutionParameters``; then GetQueryExecution is polled with growing pauses until the
query ends, and GetQueryResults is paged through (at most 1,000 rows a page; the first row
of a SELECT's first page is the header). Values arrive as strings and are converted to
pandas types from the result's column metadata.

Athena takes each execution parameter as a SQL literal, so values are rendered as literals
(strings quoted with ``'`` doubled, timestamps as ``TIMESTAMP '…'``): a value can never end
its literal and become SQL.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
from botocore.exceptions import ClientError

from engine.backends.aws._errors import Resource, error_code, translated
from engine.backends.aws._glue import GlueCatalog
from engine.errors import BackendError, InputError
from engine.query import QueryEngine

if TYPE_CHECKING:  # imported where results are converted: a consumer on ECS opens this backend, never queries
    import pandas as pd

__all__ = ["AthenaQueryEngine", "athena_literal"]

PAGE_ROWS = 1_000
#: Pauses between status polls grow from the first to the last value.
POLL_FIRST_SECONDS = 0.1
POLL_MAX_SECONDS = 2.0
DEFAULT_TIMEOUT_SECONDS = 600.0
#: Athena's error category for errors in the query itself (syntax, unknown column, …).
_USER_ERROR = 2
_INTEGERS = {"tinyint", "smallint", "integer", "int", "bigint"}
_FLOATS = {"double": "float64", "float": "float32", "real": "float32", "decimal": "float64"}


def athena_literal(value: object) -> str:
    """A Python value as the Trino literal Athena expects in ``ExecutionParameters``."""
    if value is None:
        return "NULL"
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating | Decimal):
        number = float(value)
        if not math.isfinite(number):
            raise InputError(f"query parameter {value!r} is not a finite number")
        return f"DOUBLE '{number!r}'"
    if isinstance(value, datetime):  # pandas.Timestamp is one too
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return f"TIMESTAMP '{value.isoformat(sep=' ', timespec='milliseconds')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise InputError(f"query parameter {value!r} has an unsupported type {type(value).__name__}")


#: Athena's reason when the workgroup's BytesScannedCutoffPerQuery cancels a query.
SCAN_LIMIT_REASON = "Bytes scanned limit was exceeded"


class AthenaQueryEngine(QueryEngine):
    """Queries of one Glue database in one Athena workgroup."""

    def __init__(self, client: Any, workgroup: Resource, database: str,
                 timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS, sleep: Callable[[float], None] = time.sleep,
                 catalog: GlueCatalog | None = None) -> None:
        self._client = client
        self._catalog = catalog
        self._workgroup = workgroup
        self._database = database
        self._timeout = timeout_seconds
        self._sleep = sleep

    def query(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
        execution_id = self._start(sql, params)
        execution = self._wait(execution_id)
        header = execution.get("StatementType") == "DML"
        return self._results(execution_id, header)

    def newest_partition(self, table: str) -> str | None:
        if self._catalog is None:
            raise InputError("this Athena engine was opened without its Glue catalog")
        return self._catalog.newest_partition(table)

    def _start(self, sql: str, params: Sequence[object]) -> str:
        request: dict[str, Any] = {
            "QueryString": sql, "WorkGroup": self._workgroup.name,
            "QueryExecutionContext": {"Catalog": "AwsDataCatalog", "Database": self._database},
        }
        if params:
            request["ExecutionParameters"] = [athena_literal(value) for value in params]
        with translated(self._workgroup):
            try:
                return self._client.start_query_execution(**request)["QueryExecutionId"]
            except ClientError as exc:
                message = str(exc.response.get("Error", {}).get("Message", ""))
                if error_code(exc) == "InvalidRequestException" and "not found" not in message.lower():
                    raise InputError(f"query refused: {message}") from exc  # e.g. wrong parameter count
                raise

    def _wait(self, execution_id: str) -> dict[str, Any]:
        """Poll until the query ends; raise if it failed, was cancelled, or ran out of time."""
        deadline = time.monotonic() + self._timeout
        pause = POLL_FIRST_SECONDS
        while True:
            with translated(self._workgroup):
                execution = self._client.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
            status = execution["Status"]
            if status["State"] == "SUCCEEDED":
                return execution
            if status["State"] == "FAILED":
                reason = status.get("StateChangeReason", "no reason given")
                if status.get("AthenaError", {}).get("ErrorCategory") == _USER_ERROR:
                    raise InputError(f"query failed: {reason}")
                raise BackendError(f"Athena query {execution_id} failed: {reason}")
            if status["State"] == "CANCELLED":
                reason = status.get("StateChangeReason", "")
                if SCAN_LIMIT_REASON in reason:
                    raise InputError("query cancelled by Athena: it would scan more than the workgroup's per-query "
                                     "limit (athena_bytes_scanned_cutoff in infra/); ask for fewer days or wells")
                raise BackendError(f"Athena query {execution_id} was cancelled{': ' + reason if reason else ''}")
            if time.monotonic() > deadline:
                with translated(self._workgroup):
                    self._client.stop_query_execution(QueryExecutionId=execution_id)
                raise BackendError(f"Athena query {execution_id} took longer than {self._timeout:.0f} s; stopped it")
            self._sleep(pause)
            pause = min(POLL_MAX_SECONDS, pause * 2)

    def _results(self, execution_id: str, header: bool) -> pd.DataFrame:
        """Every page of the results, converted by column type."""
        import pandas as pd

        rows: list[list[str | None]] = []
        columns: list[dict[str, Any]] = []
        token = None
        with translated(self._workgroup):
            while True:
                request = {"QueryExecutionId": execution_id, "MaxResults": PAGE_ROWS}
                page = self._client.get_query_results(**request, **({"NextToken": token} if token else {}))
                result = page["ResultSet"]
                if not columns:
                    columns = result["ResultSetMetadata"]["ColumnInfo"]
                values = [[cell.get("VarCharValue") for cell in row["Data"]] for row in result["Rows"]]
                if header and token is None and values:
                    values = values[1:]
                rows += values
                token = page.get("NextToken")
                if not token:
                    break
        names = [column["Name"] for column in columns]
        data = {}
        for index, (name, column) in enumerate(zip(names, columns, strict=True)):
            data[name] = _convert([row[index] for row in rows], column["Type"].lower())
        return pd.DataFrame(data, columns=names)


def _convert(values: list[str | None], athena_type: str) -> pd.Series:
    """Athena's text rendering of a column back to a typed pandas column."""
    import pandas as pd

    base = athena_type.split("(")[0].strip()
    if base in _INTEGERS:
        series = pd.Series([None if v is None else int(v) for v in values], dtype="Int64")
        return series.astype("int64") if not series.isna().any() else series
    if base in _FLOATS:
        return pd.Series([np.nan if v is None else float(v) for v in values], dtype=_FLOATS[base])
    if base == "boolean":
        series = pd.Series([None if v is None else v == "true" for v in values], dtype="boolean")
        return series.astype(bool) if not series.isna().any() else series
    if base.startswith("timestamp"):
        return pd.to_datetime(pd.Series([None if v is None else v.removesuffix(" UTC") for v in values],
                                        dtype=object), utc=True, format="ISO8601")
    if base == "date":
        return pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601")
    if base == "varbinary":
        return pd.Series([None if v is None else bytes.fromhex(v) for v in values], dtype=object)
    return pd.Series(values, dtype=object)
