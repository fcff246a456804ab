"""Athena scans stay bounded: every statement the portal issues reads only a window of date partitions.

Athena bills the bytes a query scans and reads every partition that no predicate on the partition
column excludes. (a) Each statement the portal issues (run through the engine functions the pages
call, see tests/portal_statements.py) is parsed with sqlglot, and every read of a lake table or
view must carry a prunable predicate on ``date``. (b) On a 30-day lake on the aws backend (moto),
the strict-AWS layer's estimate of each statement's scan, scaled from the test's rows to the
documented demo load, stays under the workgroup's ``BytesScannedCutoffPerQuery`` of infra/.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sqlglot
from sqlglot import exp

from engine import insights
from engine.backend import Backend, open_backend
from engine.backends.aws._athena import athena_literal
from engine.config import Settings
from engine.errors import InputError
from engine.readers import discover, read_instance
from engine.scan_window import ALARM_DAYS_ENV, DEFAULT_WELL_DATA_DAYS, scan_window
from engine.schema import ANOMALY_EVENT_VERSIONS_TABLE, LAKE_TABLES, LAKE_VIEWS, PARTITION_COLUMN, WELL_DATA_TABLE
from engine.scoring import score_observations
from tests import athena_views, strict_aws
from tests.backends import aws_account, aws_client
from tests.infra.terraform_model import Terraform
from tests.portal_homes import event_version, event_versions, observations, open_home
from tests.portal_statements import Statement, issue_all, matches, module_statements

LAKE_RELATIONS = set(LAKE_TABLES) | set(LAKE_VIEWS)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
#: The demo load docs/COST.md prices: 6 wells at one observation a second.
DEMO_ROWS_PER_DAY = 6 * 86_400


def unbounded_reads(sql: str) -> list[str]:
    """The lake tables and views ``sql`` reads without a prunable ``date`` predicate in the same SELECT.

    Prunable: a top-level conjunct of the WHERE of the SELECT that reads the table, on that table's
    ``date`` alone (no other column, no subquery): Athena evaluates it against the partition values.
    A ``date`` condition under an OR, or one that also needs a row's other columns, prunes nothing.
    """
    tree = sqlglot.parse_one(sql, read="trino")
    ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
    missing = []
    for table in tree.find_all(exp.Table):
        if table.name not in LAKE_RELATIONS or table.name in ctes:
            continue
        select = table.find_ancestor(exp.Select)
        where = select.args.get("where") if select else None
        conjuncts = list(where.this.flatten() if isinstance(where.this, exp.And) else [where.this]) if where else []
        if not any(_bounds(condition, table) for condition in conjuncts):
            missing.append(table.name)
    return missing


def _bounds(condition: exp.Expression, table: exp.Table) -> bool:
    columns = list(condition.find_all(exp.Column))
    return bool(columns) and condition.find(exp.Subquery, exp.Select) is None and all(
        c.name == PARTITION_COLUMN and c.table in ("", table.alias_or_name) for c in columns)


@pytest.fixture(scope="module")
def local_statements(tmp_path_factory: pytest.TempPathFactory) -> list[Statement]:
    backend = open_home(tmp_path_factory.mktemp("bounds"))
    start = datetime(2024, 4, 1, tzinfo=UTC)
    backend.lake.write(WELL_DATA_TABLE, "w", observations("W-1", start, 600, ingest=NOW, pressure_pa=1e7,
                                                          temperature=70.0, flagged=range(500, 560)))
    backend.lake.write(ANOMALY_EVENT_VERSIONS_TABLE, "e", event_versions(
        event_version("W-1", start + timedelta(seconds=500), timedelta(seconds=60), state="active")))
    return issue_all(backend, "W-1", f"W-1@{int((start + timedelta(seconds=500)).timestamp() * 1000)}", ddl=False)


def test_the_checker_refuses_reads_without_a_prunable_date_predicate() -> None:
    assert unbounded_reads("SELECT count(*) FROM well_data") == ["well_data"]
    assert unbounded_reads('SELECT * FROM well_data WHERE well_id = ? OR "date" = ?') == ["well_data"]
    assert unbounded_reads('SELECT * FROM well_data WHERE "date" || well_id = ?') == ["well_data"]
    assert unbounded_reads('SELECT * FROM anomaly_events WHERE "date" >= (SELECT max("date") FROM well_data)') \
        == ["anomaly_events", "well_data"]
    assert unbounded_reads('SELECT * FROM well_data w JOIN anomaly_events e ON w.well_id = e.well_id '
                           'WHERE w."date" = ?') == ["anomaly_events"]
    assert unbounded_reads('WITH t AS (SELECT * FROM well_data WHERE "date" BETWEEN ? AND ?) '
                           'SELECT * FROM t JOIN well_data w ON t.well_id = w.well_id WHERE w."date" > ?') == []


def test_every_portal_statement_reads_a_bounded_window_of_date_partitions(local_statements: list[Statement]) -> None:
    assert len(local_statements) == 12
    unbounded = {s.sql: unbounded_reads(s.sql) for s in local_statements if unbounded_reads(s.sql)}
    assert unbounded == {}


def test_every_statement_the_modules_define_was_issued(local_statements: list[Statement]) -> None:
    """A statement added to the portal's modules but not to tests/portal_statements.py fails here."""
    issued = [s.sql for s in local_statements]
    defined = module_statements()
    assert len(defined) >= 12
    assert {name for name, text in defined.items() if not any(matches(text, sql) for sql in issued)} == set()


