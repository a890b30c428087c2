"""The disconnects list in real headless Chromium: search, the time zone toggle, and a
375-pixel-wide phone screen with no sideways scrolling of the page.  Screenshots go to
artifacts/screenshots/ (list-*.png)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.callbacks.helpers import answer_event, call_id, disconnect_event
from tests.conftest import DASHBOARD_PASSWORD, DASHBOARD_USER
from tests.dashboard.test_browser import (  # noqa: F401  (browser and server are fixtures)
    _callback,
    browser,
    no_csp_violations,
    server,
    shot,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LONG_MESSAGE = (
    "The answer URL https://cb.example.com/callbacks/answer/with/a/rather/long/path "
    "did not respond within 15 s (connection timed out after 15000 ms)"
)


def seed(base: str) -> dict[str, str]:
    calls = {"slow": call_id(), "busy": call_id(), "vip": call_id()}
    _callback(base, "answer", answer_event(callId=calls["slow"]))
    _callback(
        base,
        "disconnect",
        disconnect_event(callId=calls["slow"], cause="callback-error", errorMessage=LONG_MESSAGE),
    )
    _callback(base, "disconnect", disconnect_event(callId=calls["busy"], cause="busy"))
    _callback(
        base,
        "disconnect",
        disconnect_event(callId=calls["vip"], cause="timeout", to="+12025550177"),
    )
    return calls


def log_in(driver: Any, base: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(base + "/dashboard/login")
    driver.find_element(By.ID, "username").send_keys(DASHBOARD_USER)
    driver.find_element(By.ID, "password").send_keys(DASHBOARD_PASSWORD)
    driver.find_element(By.ID, "login-submit").click()
    wait_for(driver, lambda d: d.find_elements(By.ID, "disconnects"))


def listed(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [link.text for link in driver.find_elements(By.CSS_SELECTOR, "#disconnects a.call-link")]


def test_operator_searches_and_switches_time_zone(server, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    base, _app = server
    calls = seed(base)
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Kolkata"})
    log_in(browser, base)
    assert set(listed(browser)) == set(calls.values())

    box = browser.find_element(By.ID, "f-q")
    box.send_keys("did not RESPOND within")
    browser.find_element(By.ID, "f-submit").click()
    wait_for(browser, lambda d: "q=did+not+RESPOND+within" in d.current_url)
    assert listed(browser) == [calls["slow"]]
    shot(browser, "list-1-search-message")

    box = browser.find_element(By.ID, "f-q")
    box.clear()
    box.send_keys("5550177")
    browser.find_element(By.ID, "f-submit").click()
    wait_for(browser, lambda d: "q=5550177" in d.current_url)
    assert listed(browser) == [calls["vip"]]

    box = browser.find_element(By.ID, "f-q")
    box.clear()
    box.send_keys('"unbalanced NEAR( x*')
    browser.find_element(By.ID, "f-submit").click()
    wait_for(browser, lambda d: "unbalanced" in d.current_url)
    assert listed(browser) == []
    assert "No disconnects match these filters." in browser.page_source
    shot(browser, "list-2-search-nothing")

    browser.get(base + "/dashboard")
    cell = browser.find_element(By.CSS_SELECTOR, "#disconnects td.time time")
    utc_text = cell.text
    assert utc_text.endswith(" UTC")
    toggle = browser.find_element(By.ID, "tz-toggle")
    assert toggle.is_displayed()  # the script shows it
    Select(browser.find_element(By.ID, "tz")).select_by_value("local")
    wait_for(browser, lambda d: "GMT+5:30" in cell.text)
    epoch = float(cell.get_attribute("data-epoch"))
    assert cell.text == browser.execute_script(
        "const d = new Date(arguments[0] * 1000 + 330 * 60000);"
        "return d.toISOString().slice(0, 23).replace('T', ' ') + ' GMT+5:30';",
        epoch,
    )
    axis = browser.find_elements(By.CSS_SELECTOR, "#chart text[data-axis]")
    assert axis and all(label.text.endswith(":30") for label in axis)  # hours in IST
    shot(browser, "list-3-browser-time-zone")

    browser.refresh()  # the choice is remembered
    wait_for(browser, lambda d: "GMT+5:30" in d.find_element(By.CSS_SELECTOR, "td.time").text)
    Select(browser.find_element(By.ID, "tz")).select_by_value("utc")
    assert browser.find_element(By.CSS_SELECTOR, "td.time time").text == utc_text
    no_csp_violations(browser)


def test_the_list_fits_a_375_pixel_phone(server, browser):  # noqa: F811
    from selenium.webdriver.common.by import By

    base, _app = server
    seed(base)
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 375, "height": 812, "deviceScaleFactor": 2, "mobile": True},
    )
    log_in(browser, base)
    sizes = browser.execute_script(
        "return {viewport: window.innerWidth,"
        " page: document.documentElement.scrollWidth, body: document.body.scrollWidth};"
    )
    assert sizes["viewport"] == 375
    assert sizes["page"] <= sizes["viewport"], sizes  # no sideways scrolling of the page
    assert sizes["body"] <= sizes["viewport"], sizes
    # Each disconnect is a card of labelled lines, inside the screen.
    cards = browser.find_elements(By.CSS_SELECTOR, "#disconnects tbody tr[data-id]")
    assert len(cards) == 3
    for card in cards:
        assert card.rect["x"] >= 0 and card.rect["x"] + card.rect["width"] <= 375, card.rect
    labels = browser.execute_script(
        "return Array.from(document.querySelectorAll('#disconnects tbody tr:first-child td'),"
        " (td) => getComputedStyle(td, '::before').content);"
    )
    assert labels[:3] == ['"Received"', '"Cause"', '"Duration"']
    assert not browser.find_element(By.CSS_SELECTOR, "#disconnects thead").is_displayed()
    for element_id in ("f-q", "f-submit", "chart", "counts"):
        rect = browser.find_element(By.ID, element_id).rect
        assert rect["x"] >= 0 and rect["x"] + rect["width"] <= 375, (element_id, rect)
    shot(browser, "list-4-phone-375")
    browser.execute_script("document.querySelector('#disconnects').scrollIntoView()")
    shot(browser, "list-5-phone-375-table")
    no_csp_violations(browser)
