"""The portal in a real browser: `streamlit run` on a free port, headless Debian Chromium via Playwright.

Visits every page of a home the real pipeline filled (plus one well with a known alarm), checks
what it shows and that no exception box appears, draws the well map with every request off this
machine refused (an air-gapped control room), keeps a map popup open across live refreshes, follows
a tile and a popup to History, clicks the Overview's start/stop, and saves a screenshot per page
under test-output/screenshots/.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse

import pytest

from control_center.ui import STATUS_COLOURS
from engine.backend import Backend
from engine.insights import WellSnapshot, WellStatus, live_wells
from engine.schema import ANOMALY_EVENT_VERSIONS_TABLE, WELL_DATA_TABLE
from tests.local_ports import free_port
from tests.portal_homes import APP, event_version, event_versions, observations, open_home, populate, stop_workers

if TYPE_CHECKING:
    from playwright.sync_api import Frame, Page

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
    ("history", "History", "points, one per"),
    ("model", "Model", "Active:"),
    ("replay", "Replay", "Rows sent"),
    ("scaling", "Scaling", "Desired"),
    ("power_bi", "Power BI", "well_data_monthly"),
]

# On the day of the demo data populate() lands (seed 11): live views read the newest date partitions only.
ALARM_WELL, ALARM_START = "WELL-ALARM", datetime(2024, 2, 10, 3, 0, tzinfo=UTC)
ALARM_ID = f"{ALARM_WELL}@{int(ALARM_START.timestamp() * 1000)}"

pytestmark = pytest.mark.browser



@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The portal's home: filled by the real pipeline, plus a well with a known alarm."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (scripts/install_system_deps.sh)")
    home = tmp_path_factory.mktemp("browser-home")
    with_known_alarm(populate(home))
    return home


@pytest.fixture(scope="module")
def portal(home: Path) -> Iterator[str]:
    """The portal served by `streamlit run` over ``home``; stopped (with its workers) afterwards."""
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


def with_known_alarm(backend: Backend) -> None:
    """ALARM_WELL: two hours of data landed now, with a closed alarm from minute 80 to 90."""
    now = datetime.now(UTC)
    backend.lake.write(WELL_DATA_TABLE, "known-alarm", observations(
        ALARM_WELL, ALARM_START - timedelta(minutes=80), 7200, ingest=now, pressure_pa=1.2e7, temperature=75.0,
        flagged=range(4800, 5400)))
    backend.lake.write(ANOMALY_EVENT_VERSIONS_TABLE, "known-alarm", event_versions(
        event_version(ALARM_WELL, ALARM_START, timedelta(minutes=10), state="cleared")))


def offline(page: Page) -> Page:
    """Refuse every request that leaves this machine, as an air-gapped network would."""
    page.context.route(re.compile(r"^(?!https?://127\.0\.0\.1[:/]).*"), lambda route: route.abort())
    return page


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
    # tall: Streamlit scrolls inside its own container, so a full-page screenshot shows only the viewport
    page = offline(browser.new_page(viewport={"width": 1400, "height": 2400}))  # type: ignore[attr-defined]
    for path, title, text in VISITS:
        page.goto(f"{portal}/{path}")
        page.get_by_role("heading", name=title).first.wait_for(timeout=30_000)
        page.get_by_text(text).first.wait_for(timeout=30_000)
        page.wait_for_load_state("networkidle")
        assert page.locator("[data-testid='stException']").count() == 0, f"exception on {path or 'overview'}"
        assert page.locator("[data-testid='stAlertContentError']").count() == 0, f"error on {path or 'overview'}"
        if path == "well_map":  # wait for the Leaflet map inside the component's frame
            page.frame_locator("iframe").first.locator(".leaflet-container").wait_for(timeout=30_000)
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
    page.get_by_text("Pipeline health").first.wait_for(timeout=30_000)  # the rest of the page re-drawn too
    page.get_by_text("Observations in the lake").first.wait_for(timeout=30_000)
    page.screenshot(path=str(SCREENSHOTS / "overview-started.png"), full_page=True)
    page.get_by_role("button", name="Stop pipeline").click()
    page.get_by_text("consumers stopped").first.wait_for(timeout=60_000)
    assert page.locator("[data-testid='stException']").count() == 0
    page.close()


def test_the_map_draws_offline_with_a_marker_per_well(portal: str, browser: object) -> None:
    page = offline(browser.new_page(viewport={"width": 1400, "height": 1000}))  # type: ignore[attr-defined]
    page.goto(f"{portal}/well_map")
    frame = page.frame_locator("iframe").first
    frame.locator(".leaflet-container").wait_for(timeout=30_000)
    wells = page.get_by_test_id("stDataFrame").first
    wells.wait_for(timeout=30_000)
    markers = frame.locator("path.leaflet-interactive")  # circle markers; the base map is not interactive
    markers.first.wait_for(timeout=30_000)
    assert markers.count() == 4  # 3 demo wells and the alarm well
    assert frame.locator(".leaflet-overlay-pane path:not(.leaflet-interactive)").count() == 3  # coast, 2 basins
    box = page.locator("iframe").first.bounding_box()
    assert box is not None and box["height"] >= 500  # drawn, not collapsed to nothing
    assert frame.locator(".leaflet-tile-pane img.leaflet-tile-loaded").count() == 0  # online tiles were refused
    page.screenshot(path=str(SCREENSHOTS / "well_map-offline.png"), full_page=True)
    page.close()


def test_an_open_popup_stays_open_and_current_across_refreshes_then_leads_to_history(
        portal: str, home: Path, browser: object) -> None:
    """The map's marker layer is replaced when a marker changes, which closes an open popup unless the
    new layer opens it again. Strict: no re-click. The popup stays open through a refresh in which
    another well changes status (and shows its own well's new reading), then through a refresh with
    nothing new, and its History link opens that well's History; once the operator closes it, it stays
    closed."""
    from playwright.sync_api import expect

    page = offline(browser.new_page(viewport={"width": 1400, "height": 1000}))  # type: ignore[attr-defined]
    page.goto(f"{portal}/well_map")
    frame = page.frame_locator("iframe").first
    frame.locator("path.leaflet-interactive").first.click(timeout=30_000)
    popup = frame.locator(".leaflet-popup-content")
    match = re.search(r"\((WELL-[^)]+)\)", popup.inner_text(timeout=5_000))
    assert match, popup.inner_text()
    well = match.group(1)

    backend = open_home(home)
    other, status = _change_another_wells_status(backend, well)
    _land(backend, well, 5, pressure_pa=4.321e7)  # after the other well's change: seen with it or later
    current = frame.locator(".leaflet-popup-content", has_text="pressure 432.1 bar")
    current.wait_for(timeout=45_000)  # a refresh re-drew the markers and the popup, still open, shows it
    assert _marker_fills(page)[other] == STATUS_COLOURS[status]  # the same refresh recoloured the other well
    assert frame.locator(".leaflet-popup").count() == 1 and f"({well})" in popup.inner_text()

    refreshed = page.get_by_text(re.compile(r"^Refreshes every \d+ s · "))
    expect(refreshed).not_to_have_text(refreshed.inner_text(), timeout=30_000)  # a refresh with nothing new
    assert frame.locator(".leaflet-popup").count() == 1 and current.count() == 1 and f"({well})" in popup.inner_text()

    with page.expect_popup(timeout=10_000) as opened:
        frame.get_by_text("History of the last hour").click(timeout=5_000)
    history = opened.value
    history.get_by_role("heading", name="History").first.wait_for(timeout=30_000)
    assert parse_qs(urlparse(history.url).query)["well"] == [well]
    history.close()

    frame.locator(".leaflet-popup-close-button").click()  # a popup the operator closed stays closed
    _land(backend, well, 5, pressure_pa=4.111e7)
    _map_frame(page).wait_for_function("""() => { let drawn = false; window.map.eachLayer((layer) => {
        const popup = layer.getPopup && layer.getPopup();
        drawn = drawn || (popup && popup.getContent().innerText.includes("pressure 411.1 bar")); });
        return drawn; }""", timeout=45_000)
    assert frame.locator(".leaflet-popup").count() == 0
    page.close()


def _latest(backend: Backend) -> dict[str, WellSnapshot]:
    return {s.well_id: s for s in live_wells(backend.sql, datetime.now(UTC)).snapshots}


def _change_another_wells_status(backend: Backend, well: str) -> tuple[str, WellStatus]:
    """Land rows that turn a well other than ``well`` anomalous (or, if it is already, normal again:
    unflagged rows longer than the alarm window); return it and its new status."""
    latest = _latest(backend)
    other = next(w for w in sorted(latest) if w != well and latest[w].last_event is not None)
    status = WellStatus.NORMAL if latest[other].status == WellStatus.ANOMALY else WellStatus.ANOMALY
    _land(backend, other, 300, flagged=range(300) if status == WellStatus.ANOMALY else range(0))
    return other, status


def _land(backend: Backend, well: str, rows: int, *, pressure_pa: float = 1.1e7, flagged: range = range(0)) -> None:
    """``rows`` new rows of ``well`` (after its latest), landed now."""
    last = _latest(backend)[well].last_event
    assert last is not None
    backend.lake.write(WELL_DATA_TABLE, f"browser-{well}-{last:%H%M%S}", observations(
        well, last + timedelta(seconds=1), rows, ingest=datetime.now(UTC), pressure_pa=pressure_pa,
        temperature=70.0, flagged=flagged))


def _marker_fills(page: Page) -> dict[str, str]:
    """Each well's marker fill colour, read from the Leaflet map in the component's frame."""
    return _map_frame(page).evaluate("""() => {
        const fills = {};
        window.map.eachLayer((layer) => {
            const popup = layer.getPopup && layer.getPopup();
            if (popup && popup.options.wellId) { fills[popup.options.wellId] = layer.options.fillColor; }
        });
        return fills;
    }""")


def _map_frame(page: Page) -> Frame:
    frame = page.locator("iframe").first.element_handle().content_frame()
    assert frame is not None
    return frame


def test_a_tile_click_opens_history_with_the_alarm_window(portal: str, browser: object) -> None:
    page = offline(browser.new_page(viewport={"width": 1400, "height": 1000}))  # type: ignore[attr-defined]
    page.goto(portal)
    link = page.locator(f".st-key-tile-{ALARM_WELL} a").first
    link.wait_for(timeout=30_000)
    link.click()
    page.wait_for_url(re.compile(r"/history\?"), timeout=30_000)
    page.get_by_role("heading", name="History").first.wait_for(timeout=30_000)
    query = parse_qs(urlparse(page.url).query)
    assert query["well"] == [ALARM_WELL] and query["alarm"] == [ALARM_ID]
    window = (ALARM_START - timedelta(minutes=5), ALARM_START + timedelta(minutes=15))  # the alarm, 5 min margin
    assert (query["from"], query["to"]) == tuple([f"{t:%Y-%m-%dT%H:%M:%SZ}"] for t in window)
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for(timeout=30_000)
    assert chart.locator(".shapelayer path").count() >= 1  # the alarm's shaded band
    assert page.locator("[data-testid='stException']").count() == 0
    page.screenshot(path=str(SCREENSHOTS / "history-alarm.png"), full_page=True)
    page.close()
