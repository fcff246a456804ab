"""What Power BI needs: the report's address, the Athena ODBC settings, and exports for ``local``.

Power BI reads the lake through Amazon's Athena ODBC 2.x driver, with the settings below as a
DSN (for the Amazon Athena connector) or as a connection string (for the generic ODBC
connector). On ``aws`` the executive views are Athena views, created by :func:`create_views`
(``python -m engine bi-views``, which ``project_up.sh`` runs): Power BI lists them next to the
tables. On ``local`` there is no Athena; the executive views are exported as files.
"""

from __future__ import annotations

import io
import os
from urllib.parse import urlparse

import pandas as pd

from engine.backend import Backend
from engine.errors import InputError
from engine.insights import EXECUTIVE_VIEWS, executive_view_ddl
from engine.scan_window import bi_window

REPORT_URL_ENV = "PETROSTREAM_POWERBI_URL"
DSN_NAME = "PetroStream Athena"
ODBC_DRIVER = "Amazon Athena ODBC (x64)"
#: What the DSN says where the deployment is not known here (local backend).
UNKNOWN = "<from `terraform output` after project_up.sh>"


def report_url() -> str | None:
    """The configured Power BI report (https only), or None when none is configured."""
    raw = os.environ.get(REPORT_URL_ENV, "").strip()
    if not raw:
        return None
    parsed = urlparse(raw)
    if parsed.scheme != "https" or not parsed.netloc:
        raise InputError(f"{REPORT_URL_ENV} must be an https:// address (got {raw[:80]!r})")
    return raw


def odbc_settings(backend: Backend) -> dict[str, str]:
    """Athena ODBC 2.x DSN keys and values for this deployment (placeholders where the backend has
    no SQL endpoint of its own: ``local``)."""
    endpoint = backend.sql_endpoint
    region = database = workgroup = output = UNKNOWN
    if endpoint is not None:
        region, database, workgroup = endpoint.region, endpoint.database, endpoint.workgroup
        output = endpoint.output_location
    return {
        "Driver": ODBC_DRIVER,
        "DSN": DSN_NAME,
        "Description": "PetroStream lake (well_data, anomaly_events, executive views)",
        "AwsRegion": region,
        "Catalog": "AwsDataCatalog",
        "Schema": database,
        "Workgroup": workgroup,
        "S3OutputLocation": output,
        "AuthenticationType": "Default Credentials",
    }


def create_views(backend: Backend) -> list[str]:
    """Create (or replace) every executive view in Athena; return their names.

    ``CREATE OR REPLACE VIEW`` makes it safe to run on every deploy, and a view changed in
    :mod:`engine.insights` is updated in place. Each run moves the views' first date partition
    to the start of the BI look-back; on AWS a daily schedule runs it (``infra/bi_views.tf``), so
    Power BI's scans stay bounded without a deploy.
    """
    if backend.name != "aws":
        raise InputError("the Power BI views live in Athena: run with PETROSTREAM_BACKEND=aws "
                         "(on local, the Power BI page exports the same views as files)")
    window = bi_window(backend.sql)
    for name in EXECUTIVE_VIEWS:
        backend.sql.query(executive_view_ddl(name, window))
    return list(EXECUTIVE_VIEWS)


def dsn_file(settings: dict[str, str]) -> str:
    """A file DSN (``.dsn``) Windows' ODBC administrator can import."""
    lines = ["[ODBC]", f"DRIVER={settings['Driver']}"]
    lines += [f"{key}={value}" for key, value in settings.items() if key not in ("Driver", "DSN")]
    return "\r\n".join(lines) + "\r\n"


def connection_string(settings: dict[str, str]) -> str:
    """The same settings as one ODBC connection string (Power BI's generic ODBC connector)."""
    parts = [f"Driver={{{settings['Driver']}}}"]
    parts += [f"{key}={value}" for key, value in settings.items() if key not in ("Driver", "DSN", "Description")]
    return ";".join(parts) + ";"


def export(frame: pd.DataFrame, kind: str) -> bytes:
    """A view as CSV or Parquet bytes, for download."""
    if kind == "csv":
        return frame.to_csv(index=False).encode()
    if kind == "parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return buffer.getvalue()
    raise InputError(f"cannot export as {kind!r}; choose csv or parquet")
