"""Every portal page on the aws backend (AppTest, in-process) against moto: empty, then filled.

The pages open the backend from the environment exactly as in the cloud (``PETROSTREAM_BACKEND=aws``
and the container variables); their SQL is answered by the test server's Athena emulation on
DuckDB (``tests/backends.py``), their scaling and replay views by moto's ECS and Auto Scaling.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine.backend import open_backend
from engine.config import Settings
from engine.consumer import Consumer, ConsumerOptions
from engine.producer import Producer, ReplayOptions
from engine.readers import discover
from engine.schema import WELL_DATA_TABLE
from ml.train_model import train
from tests.backends import aws_account, fast_kinesis_reads
from tests.portal_homes import PAGES, open_page
from tests.test_portal_pages import clean, metrics, texts

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_every_page_explains_an_empty_aws_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PETROSTREAM_HOME", str(tmp_path))
    with aws_account():
        for page in PAGES:
            at = clean(open_page(page))
            assert "unreachable" not in texts(at), page
        assert "No data in the lake yet" in texts(clean(open_page("overview")))


def test_every_page_shows_what_the_pipeline_put_in_the_aws_account(
        tmp_path: Path, demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PETROSTREAM_HOME", str(tmp_path))
    fast_kinesis_reads(monkeypatch)
    with aws_account():
        backend = open_backend(Settings.from_env())
        backend.models.publish(*train([demo_dir]))
        never = threading.Event()
        Producer(backend, discover([demo_dir]), ReplayOptions(speed=0)).run(never)
        Consumer(backend, ConsumerOptions(idle_exit_seconds=1.0, poll_seconds=0.05)).run(never)
        rows = backend.lake.row_count(WELL_DATA_TABLE)
        assert rows > 0
        for page in PAGES:
            at = clean(open_page(page))
            if page == "overview":
                assert any(value.replace(",", "") == str(rows) for value in metrics(at).values()), metrics(at)
            if page == "scaling":
                assert "1" in metrics(at).values()  # ECS reports one consumer task running, one desired
            if page == "live_anomalies":  # every Athena statement is billed: live views poll once a minute
                assert "Refreshes every 60 s" in texts(at)
