"""The portal in a real browser: `streamlit run` on a free port, headless Debian Chromium via Playwright.

Visits every page of a home the real pipeline filled, checks what it shows and that no
exception box appears, clicks the Overview's start/stop, and saves a screenshot per page
under test-output/screenshots/.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.portal_homes import APP, populate, stop_workers

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "test-output" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: URL path of each page (st.Page derives it from the file name) -> title and text it must show.
VISITS = [
    ("", "PetroStream overview", "Active alarms"),
    ("alarms", "Alarms", "Act on an alarm"),
    ("live_anomalies", "Live anomalies", "WELL-00001"),
    ("well_map", "Well map", "illustrative demo coordinates"),
    ("history", "History", "points, one per 1 min"),
    ("model", "Model", "Active:"),
    ("replay", "Replay", "Rows sent"),
    ("scaling", "Scaling", "Desired"),
    ("power_bi", "Power BI", "well_data_monthly"),
]

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The portal served by `streamlit run` over a filled home; stopped (with its workers) afterwards."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (scripts/install_system_deps.sh)")
    home = tmp_path_factory.mktemp("browser-home")
    populate(home)
    port = free_port()
    env = {**os.environ, "PETROSTREAM_BACKEND": "local", "PETROSTREAM_HOME": str(home)}
    log = (home / "streamlit.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port), "--server.address",
         "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
        stop_workers(home)


def _wait_healthy(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"streamlit exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError("streamlit did not become healthy within 60 s")


@pytest.fixture(scope="module")
def browser(portal: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def test_every_page_renders_without_an_exception(portal: str, browser: object) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    for path, title, text in VISITS:
        page.goto(f"{portal}/{path}")
        page.get_by_role("heading", name=title).first.wait_for(timeout=30_000)
        page.get_by_text(text).first.wait_for(timeout=30_000)
        page.wait_for_load_state("networkidle")
        assert page.locator("[data-testid='stException']").count() == 0, f"exception on {path or 'overview'}"
        assert page.locator("[data-testid='stAlertContentError']").count() == 0, f"error on {path or 'overview'}"
        if path == "well_map":  # the folium component, rendered by the map's fragment (tiles need a network)
            page.locator("iframe").first.wait_for(state="attached", timeout=30_000)
        page.screenshot(path=str(SCREENSHOTS / f"{path or 'overview'}.png"), full_page=True)
    page.close()


def test_live_page_refreshes_itself_without_errors(portal: str, browser: object) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(f"{portal}/live_anomalies")
    page.get_by_text("WELL-00003").first.wait_for(timeout=30_000)
    page.wait_for_timeout(6_000)  # longer than the fragment's refresh period
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.get_by_text("WELL-00003").count() >= 1
    page.close()


def test_overview_buttons_start_and_stop_the_pipeline(portal: str, browser: object) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(portal)
    page.get_by_role("button", name="Start demo pipeline").click()
    page.get_by_text("consumer(s) running").first.wait_for(timeout=120_000)
    page.screenshot(path=str(SCREENSHOTS / "overview-started.png"), full_page=True)
    page.get_by_role("button", name="Stop pipeline").click()
    page.get_by_text("consumers stopped").first.wait_for(timeout=60_000)
    assert page.locator("[data-testid='stException']").count() == 0
    page.close()
