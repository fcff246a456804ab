"""Configuration is checked at start: a bad value is one line naming the variable, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.backend import settings_from_env
from engine.config import Settings
from engine.errors import InputError

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("PETROSTREAM_SHARDS", "0", "PETROSTREAM_SHARDS='0' must be at least 1"),
    ("PETROSTREAM_SHARDS", "four", "PETROSTREAM_SHARDS='four' is not a whole number"),
    ("PETROSTREAM_RETENTION_HOURS", "-1", "PETROSTREAM_RETENTION_HOURS='-1' must be at least 1"),
    ("PETROSTREAM_LEASE_SECONDS", "-5", "PETROSTREAM_LEASE_SECONDS='-5' must be a finite number more than 0"),
    ("PETROSTREAM_LEASE_SECONDS", "0", "PETROSTREAM_LEASE_SECONDS='0' must be a finite number more than 0"),
    ("PETROSTREAM_LEASE_SECONDS", "soon", "PETROSTREAM_LEASE_SECONDS='soon' is not a number"),
    ("PETROSTREAM_BATCH_SECONDS", "-1", "PETROSTREAM_BATCH_SECONDS='-1' must be a finite number at least 0"),
    ("PETROSTREAM_BATCH_SECONDS", "nan", "PETROSTREAM_BATCH_SECONDS='nan' must be a finite number at least 0"),
    ("PETROSTREAM_MAX_FILE_ROWS", "0", "PETROSTREAM_MAX_FILE_ROWS='0' must be at least 1"),
    ("PETROSTREAM_BACKEND", "azure", "PETROSTREAM_BACKEND='azure' is not one of ['aws', 'local']"),
])
def test_a_bad_setting_is_one_line_naming_the_variable(
        variable: str, value: str, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(InputError) as refused:
        settings_from_env()
    assert str(refused.value) == message


def test_good_settings_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for variable, value in {"PETROSTREAM_SHARDS": "2", "PETROSTREAM_LEASE_SECONDS": "7.5",
                            "PETROSTREAM_BATCH_SECONDS": "0", "PETROSTREAM_HOME": str(tmp_path),
                            "PETROSTREAM_BACKEND": " AWS "}.items():
        monkeypatch.setenv(variable, value)
    settings = settings_from_env()
    assert (settings.shard_count, settings.lease_seconds, settings.batch_seconds, settings.backend) == \
        (2, 7.5, 0.0, "aws")
    assert settings.home == tmp_path and Settings().max_file_rows == 1_000_000


@pytest.mark.parametrize(("variable", "value"), [
    ("PETROSTREAM_SHARDS", "0"), ("PETROSTREAM_LEASE_SECONDS", "-5"), ("PETROSTREAM_BATCH_SECONDS", "x"),
    ("PETROSTREAM_BACKEND", "azure")])
def test_every_command_stops_at_start_with_exit_2(variable: str, value: str, tmp_path: Path) -> None:
    env = {**os.environ, "PETROSTREAM_HOME": str(tmp_path / "home"), variable: value}
    result = subprocess.run([sys.executable, "-m", "engine", "demo-data", "--out", str(tmp_path / "demo")],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and variable in result.stderr
    assert not (tmp_path / "demo").exists() and not (tmp_path / "home").exists()  # nothing was done
