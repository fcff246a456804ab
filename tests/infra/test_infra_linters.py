"""The static checkers, run as tests: checkov, hadolint, shellcheck, actionlint and
`terraform fmt`. A missing binary skips its test with the reason; `make test` installs
them all (infra.mk and scripts/install_system_deps.sh)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra.support import find_tool
from tests.infra.terraform_model import INFRA, ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
# The shared part (scripts/project_common.sh) is checked where it is sourced, with its callers' variables.
SCRIPTS = [ROOT / "project_up.sh", ROOT / "project_down.sh", ROOT / "scripts" / "install_system_deps.sh"]


def _run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False, **kwargs)


def _checkov(arguments: list[str]) -> list[dict[str, Any]]:
    """checkov's JSON reports (one per framework), offline: --skip-download."""
    result = _run([find_tool("checkov"), *arguments, "--skip-download", "--output", "json"],
                  env={**os.environ, "BC_SKIP_MAPPING": "TRUE"})
    assert result.returncode in (0, 1), result.stderr[-2000:]
    reports = json.loads(result.stdout)
    return reports if isinstance(reports, list) else [reports]


def _failures(report: dict[str, Any]) -> list[str]:
    return [f"{check['check_id']} {check['resource']} ({check['file_path']}): {check['check_name']}"
            for check in report["results"].get("failed_checks", [])]


def test_checkov_passes_on_terraform() -> None:
    (report,) = _checkov(["--directory", str(INFRA), "--framework", "terraform"])
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 250, "checkov must really have scanned the configuration"
    assert _failures(report) == []


def test_checkov_passes_on_dockerfile_and_workflows() -> None:
    files = [ROOT / "Dockerfile", *WORKFLOWS]
    arguments = [argument for path in files for argument in ("--file", str(path))]
    reports = _checkov([*arguments, "--framework", "dockerfile", "github_actions"])
    assert {report["check_type"] for report in reports} == {"dockerfile", "github_actions"}
    for report in reports:
        assert _failures(report) == [], report["check_type"]


def test_hadolint_passes_on_the_dockerfile() -> None:
    result = _run([find_tool("hadolint"), "--failure-threshold", "style", "Dockerfile"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_passes_on_the_project_switch() -> None:
    result = _run([find_tool("shellcheck"), "--external-sources", "--severity", "style", *map(str, SCRIPTS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_passes_on_the_workflows() -> None:
    """actionlint also runs shellcheck over every `run:` script when shellcheck is on PATH."""
    assert WORKFLOWS, "no workflow found"
    result = _run([find_tool("actionlint"), "-no-color", "-oneline", *map(str, WORKFLOWS)])
    assert result.returncode == 0, result.stdout + result.stderr


def _terraform() -> str:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not installed (the CI workflow runs fmt, validate and plan)")
    return binary


def test_terraform_files_are_formatted() -> None:
    result = _run([_terraform(), "fmt", "-check", "-recursive", "-diff", str(INFRA)],
                  env={**os.environ, "CHECKPOINT_DISABLE": "1"})
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("example", sorted(INFRA.glob("*.example")), ids=lambda path: path.name)
def test_example_files_are_formatted(example: Path) -> None:
    text = example.read_text(encoding="utf-8")
    result = _run([_terraform(), "fmt", "-"], input=text, env={**os.environ, "CHECKPOINT_DISABLE": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout == text
