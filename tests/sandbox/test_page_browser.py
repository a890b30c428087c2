"""The control page in headless Chromium: what the caller heard, rendered by the server and
kept fresh by the page's script as the call goes on (the kit drives the call)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

import sandbox as sandbox_package
from sandbox.kit import voice_kit
from tests.dashboard.test_browser import browser, no_csp_violations, shot, wait_for  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def open_control_page(driver: Any, kit: Any) -> None:
    """The sandbox control page, with the sandbox's credentials on every request."""
    _, user, password = sandbox_package.credentials(kit.app.config)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}}
    )
    driver.get(kit.base_url + "/sandbox/sandbox-control/")


def test_the_page_shows_what_the_caller_heard_as_it_happens(browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    with voice_kit({"VOICE_FLOWS": "examples.ivr"}) as kit:
        call = kit.dial("+12025550199", from_="+12025550111")
        call.expect_heard("For support, press 2.")
        open_control_page(browser, kit)

        def lines(driver: Any) -> list[str]:
            # Read in one script: the page replaces the list as it refreshes.
            found = driver.execute_script(
                "return Array.from(document.querySelectorAll('ol.transcript li'),"
                " (item) => item.textContent);"
            )
            return [" ".join(text.split()) for text in found]

        assert lines(browser) == [
            "0.0 s answered",
            "0.0 s heard 'Thanks for calling. For sales, press 1. For support, press 2.'",
        ]
        assert "manual clock" in browser.find_element(By.TAG_NAME, "header").text
        call.press("2")  # the page's script brings the new lines in
        wait_for(browser, lambda driver: len(lines(driver)) == 4)
        assert lines(browser)[2:] == [
            "3.7 s pressed '2'",
            "3.7 s heard 'Please enter your 4 digit order number.'",
        ]
        shot(browser, "sandbox-transcript")
        no_csp_violations(browser)
