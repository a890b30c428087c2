"""Headless Chromium: an operator downloads a call as a regression test from its page."""

from __future__ import annotations

import time

import pytest

from callbacks.regression_export import file_name
from tests.callbacks.helpers import answer_event, call_event, call_id, disconnect_event
from tests.conftest import CALLBACK_PASSWORD, DASHBOARD_PASSWORD, DASHBOARD_USER
from tests.dashboard.test_browser import (  # noqa: F401 (fixtures)
    WAIT,
    _callback,
    browser,
    no_csp_violations,
    server,
    shot,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_operator_downloads_a_call_as_a_regression_test(server, browser, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By

    base, _app = server
    cid = call_id()
    _callback(base, "answer", answer_event(callId=cid))
    _callback(base, "gather", call_event("gather", callId=cid, digits="9"))
    _callback(base, "disconnect", disconnect_event(callId=cid, cause="hangup"))
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )

    browser.get(f"{base}/dashboard/calls/{cid}")  # the login form first, then back here
    browser.find_element(By.NAME, "username").send_keys(DASHBOARD_USER)
    browser.find_element(By.NAME, "password").send_keys(DASHBOARD_PASSWORD)
    browser.find_element(By.ID, "login-submit").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "regression-test"))
    link = browser.find_element(By.ID, "regression-test")
    assert link.text == "Download as a regression test"
    shot(browser, "call-page-regression-test")
    link.click()

    target = downloads / file_name(cid)
    deadline = time.monotonic() + WAIT
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # polling for the browser's download, with a deadline
    assert target.exists(), list(downloads.iterdir())
    text = target.read_text(encoding="utf-8")
    assert text.startswith(f'"""Regression test: call {cid}\n')
    assert text.count("Callback(") == 3 and CALLBACK_PASSWORD not in text
    assert browser.current_url == f"{base}/dashboard/calls/{cid}"  # still on the page
    no_csp_violations(browser)
