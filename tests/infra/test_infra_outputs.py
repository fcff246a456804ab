"""deploy.outputs: reading the saved `terraform output -json` the way the scripts do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import outputs
from tests.infra.terraform_model import ROOT

SAVED = {
    "stream_name": {"value": "petrostream-ingest", "type": "string", "sensitive": False},
    "portal_url": {"value": None, "type": "string", "sensitive": False},
    "task_subnet_ids": {"value": ["subnet-a", "subnet-b"], "type": ["list", "string"], "sensitive": False},
    "container_environment": {
        "value": {"PETROSTREAM_BACKEND": "aws", "PETROSTREAM_STREAM_NAME": "petrostream-ingest",
                  "PETROSTREAM_RAW_BUCKET": "petrostream-raw-123 with space"},
        "type": ["map", "string"], "sensitive": False,
    },
}


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "aws-outputs.json"
    path.write_text(json.dumps(SAVED), encoding="utf-8")
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deploy.outputs", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)


def test_outputs_are_unwrapped(saved: Path) -> None:
    loaded = outputs.load_outputs(saved)
    assert loaded["stream_name"] == "petrostream-ingest" and loaded["portal_url"] is None
    assert outputs.container_environment(loaded)["PETROSTREAM_BACKEND"] == "aws"


def test_env_command_prints_exports_a_shell_can_eval(saved: Path) -> None:
    result = _cli("env", str(saved))
    assert result.returncode == 0, result.stderr
    script = result.stdout + 'printf "%s|%s" "$PETROSTREAM_BACKEND" "$PETROSTREAM_RAW_BUCKET"'
    shell = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert shell.stdout == "aws|petrostream-raw-123 with space"


def test_get_command_prints_plain_values(saved: Path) -> None:
    assert _cli("get", str(saved), "stream_name").stdout == "petrostream-ingest\n"
    assert _cli("get", str(saved), "portal_url").stdout == "\n", "null is empty for the shell"
    assert _cli("get", str(saved), "task_subnet_ids").stdout == "subnet-a,subnet-b\n"
    missing = _cli("get", str(saved), "nope")
    assert missing.returncode == 2 and "no output 'nope'" in missing.stderr


def test_unreadable_file_is_a_one_line_error(tmp_path: Path) -> None:
    result = _cli("env", str(tmp_path / "missing.json"))
    assert result.returncode == 2
    assert result.stderr.startswith("deploy.outputs: cannot read") and "Traceback" not in result.stderr