def test_the_events_view_lets_a_date_predicate_reach_its_partitions() -> None:
    """Trino pushes a filter through a window function only on the window's partition keys."""
    for name, spec in LAKE_VIEWS.items():
        select = sqlglot.parse_one(spec.sql, read="trino")
        assert PARTITION_COLUMN in select.named_selects, name
        windows = list(select.find_all(exp.Window))
        assert windows, name
        for window in windows:
            assert PARTITION_COLUMN in {c.name for c in window.args.get("partition_by") or []}, name


def test_look_back_windows_end_at_the_newest_partition_and_are_configurable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = open_home(tmp_path)
    assert scan_window(backend.sql, WELL_DATA_TABLE, 2).last == datetime.now(UTC).date().isoformat()  # empty lake
    backend.lake.write(WELL_DATA_TABLE, "w", observations("W-1", datetime(2017, 3, 1, 23, 59, tzinfo=UTC), 120,
                                                          ingest=NOW, pressure_pa=1e7, temperature=70.0))
    window = scan_window(backend.sql, WELL_DATA_TABLE, DEFAULT_WELL_DATA_DAYS)
    assert (window.first, window.last) == ("2017-03-01", "2017-03-02")  # a replay's dates, not today's
    monkeypatch.setenv(ALARM_DAYS_ENV, "0")
    with pytest.raises(InputError, match=ALARM_DAYS_ENV):
        insights.alarms(backend.sql)


# -- (b) bytes on a 30-day lake, on the aws backend --------------------------------------------
DAYS = 30


