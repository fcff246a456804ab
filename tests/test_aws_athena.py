"""Athena: the call sequence and result parsing against moto, and the SQL text on DuckDB.

moto runs no SQL. The call sequence (StartQueryExecution in the workgroup with
ExecutionParameters, polling GetQueryExecution through QUEUED and RUNNING, paging
GetQueryResults) and the parsing of Athena's text results are proven with results injected
through moto's own API (``/moto-api/static/athena/query-results``) and moto's state manager
holding the query in QUEUED/RUNNING. The SQL text is proven on DuckDB: the portal's queries are
run through the aws backend, whose Athena calls the test server answers on DuckDB over the Glue
catalog and S3 objects (``tests/backends.py``), and must answer exactly as the local backend does.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from botocore.stub import Stubber

from engine import history, insights
from engine.backend import open_backend
from engine.backends.aws import AwsNames
from engine.backends.aws._athena import PAGE_ROWS, AthenaQueryEngine, athena_literal
from engine.config import Settings
from engine.errors import BackendError, InputError
from engine.schema import WELL_DATA_TABLE
from tests.backends import ACCOUNT, REGION, MotoServer, aws_account, aws_names
from tests.test_backend_contract import START, lake_rows

COLUMNS = [("well_id", "varchar"), ("n", "bigint"), ("score", "double"), ("level", "float"), ("flag", "boolean"),
           ("at", "timestamp"), ("bucket", "timestamp with time zone"), ("day", "date"), ("payload", "varbinary"),
           ("price", "decimal(10,2)"), ("maybe", "integer")]


@pytest.fixture
def names() -> Iterator[AwsNames]:
    with aws_account() as names:
        yield names


@pytest.fixture
def slow_queries() -> Iterator[None]:
    """Queries stay in each state for two status requests, as real ones stay QUEUED and RUNNING a while."""
    MotoServer.post("/moto-api/state-manager/set-transition",
                    {"model_name": "athena::execution", "transition": {"progression": "manual", "times": 2}})
    yield
    MotoServer.post("/moto-api/state-manager/unset-transition", {"model_name": "athena::execution"})


def engine_of(names: AwsNames, sleeps: list[float], timeout: float = 60.0) -> tuple[AthenaQueryEngine, list]:
    """An engine on the moto server, and the list of (operation, parameters) it will call."""
    client = boto3.session.Session().client("athena")
    calls: list[tuple[str, dict[str, Any]]] = []
    client.meta.events.register("provide-client-params.athena",
                                lambda params, model, **_: calls.append((model.name, dict(params))))
    engine = AthenaQueryEngine(client, names.resource("athena_workgroup", "Athena workgroup"), names.glue_database,
                               timeout_seconds=timeout, sleep=sleeps.append)
    return engine, calls


def injected_row(i: int) -> list[str | None]:
    return [f"WELL-{i % 7:05d}", str(i), "1.50000245E7" if i == 0 else repr(i / 8), "0.5", "true" if i % 2 else "false",
            f"2024-03-01 23:{i // 60 % 60:02d}:{i % 60:02d}.250", "2024-03-01 23:00:00.000 UTC", "2024-03-01",
            "00 ff 10", "12.50", None if i % 3 else str(i)]


def test_a_query_runs_in_the_workgroup_with_parameters_polls_and_pages_through_typed_results(
        names: AwsNames, slow_queries: None) -> None:
    rows = 2_500
    header = [{"VarCharValue": name} for name, _ in COLUMNS]
    data = [[{} if v is None else {"VarCharValue": v} for v in injected_row(i)] for i in range(rows)]
    MotoServer.post("/moto-api/static/athena/query-results", {"account_id": ACCOUNT, "region": REGION, "results": [{
        "rows": [{"Data": header}] + [{"Data": row} for row in data],
        "column_info": [{"Name": n, "Label": n, "Type": t, "Nullable": "UNKNOWN"} for n, t in COLUMNS]}]})
    sleeps: list[float] = []
    engine, calls = engine_of(names, sleeps)
    when = datetime(2024, 3, 1, 20, 0, tzinfo=UTC) + timedelta(hours=3)
    frame = engine.query("SELECT * FROM well_data WHERE well_id = ? AND event_time >= ? AND n > ?",
                         ["WELL-00001", when, 5])

    operations = [operation for operation, _ in calls]
    assert operations[0] == "StartQueryExecution" and operations[-3:] == ["GetQueryResults"] * 3
    polls = operations[1:-3]
    assert set(polls) == {"GetQueryExecution"} and len(polls) >= 3  # QUEUED, RUNNING, then SUCCEEDED
    start = calls[0][1]
    assert start["WorkGroup"] == names.athena_workgroup
    assert start["QueryExecutionContext"] == {"Catalog": "AwsDataCatalog", "Database": names.glue_database}
    assert start["ExecutionParameters"] == ["'WELL-00001'", "TIMESTAMP '2024-03-01 23:00:00.000'", "5"]
    assert [params.get("NextToken") is None for _, params in calls[-3:]] == [True, False, False]
    assert all(params["MaxResults"] == PAGE_ROWS for _, params in calls[-3:])
    assert sleeps == [0.1 * 2 ** n for n in range(len(polls) - 1)]  # growing pauses between polls

    assert len(frame) == rows and list(frame.columns) == [name for name, _ in COLUMNS]  # the header is no row
    assert frame["n"].tolist() == list(range(rows)) and frame["n"].dtype == np.int64
    assert frame["score"].iloc[0] == 15_000_024.5 and frame["score"].iloc[9] == 9 / 8
    assert frame["level"].dtype == np.float32 and frame["flag"].tolist()[:3] == [False, True, False]
    assert frame["at"].iloc[61] == pd.Timestamp("2024-03-01 23:01:01.250", tz="UTC")
    assert frame["bucket"].iloc[0] == pd.Timestamp("2024-03-01 23:00", tz="UTC")
    assert frame["day"].iloc[0] == pd.Timestamp("2024-03-01")
    assert frame["payload"].iloc[0] == b"\x00\xff\x10" and frame["price"].iloc[0] == 12.5
    assert str(frame["maybe"].dtype) == "Int64" and frame["maybe"].isna().sum() == sum(1 for i in range(rows) if i % 3)


def test_a_query_that_runs_past_its_timeout_is_stopped(names: AwsNames) -> None:
    MotoServer.post("/moto-api/state-manager/set-transition",
                    {"model_name": "athena::execution", "transition": {"progression": "manual", "times": 10_000}})
    try:
        engine, calls = engine_of(names, [], timeout=0.0)
        with pytest.raises(BackendError, match="stopped it"):
            engine.query("SELECT 1")
    finally:
        MotoServer.post("/moto-api/state-manager/unset-transition", {"model_name": "athena::execution"})
    assert [operation for operation, _ in calls] == ["StartQueryExecution", "GetQueryExecution", "StopQueryExecution"]


@pytest.mark.parametrize(("status", "error", "message"), [
    ({"State": "FAILED", "StateChangeReason": "COLUMN_NOT_FOUND: line 1:8: Column 'x' cannot be resolved",
      "AthenaError": {"ErrorCategory": 2}}, InputError, "Column 'x' cannot be resolved"),
    ({"State": "FAILED", "StateChangeReason": "Amazon Athena experienced an internal error",
      "AthenaError": {"ErrorCategory": 1}}, BackendError, "internal error"),
    ({"State": "CANCELLED"}, BackendError, "cancelled"),
])
def test_a_query_that_does_not_succeed_says_why(status: dict[str, Any], error: type, message: str) -> None:
    client = boto3.client("athena", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q-1"})
        stub.add_response("get_query_execution", {"QueryExecution": {"QueryExecutionId": "q-1", "Status": status}})
        engine = AthenaQueryEngine(client, aws_names().resource("athena_workgroup", "Athena workgroup"),
                                   "petrostream", sleep=lambda _: None)
        with pytest.raises(error, match=message):
            engine.query("SELECT x FROM well_data")


def test_parameters_become_literals_a_value_cannot_escape() -> None:
    assert athena_literal("WELL-00001' OR '1'='1") == "'WELL-00001'' OR ''1''=''1'"
    assert athena_literal("it's") == "'it''s'"
    assert athena_literal(True) == "TRUE" and athena_literal(np.int64(7)) == "7" and athena_literal(None) == "NULL"
    assert athena_literal(0.01) == "DOUBLE '0.01'" and athena_literal(Decimal("2.5")) == "DOUBLE '2.5'"
    assert athena_literal(pd.Timestamp("2024-03-01 20:00", tz="America/Sao_Paulo")) == \
        "TIMESTAMP '2024-03-01 23:00:00.000'"
    assert athena_literal(datetime(2024, 3, 1).date()) == "DATE '2024-03-01'"
    for bad in (math.nan, math.inf, object()):
        with pytest.raises(InputError):
            athena_literal(bad)


def test_the_portal_queries_answer_the_same_on_athena_as_on_duckdb(tmp_path: Path) -> None:
    rows = [lake_rows(f"WELL-{w:05d}", START + timedelta(minutes=30 * w), 3_000, flag_every=97 + w)
            for w in range(3)]
    local = open_backend(Settings(backend="local", home=tmp_path / "local"))
    for n, table in enumerate(rows):
        local.lake.write(WELL_DATA_TABLE, f"k{n}", table)
    now = datetime.now(UTC)
    late = START + timedelta(hours=2)

    def answers(sql: Any) -> dict[str, Any]:
        live = insights.live_wells(sql, now)
        return {
            "kpis": insights.kpis(sql, now),
            "wells": history.wells(sql),
            "sensors": history.sensors_of(sql, "WELL-00001", START, late),
            "snapshots": live.snapshots,
            "recent": live.scores,
            "history": history.history(sql, "WELL-00001", START, late, tuple(history.SENSORS)).frame,
            "histogram": insights.score_histogram(sql, "none"),
            **{name: insights.executive_view(sql, name) for name in insights.EXECUTIVE_VIEWS},
        }

    expected = answers(local.sql)
    with aws_account():
        aws = open_backend(Settings(backend="aws", home=tmp_path / "aws"))
        for n, table in enumerate(rows):
            aws.lake.write(WELL_DATA_TABLE, f"k{n}", table)
        got = answers(aws.sql)
    for key, value in expected.items():
        if isinstance(value, pd.DataFrame):
            assert not value.empty or key == "histogram", key
            pd.testing.assert_frame_equal(_comparable(got[key]), _comparable(value), check_dtype=False, obj=key)
        else:
            assert got[key] == value, key


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as UTC instants and numbers as floats: the engines' pandas types differ, the values may not."""
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(out[column]):
            series = pd.to_datetime(out[column])
            out[column] = (series.dt.tz_localize(UTC) if series.dt.tz is None else series.dt.tz_convert(UTC))
            out[column] = out[column].dt.as_unit("ms")
        elif pd.api.types.is_numeric_dtype(out[column]):
            out[column] = out[column].astype("float64")
    return out.reset_index(drop=True)

