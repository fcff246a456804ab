"""The Power BI views exist in Athena once the stack is set up: `python -m engine bi-views`
(run by project_up.sh) creates them with CREATE OR REPLACE VIEW, idempotently, and Power BI's
query of a view returns what the portal shows. Run on moto, whose Athena emulation stores views
in Glue as Athena does (tests/athena_views.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest

from engine import cli, insights
from engine.backend import open_backend
from engine.bi import create_views
from engine.config import Settings
from engine.consumer import Consumer, ConsumerOptions
from engine.errors import InputError
from engine.producer import Producer, ReplayOptions
from engine.readers import discover
from tests.backends import aws_account, aws_client, fast_kinesis_reads


def test_bi_views_are_created_in_athena_idempotently_and_read_like_the_portal(
        tmp_path: Path, demo_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    fast_kinesis_reads(monkeypatch)
    with aws_account(shard_count=1) as names:
        backend = open_backend(Settings(backend="aws", home=tmp_path, shard_count=1))
        Producer(backend, discover([demo_dir]), ReplayOptions(speed=0, max_rows=2_000)).run(threading.Event())
        Consumer(backend, ConsumerOptions(idle_exit_seconds=1.0, poll_seconds=0.01)).run(threading.Event())

        assert cli.main(["bi-views"]) == 0
        assert "well_data_monthly, well_data_yearly (created or replaced)" in capsys.readouterr().out
        assert create_views(backend) == list(insights.EXECUTIVE_VIEWS)  # again: replaced, not refused
        tables = {t["Name"]: t for t in aws_client("glue").get_tables(DatabaseName=names.glue_database)["TableList"]}
        for name in insights.EXECUTIVE_VIEWS:
            assert tables[name]["TableType"] == "VIRTUAL_VIEW"
            assert tables[name]["ViewOriginalText"].startswith("/* Presto View: ")
            through_view = backend.sql.query(f"SELECT * FROM {name} ORDER BY 2 DESC, 1")
            portal = insights.executive_view(backend.sql, name)
            assert len(through_view) > 0
            pd.testing.assert_frame_equal(through_view.reset_index(drop=True), portal.reset_index(drop=True))


def test_bi_views_need_athena(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="PETROSTREAM_BACKEND=aws"):
        create_views(open_backend(Settings(home=tmp_path)))
