"""Power BI hand-off: the report link, the Athena ODBC settings and the local exports."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from engine import bi
from engine.errors import InputError
from tests.portal_homes import open_home


def test_report_url_must_be_https(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(bi.REPORT_URL_ENV, raising=False)
    assert bi.report_url() is None
    monkeypatch.setenv(bi.REPORT_URL_ENV, "https://app.powerbi.com/groups/me/reports/1")
    assert bi.report_url() == "https://app.powerbi.com/groups/me/reports/1"
    for bad in ("javascript:alert(1)", "http://example.com/report", "https://"):
        monkeypatch.setenv(bi.REPORT_URL_ENV, bad)
        with pytest.raises(InputError, match="https://"):
            bi.report_url()


def test_odbc_settings_on_local_name_what_comes_from_the_deployment(tmp_path: Path) -> None:
    settings = bi.odbc_settings(open_home(tmp_path))
    assert settings["Driver"] == bi.ODBC_DRIVER and settings["Catalog"] == "AwsDataCatalog"
    assert settings["AwsRegion"] == settings["Workgroup"] == bi.UNKNOWN
    dsn = bi.dsn_file(settings)
    assert dsn.startswith("[ODBC]\r\nDRIVER=Amazon Athena ODBC (x64)\r\n") and "Catalog=AwsDataCatalog" in dsn
    assert "DSN=" not in dsn
    connection = bi.connection_string(settings)
    assert connection.startswith("Driver={Amazon Athena ODBC (x64)};") and "AuthenticationType=Default Credentials;" \
        in connection


def test_exports_round_trip() -> None:
    frame = pd.DataFrame({"well_id": ["A", "B"], "month": ["2024-01", "2024-02"], "anomalies": [3, 0]})
    assert pd.read_csv(io.BytesIO(bi.export(frame, "csv")), dtype={"month": str}).equals(frame)
    assert pd.read_parquet(io.BytesIO(bi.export(frame, "parquet"))).equals(frame)
    with pytest.raises(InputError):
        bi.export(frame, "xlsx")


def test_on_aws_the_settings_name_the_deployment_and_views_poll_less_often(tmp_path: Path) -> None:
    from control_center.ui import CLOUD_MIN_REFRESH_SECONDS, refresh_seconds
    from tests.backends import aws_backend, aws_names

    names = aws_names()
    for backend in aws_backend(tmp_path):
        settings = bi.odbc_settings(backend)
        assert (settings["AwsRegion"], settings["Schema"], settings["Workgroup"]) == (
            names.region, names.glue_database, names.athena_workgroup)
        assert settings["S3OutputLocation"] == f"s3://{names.athena_results_bucket}/"
        assert refresh_seconds(5, backend) == CLOUD_MIN_REFRESH_SECONDS  # every Athena query is billed
    assert refresh_seconds(5, open_home(tmp_path / "local")) == 5