@pytest.fixture(scope="module")
def month_on_aws(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> Iterator[tuple[Backend, str, int]]:
    """30 daily partitions of demo-like rows (a demo well's 3 h, re-dated to each day), an alarm a day."""
    rows = score_observations(read_instance(discover([demo_dir])[0].path), {}, None)
    rows = rows.set_column(rows.schema.get_field_index("ingest_time"), "ingest_time",
                           pa.array([NOW] * rows.num_rows, pa.timestamp("ms", "UTC")))
    first = pc.min(rows["event_time"]).as_py()
    with aws_account(shard_count=1) as names:
        backend = open_backend(Settings(backend="aws", home=tmp_path_factory.mktemp("month"), shard_count=1))
        base = datetime(2024, 5, 1, tzinfo=UTC)
        for day in range(DAYS):
            shift = pa.scalar(int((base + timedelta(days=day) - first).total_seconds() * 1000), pa.int64())
            moved = pc.add(rows["event_time"].cast(pa.int64()), shift).cast(pa.timestamp("ms", "UTC"))
            backend.lake.write(WELL_DATA_TABLE, f"day@{day:03d}",
                               rows.set_column(rows.schema.get_field_index("event_time"), "event_time", moved))
            backend.lake.write(ANOMALY_EVENT_VERSIONS_TABLE, f"day@{day:03d}", event_versions(
                event_version("W-A", base + timedelta(days=day, hours=1), timedelta(minutes=5), state="active")))
        yield backend, names.glue_database, rows.num_rows


def test_on_a_30_day_lake_every_statement_scans_under_the_workgroup_cutoff_at_demo_load(
        month_on_aws: tuple[Backend, str, int], local_statements: list[Statement]) -> None:
    """Each statement's scan, estimated by the strict-AWS layer from the partitions it touches, scaled
    from the test's rows per day to the demo load; then on the catalog of the same lake 60 and 90 days
    old (older daily partitions as large as its own), each must cost the same."""
    backend, database, rows_per_day = month_on_aws
    well = str(backend.sql.query("SELECT min(well_id) AS w FROM well_data WHERE \"date\" = '2024-05-30'")["w"][0])
    statements = issue_all(backend, well, f"W-A@{int(datetime(2024, 5, 30, 1, tzinfo=UTC).timestamp() * 1000)}",
                           ddl=True)
    # Both backends run the same text (plus the Power BI view DDL, which only Athena runs).
    assert {s.sql for s in local_statements} == {s.sql for s in statements if not s.sql.startswith("CREATE")}
    month = strict_aws.catalog_sizes(aws_client("glue"), aws_client("s3"), database)
    assert len(month[WELL_DATA_TABLE]) == DAYS
    older = {table: _aged(partitions, DAYS) for table, partitions in month.items()}
    oldest = {table: _aged(partitions, 2 * DAYS) for table, partitions in month.items()}
    scale = DEMO_ROWS_PER_DAY / rows_per_day
    cutoff = Terraform.load().default("athena_bytes_scanned_cutoff")
    day = max(size for _, size in month[WELL_DATA_TABLE])
    for s in statements:
        view = athena_views.parse(s.sql)  # a view's DDL scans nothing; reading the view runs its SELECT
        sql = s.sql if view is None else view[1]
        literals = [athena_literal(p) for p in s.params]
        scanned = strict_aws.scan_estimate(sql, month, literals)
        assert 0 < scanned * scale <= cutoff, (sql, scanned * scale)
        older_scan = strict_aws.scan_estimate(sql, older, literals)
        assert strict_aws.scan_estimate(sql, oldest, literals) == older_scan, sql  # age does not matter
        assert older_scan * scale <= cutoff, (sql, older_scan * scale)
        if any(matches(template, s.sql) for template in (insights._KPIS, insights._LIVE)):
            assert scanned <= DEFAULT_WELL_DATA_DAYS * day  # every live refresh reads two days
    everything = strict_aws.scan_estimate("SELECT * FROM well_data", {WELL_DATA_TABLE: _aged(month[WELL_DATA_TABLE],
                                                                                             365 - DAYS)})
    assert everything * scale > cutoff  # a year at demo load, unbounded, would be cancelled


def _aged(partitions: list[strict_aws.Partition], days: int) -> list[strict_aws.Partition]:
    """The catalog of the same table with ``days`` more daily partitions before its oldest (as large as it)."""
    if not partitions:
        return partitions
    oldest = min(date.fromisoformat(values[PARTITION_COLUMN]) for values, _ in partitions)
    size = max(size for _, size in partitions)
    return partitions + [({PARTITION_COLUMN: (oldest - timedelta(days=n)).isoformat()}, size)
                         for n in range(1, days + 1)]
