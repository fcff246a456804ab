"""Helpers shared by the infrastructure tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.infra.terraform_model import ROOT

INFRA_VENV_BIN = ROOT / ".venv-infra" / "bin"
ACCOUNT = "123456789012"  # moto's account id


def find_tool(name: str) -> str:
    """The linter ``name`` from `make infra-tools`'s virtualenv or the PATH; skip if absent."""
    candidate = INFRA_VENV_BIN / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed; `make infra-tools` (or `make test`) installs it")
    return found


def moto_environment(endpoint: str, home: Path) -> dict[str, str]:
    """The AWS variables that point boto3 (in this process or a child) at a moto server."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
    }
