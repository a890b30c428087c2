"""Real headless Chromium: failure categories, the credential banner, and click-to-call's
truthful progress page (a busy call, through the in-app sandbox).

Screenshots go to artifacts/screenshots/ (``categories-*``, ``click-to-call-busy-*``).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests

from callbacks import Flow
from tests.callbacks.helpers import ABSENT, answer_event, basic_auth, call_id, disconnect_event
from tests.conftest import DASHBOARD_PASSWORD, DASHBOARD_USER
from tests.dashboard.test_browser import (  # noqa: F401 (fixtures)
    browser,
    call_ends,
    no_csp_violations,
    server,
    shot,
    text_of,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CRASHING = "+12025550111"


def post(base: str, route: str, payload: dict[str, Any], headers: dict[str, str]) -> int:
    reply = requests.post(
        f"{base}/callbacks/{route}",
        data=json.dumps(payload),
        headers={"Content-Type": "application/json", **headers},
        timeout=10,
    )
    return reply.status_code


def log_in(driver: Any, base: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(base + "/dashboard/login")
    driver.find_element(By.ID, "username").send_keys(DASHBOARD_USER)
    driver.find_element(By.ID, "password").send_keys(DASHBOARD_PASSWORD)
    driver.find_element(By.ID, "login-submit").click()
    wait_for(driver, lambda d: d.find_elements(By.ID, "disconnects"))


def test_operator_finds_each_category_and_the_credential_banner(server, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    base, app = server
    flow = app.extensions["flows"].register(Flow("crashing", numbers=[CRASHING]))
    flow.on("answer")(lambda event: 1 / 0)
    auth = basic_auth()
    crashed = call_id()
    assert post(base, "answer", answer_event(callId=crashed, **{"from": CRASHING}), auth) == 200
    hangup = disconnect_event(callId=crashed, cause="hangup", errorMessage=ABSENT, errorId=ABSENT)
    assert post(base, "disconnect", hangup, auth) == 204
    busy = call_id()
    assert post(base, "disconnect", disconnect_event(callId=busy, cause="busy"), auth) == 204
    unreachable = call_id()
    raw = (
        "HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: "
        "/callbacks/answer (Caused by NewConnectionError('Failed to establish a new "
        "connection: [Errno 111] Connection refused'))"
    )
    error = disconnect_event(callId=unreachable, cause="callback-error", errorMessage=raw)
    assert post(base, "disconnect", error, auth) == 204
    wrong = {"Authorization": "Basic " + base64.b64encode(b"bandwidth:old-password").decode()}
    refused = call_id()
    assert post(base, "answer", answer_event(callId=refused), wrong) == 401

    log_in(browser, base)
    banner = browser.find_element(By.ID, "credential-alarm")
    assert "Callbacks are being refused" in banner.text
    assert "from 127.0.0.1 (username tried: bandwidth)" in banner.text
    shot(browser, "categories-0-first-page")
    rows = browser.find_elements(By.CSS_SELECTOR, "#disconnects tbody tr[data-id]")
    by_category = {row.get_attribute("data-category"): row for row in rows}
    # The crashed call ended with an ordinary hangup and is still in the default view.
    assert set(by_category) == {"handler-error", "busy", "callback-error"}
    assert crashed in by_category["handler-error"].text
    message = by_category["callback-error"].find_element(By.CSS_SELECTOR, "td.message")
    assert message.text.startswith("connection refused at http://127.0.0.1:9/callbacks/answer")
    assert "HTTPConnectionPool" not in message.text  # the detail is folded away...
    message.find_element(By.TAG_NAME, "summary").click()
    wait_for(browser, lambda d: "HTTPConnectionPool" in message.text)  # ...one click away
    shot(browser, "categories-1-default-view-with-banner")

    Select(browser.find_element(By.ID, "f-category")).select_by_value("handler-error")
    browser.find_element(By.ID, "f-submit").click()
    wait_for(browser, lambda d: "category=handler-error" in d.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "#disconnects tbody tr[data-id]")
    assert [row.get_attribute("data-category") for row in rows] == ["handler-error"]
    assert browser.find_elements(By.ID, "credential-alarm")  # on every page
    shot(browser, "categories-2-filtered-handler-error")

    browser.find_element(By.CSS_SELECTOR, "#credential-alarm a").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "credential-failures"))
    log = browser.find_element(By.ID, "credential-failures").text
    assert "bandwidth" in log and "old-password" not in browser.page_source
    assert refused in log
    shot(browser, "categories-3-credential-log")
    no_csp_violations(browser)


def test_a_busy_visitor_is_told_the_truth(server, browser):  # noqa: F811
    from selenium.webdriver.common.by import By

    base, _app = server
    browser.get(base + "/click-to-call")
    call_ends(browser, "(202) 555-0486")  # a busy sandbox callee
    assert text_of(browser, "call-state").startswith("Your line was busy")
    steps = browser.find_elements(By.CSS_SELECTOR, "#progress li[data-step]")
    visible = [s.get_attribute("data-step") for s in steps if s.is_displayed()]
    assert visible == ["queued", "ended"]  # never "You answered" or "Connected"
    assert "busy)" not in browser.find_element(By.ID, "progress").text
    shot(browser, "click-to-call-busy-ended")
    no_csp_violations(browser)
