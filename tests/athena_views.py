"""Athena views in the moto emulation, stored in Glue the way Athena stores them.

Athena runs ``CREATE [OR REPLACE] VIEW name AS SELECT ...`` by checking the SELECT, then
writing a Glue table of type ``VIRTUAL_VIEW`` whose ``ViewOriginalText`` is
``/* Presto View: <base64 JSON> */`` (the JSON holds ``originalSql``, catalog, schema and
columns). Later queries of the database see the view by name; Power BI's Athena connector
lists it next to the tables. tests/backends.py calls :func:`parse` and :func:`store` when a
query is a view DDL, and :func:`register` when it builds the catalog for a query.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import duckdb

from engine.backends.aws._glue import view_sql
from engine.backends.local._query import to_duckdb
from engine.errors import InputError

_DDL = re.compile(r"^\s*CREATE\s+(OR\s+REPLACE\s+)?VIEW\s+\"?(\w+)\"?\s+AS\s+(.*?);?\s*$", re.I | re.S)
_ENCODED = re.compile(r"^/\* Presto View: (\S+) \*/$")
VIEW_TYPE = "VIRTUAL_VIEW"


def parse(query: str) -> tuple[str, str, bool] | None:
    """(name, SELECT, replace?) of a view DDL; None for any other statement."""
    match = _DDL.match(query)
    return (match.group(2).lower(), match.group(3), bool(match.group(1))) if match else None


def store(glue: Any, database: str, name: str, select: str, replace: bool,
          columns: list[tuple[str, str]]) -> None:
    """Write the view into the Glue catalog as Athena does (refusing an existing one without OR REPLACE)."""
    view = {"originalSql": select, "catalog": "awsdatacatalog", "schema": database,
            "columns": [{"name": n, "type": t} for n, t in columns]}
    table = {"Name": name, "TableType": VIEW_TYPE, "Parameters": {"presto_view": "true", "comment": "Presto View"},
             "ViewOriginalText": f"/* Presto View: {base64.b64encode(json.dumps(view).encode()).decode()} */",
             "ViewExpandedText": "/* Presto View */",
             "StorageDescriptor": {"Columns": [{"Name": n, "Type": t} for n, t in columns]}}
    existing = {t["Name"] for t in glue.get_tables(DatabaseName=database)["TableList"]}
    if name in existing and not replace:
        raise duckdb.CatalogException(f"line 1:1: View '{database}.{name}' already exists")
    if name in existing:
        glue.update_table(DatabaseName=database, TableInput=table)
    else:
        glue.create_table(DatabaseName=database, TableInput=table)


def is_view(table: dict[str, Any]) -> bool:
    return table.get("TableType") == VIEW_TYPE


def register(connection: duckdb.DuckDBPyConnection, tables: list[dict[str, Any]]) -> None:
    """Make every view of the catalog queryable on ``connection`` (after its tables are registered)."""
    for table in tables:
        if not is_view(table):
            continue
        definition = view_sql(table)
        if definition is None:
            raise ValueError(f"view {table['Name']} is not stored as Athena stores views")
        connection.execute(f'CREATE VIEW "{table["Name"]}" AS {to_duckdb(definition)}')
        # Athena refuses a view whose stored columns no longer match what its query returns.
        columns = [row[0] for row in connection.execute(f'DESCRIBE "{table["Name"]}"').fetchall()]
        if columns != [c["Name"] for c in table["StorageDescriptor"]["Columns"]]:
            raise InputError(f"view {table['Name']} is stale: its query returns {columns}")
