"""DuckDB over the local lake, accepting Athena/Trino SQL (translated by sqlglot)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from engine.backends.local._lake import LocalLake
from engine.errors import InputError
from engine.query import QueryEngine
from engine.schema import LAKE_TABLES, LAKE_VIEWS, PARTITION_COLUMN

if TYPE_CHECKING:  # DuckDB, pandas and sqlglot load with the first query: producers and consumers never ask
    import duckdb
    import pandas as pd


@lru_cache(maxsize=512)
def to_duckdb(sql: str) -> str:
    """Translate one Trino-dialect statement to DuckDB's dialect."""
    import sqlglot
    from sqlglot.errors import ParseError

    try:
        statements = sqlglot.transpile(sql, read="trino", write="duckdb")
    except ParseError as exc:
        raise InputError(f"SQL does not parse: {str(exc).splitlines()[0]}") from exc
    if len(statements) != 1:
        raise InputError(f"expected one SQL statement, got {len(statements)}")
    return statements[0]


class DuckDBQueryEngine(QueryEngine):
    """One in-memory DuckDB; each query gets its own cursor with temporary views over the live files.

    Opening a database costs tens of milliseconds, a cursor almost nothing, and the views must be
    rebuilt per query anyway because the manifest's file list changes with every batch.
    """

    def __init__(self, lake: LocalLake) -> None:
        self._lake = lake
        self._database: duckdb.DuckDBPyConnection | None = None  # opened by the first query: consumers never ask
        self._lock = threading.Lock()  # the portal queries from several threads; cursors are per thread

    def query(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
        import duckdb

        statement = to_duckdb(sql)
        with self._lock:
            if self._database is None:
                self._database = duckdb.connect()
            cursor = self._database.cursor()
        with cursor as connection:
            for table in LAKE_TABLES:
                self._register(connection, table)
            for view, spec in LAKE_VIEWS.items():
                connection.execute(f"CREATE TEMP VIEW {view} AS {to_duckdb(spec.sql)}")
            try:
                return connection.execute(statement, list(params)).df()
            except duckdb.Error as exc:
                raise InputError(f"query failed: {str(exc).splitlines()[0]}") from exc

    def newest_partition(self, table: str) -> str | None:
        return self._lake.newest_partition(table)

    def _register(self, connection: duckdb.DuckDBPyConnection, table: str) -> None:
        files = self._lake.files(table)
        if not files:
            empty = LAKE_TABLES[table].schema.empty_table()
            connection.register(f"_{table}_empty", empty)
            # Table and column names are the schema's constants, not user input.
            connection.execute(f"CREATE TEMP VIEW {table} AS SELECT *, CAST(NULL AS VARCHAR) AS "  # nosec B608
                               f"{PARTITION_COLUMN} FROM _{table}_empty")
            return
        listing = ", ".join("'" + path.replace("'", "''") + "'" for path in files)
        connection.execute(  # the lake manifest's own file paths, quoted as SQL literals above
            f"CREATE TEMP VIEW {table} AS SELECT * FROM read_parquet([{listing}], hive_partitioning = true, "  # nosec B608
            f"hive_types = {{'{PARTITION_COLUMN}': VARCHAR}}, union_by_name = true)"
        )
