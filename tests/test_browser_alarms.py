"""An operator acknowledges an alarm in a real Chromium, and it stays acknowledged after a reload.

Reuses the portal and browser of tests/test_browser.py (a home filled by the real pipeline,
whose demo wells end with active alarms).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.test_browser import SCREENSHOTS, browser, home, portal  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


def test_an_alarm_is_acknowledged_and_stays_acknowledged_after_reload(portal: str, browser: object) -> None:  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page.goto(f"{portal}/alarms")
    page.get_by_role("heading", name="Act on an alarm").wait_for(timeout=30_000)
    picked = page.get_by_role("combobox", name="Alarm")
    expect(picked).to_have_value(re.compile(r"^WELL-\d+ · .* UTC · active$"), timeout=30_000)
    well = picked.input_value().split(" · ")[0]
    assert page.get_by_text("Not acknowledged").count() == 1
    assert page.get_by_role("button", name="Acknowledge").is_disabled()  # no operator name yet
    page.get_by_role("textbox", name="Operator").fill("Ana Souza")
    page.get_by_role("textbox", name="Comment").fill("called the platform; watching the PDG")
    page.get_by_role("textbox", name="Comment").press("Control+Enter")
    page.get_by_role("button", name="Acknowledge").click()
    page.get_by_text(re.compile(r"acknowledged by Ana Souza\.")).wait_for(timeout=30_000)

    page.reload()
    page.get_by_role("heading", name="Act on an alarm").wait_for(timeout=30_000)
    expect(page.get_by_role("combobox", name="Alarm")).to_have_value(
        re.compile(rf"^{well} · .* UTC · acknowledged$"), timeout=30_000)
    page.get_by_text(re.compile(r"Acknowledged by Ana Souza at .* UTC")).wait_for(timeout=30_000)
    page.get_by_text("already acknowledged by Ana Souza").wait_for(timeout=30_000)
    assert page.get_by_role("button", name="Acknowledge").is_disabled()
    assert page.locator("[data-testid='stException']").count() == 0
    page.screenshot(path=str(SCREENSHOTS / "alarms-acknowledged.png"), full_page=True)
    page.close()
