"""The portal is closed by default: ``make run`` serves it on this machine's loopback only."""

from __future__ import annotations

import os
import shlex
import subprocess
import urllib.request
from pathlib import Path

import psutil

from tests.local_ports import free_port
from tests.polling import wait_for

REPO = Path(__file__).resolve().parents[1]



def portal_command(port: int) -> str:
    """The command ``make run`` starts the portal with (its last recipe line, as make prints it)."""
    printed = subprocess.run(["make", "-n", "run", f"PORTAL_PORT={port}"], cwd=REPO, capture_output=True, text=True,
                             check=True, timeout=60).stdout
    logical = printed.replace("\\\n", " ").strip().splitlines()
    return next(line for line in reversed(logical) if "streamlit run" in line)


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def test_make_run_listens_on_loopback_only(tmp_path: Path) -> None:
    port = free_port()
    command = portal_command(port)
    assert "--server.address 127.0.0.1" in command
    env = {**os.environ, "PETROSTREAM_HOME": str(tmp_path)}
    portal = subprocess.Popen(shlex.split(command.replace("PETROSTREAM_BACKEND=local ", "")), cwd=REPO,
                              env={**env, "PETROSTREAM_BACKEND": "local"}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: healthy(port), seconds=60)
        listening = {c.laddr.ip for c in psutil.Process(portal.pid).net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
        assert listening == {"127.0.0.1"}
    finally:
        portal.terminate()
        portal.wait(timeout=30)


def test_the_repository_config_binds_loopback_for_any_streamlit_run() -> None:
    import tomllib

    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert config["server"]["enableXsrfProtection"] is True
