"""Real headless Chromium against the real app on 127.0.0.1 (threaded werkzeug server).

1. A visitor asks for a call on /click-to-call and watches it go through the in-app sandbox
   (VOICE_BACKEND=sandbox, a small time scale) to its end, with its cause.
2. An operator logs in, filters the disconnects, opens a failed call and reads its timeline
   and BXML; auto-refresh brings in a disconnect that arrives while the page is open.

Screenshots go to artifacts/screenshots/.  Chromium and chromedriver come from Debian
(``apt-get install chromium chromium-driver``); without them the tests skip on a laptop and
fail under CI.  No page may log a Content-Security-Policy violation.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.callbacks.helpers import answer_event, basic_auth, call_id, disconnect_event
from tests.conftest import DASHBOARD_PASSWORD, DASHBOARD_USER, needs
from tests.servers import ROOT, listening_socket, port_of, serve_on

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
AGENT = "+12025550199"
WAIT = 30


@pytest.fixture
def server(app_config, tmp_path) -> Iterator[tuple[str, Any]]:
    """The real app, with its in-app sandbox, on a free 127.0.0.1 port."""
    from app import create_app

    sock = listening_socket()
    base = f"http://127.0.0.1:{port_of(sock)}"
    app = create_app(
        {
            **app_config,
            "PUBLIC_BASE_URL": base,
            "VOICE_BACKEND": "sandbox",
            "CLICK_TO_CALL_AGENT": AGENT,
            "SANDBOX_TIME_SCALE": 0.25,
            "SANDBOX_BRIDGE_SECONDS": 8,
            "DASHBOARD_REFRESH_SECONDS": 2,
        }
    )
    assert "sandbox" in app.extensions  # VOICE_BACKEND=sandbox serves /sandbox/api/v2
    http = serve_on(sock, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield base, app
    finally:
        http.shutdown()
        thread.join(timeout=10)
        http.server_close()
        box = app.extensions.get("sandbox")
        if box is not None:
            box.close(timeout=5.0)
        app.extensions["store"].dispose()


@pytest.fixture
def browser(tmp_path) -> Iterator[Any]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        needs(False, "selenium is not installed (pip install selenium)")
    needs(
        os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER),
        "headless Chromium needs `apt-get install chromium chromium-driver`",
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def shot(driver: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def no_csp_violations(driver: Any) -> None:
    messages = [entry["message"] for entry in driver.get_log("browser")]
    violations = [m for m in messages if "Content Security Policy" in m or "Refused to" in m]
    assert violations == []


def wait_for(driver: Any, condition: Any, timeout: float = WAIT) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def call_ends(driver: Any, number: str) -> None:
    """On the click-to-call form: ask for a call to ``number`` and wait on the progress page
    until the call has ended."""
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.ID, "number")
    field.clear()
    field.send_keys(number)
    driver.find_element(By.ID, "c2c-submit").click()
    wait_for(driver, lambda d: "/click-to-call/calls/" in d.current_url)
    wait_for(
        driver,
        lambda d: d.find_element(By.ID, "progress").get_attribute("data-state") == "ended",
        timeout=60,
    )


def text_of(driver: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, element_id).text)


def test_visitor_watches_a_click_to_call_call_to_its_end(server, browser):
    from selenium.webdriver.common.by import By

    base, _app = server
    browser.get(base + "/click-to-call")
    shot(browser, "click-to-call-1-form")
    browser.find_element(By.ID, "number").send_keys("(202) 555-0123")
    browser.find_element(By.ID, "c2c-submit").click()
    wait_for(browser, lambda d: "/click-to-call/calls/" in d.current_url)
    progress = browser.find_element(By.ID, "progress")
    seen = [progress.get_attribute("data-state")]
    shot(browser, "click-to-call-2-calling")

    def record(driver: Any) -> bool:
        state = driver.find_element(By.ID, "progress").get_attribute("data-state")
        if state != seen[-1]:
            seen.append(state)
            shot(driver, f"click-to-call-3-{state}")
        return state in ("ended", "failed")

    wait_for(browser, record, timeout=60)
    assert seen[-1] == "ended", seen
    assert "answered" in seen or "connected" in seen, seen
    assert seen.index("ended") == len(seen) - 1
    cause = progress.get_attribute("data-cause")
    assert cause == "hangup"
    assert text_of(browser, "call-state") == (
        "Your call with our agent has ended. Thank you for calling."
        " You can ask for another call in 5 minutes."  # the number's cooldown
    )
    # Asking now would be refused ("We called this number a moment ago"): not offered.
    assert not browser.find_element(By.ID, "ask-again").is_displayed()
    page = browser.page_source
    assert "202" not in page.split('id="progress"')[1]  # no numbers on the progress page
    shot(browser, "click-to-call-4-ended")
    no_csp_violations(browser)


def test_a_refused_number_shows_a_clear_error(server, browser):
    from selenium.webdriver.common.by import By

    base, _app = server
    browser.get(base + "/click-to-call")
    browser.find_element(By.ID, "number").send_keys("+1 876 555 1234")
    browser.find_element(By.ID, "c2c-submit").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "c2c-error"))
    assert "United States and Canada" in text_of(browser, "c2c-error")
    shot(browser, "click-to-call-5-refused")
    no_csp_violations(browser)


def _callback(base: str, route: str, payload: dict[str, Any]) -> None:
    reply = requests.post(
        f"{base}/callbacks/{route}",
        data=json.dumps(payload),
        headers={"Content-Type": "application/json", **basic_auth()},
        timeout=10,
    )
    assert reply.status_code in (200, 204), reply.text


def test_operator_filters_and_opens_a_failed_call(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    base, _app = server
    failed = call_id()
    _callback(base, "answer", answer_event(callId=failed, tag="order-42"))
    _callback(
        base,
        "disconnect",
        disconnect_event(
            callId=failed,
            cause="application-error",
            errorMessage="<script>alert('xss')</script> unsupported audio",
            errorId="9a1b2c3d-0000-4000-8000-000000000001",
            tag="order-42",
        ),
    )
    busy = call_id()
    _callback(base, "disconnect", disconnect_event(callId=busy, cause="busy"))

    browser.get(base + "/dashboard")
    assert "/dashboard/login" in browser.current_url
    browser.find_element(By.ID, "username").send_keys(DASHBOARD_USER)
    browser.find_element(By.ID, "password").send_keys(DASHBOARD_PASSWORD)
    shot(browser, "dashboard-1-login")
    browser.find_element(By.ID, "login-submit").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "disconnects"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#disconnects tbody tr[data-id]")
    assert len(rows) == 2
    shot(browser, "dashboard-2-disconnects")

    Select(browser.find_element(By.ID, "f-cause")).select_by_value("application-error")
    browser.find_element(By.ID, "f-submit").click()
    wait_for(browser, lambda d: "cause=application-error" in d.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "#disconnects tbody tr[data-id]")
    assert len(rows) == 1
    assert "<script>alert('xss')</script> unsupported audio" in rows[0].text  # shown as text
    shot(browser, "dashboard-3-filtered")

    rows[0].find_element(By.CSS_SELECTOR, "a.call-link").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "timeline"))
    entries = browser.find_elements(By.CSS_SELECTOR, "#timeline > li")
    assert [e.get_attribute("class").split()[1] for e in entries] == ["answer", "disconnect"]
    bxml = browser.find_element(By.CSS_SELECTOR, "#timeline pre.bxml").text
    assert bxml.startswith("<?xml") and "<Gather" in bxml
    assert "application-error" in entries[1].text
    assert "9a1b2c3d-0000-4000-8000-000000000001" in entries[1].text
    shot(browser, "dashboard-4-call")

    browser.find_element(By.CSS_SELECTOR, "form.replay button").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "replay-verdict"))
    assert text_of(browser, "replay-verdict") == "Same reply as stored."
    shot(browser, "dashboard-5-replay")
    no_csp_violations(browser)


def test_dashboard_refreshes_itself(server, browser):
    from selenium.webdriver.common.by import By

    base, _app = server
    browser.get(base + "/dashboard/login")
    browser.find_element(By.ID, "username").send_keys(DASHBOARD_USER)
    browser.find_element(By.ID, "password").send_keys(DASHBOARD_PASSWORD)
    browser.find_element(By.ID, "login-submit").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "disconnects"))
    assert browser.find_elements(By.CSS_SELECTOR, "#disconnects tr.empty")
    late = call_id()
    _callback(base, "disconnect", disconnect_event(callId=late, cause="timeout"))
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#disconnects tr.fresh"))
    fresh = browser.find_element(By.CSS_SELECTOR, "#disconnects tr.fresh")
    assert late in fresh.text and "timeout" in fresh.text
    assert "new" in text_of(browser, "refresh-status")
    shot(browser, "dashboard-6-auto-refresh")
    no_csp_violations(browser)
