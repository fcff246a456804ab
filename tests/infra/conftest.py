"""Fixtures of the infrastructure tests: the parsed Terraform and a moto server reached
through the environment, exactly as project_down.sh reaches AWS.

The moto server lives for the whole session and is never reset: each test works under a
name prefix of its own instead, which also proves that the teardown code leaves other
prefixes' resources alone (and saves moto's per-service start-up after every reset)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from tests.infra.support import moto_environment
from tests.infra.terraform_model import Terraform


@pytest.fixture(scope="session")
def tf() -> Terraform:
    """Every block of infra/*.tf."""
    return Terraform.load()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server on a free loopback port (one per test worker)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The moto account, set in this process's environment."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in moto_environment(moto_endpoint, tmp_path).items():
        monkeypatch.setenv(name, value)
    return moto_endpoint


@pytest.fixture
def prefix() -> str:
    """A name prefix no other test uses (what TF_VAR_name_prefix sets for a real stack)."""
    return f"ps{uuid.uuid4().hex[:10]}"
