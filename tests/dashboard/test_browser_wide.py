"""The disconnect list at desktop widths (1280 and 1920 px), in real headless Chromium: the
table fits its container, so every column (the error message and SIP last) is in view
without a sideways scroll; long messages wrap.  Screenshots: artifacts/screenshots/wide-*.png.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.callbacks.helpers import answer_event, call_id, disconnect_event
from tests.dashboard.test_browser import (  # noqa: F401  (browser and server are fixtures)
    _callback,
    browser,
    no_csp_violations,
    server,
    shot,
)
from tests.dashboard.test_browser_narrow import LONG_TAG, log_in, seed

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RAW_ERROR = (
    "HTTPConnectionPool(host='callbacks.internal.example.com', port=8080): Max retries exceeded"
    " with url: /callbacks/answer?tenant=0123456789abcdef0123456789abcdef (Caused by"
    " NewConnectionError('<urllib3.connection.HTTPConnection object at 0x7f1c2b3a4d50>:"
    " Failed to establish a new connection: [Errno 111] Connection refused'))"
)
UNKNOWN_ERROR = "Something this app does not recognise: " + "x" * 40 + " " + "y/" * 60

_FITS = """
const table = document.getElementById('disconnects');
const box = table.closest('.table-scroll') || table.parentElement;
const main = document.querySelector('main');
const cells = [...table.querySelectorAll('th, td')];
return {
  table: table.getBoundingClientRect().right,
  box: box.getBoundingClientRect().right,
  main: main.getBoundingClientRect().right,
  scroll: box.scrollWidth, client: box.clientWidth,
  page: document.documentElement.scrollWidth, viewport: window.innerWidth,
  cells: Math.max(...cells.map((c) => c.getBoundingClientRect().right)),
};
"""


def desktop(driver: Any, width: int) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
    )


@pytest.mark.parametrize("width", [1280, 1920])
def test_the_disconnect_table_fits_its_container_at_desktop_widths(server, browser, width):  # noqa: F811
    from selenium.webdriver.common.by import By

    base, _app = server
    seed(base)
    for message in (RAW_ERROR, UNKNOWN_ERROR):
        cid = call_id()
        _callback(base, "answer", answer_event(callId=cid, tag=LONG_TAG))
        event = disconnect_event(
            callId=cid, cause="callback-error", errorMessage=message, tag=LONG_TAG
        )
        _callback(base, "disconnect", event)
    desktop(browser, width)
    log_in(browser, base, width)
    browser.get(base + "/dashboard")
    sizes = browser.execute_script(_FITS)
    shot(browser, f"wide-{width}-list")
    browser.execute_script("document.getElementById('disconnects').scrollIntoView()")
    shot(browser, f"wide-{width}-table")
    assert sizes["viewport"] == width, sizes
    assert sizes["table"] <= sizes["box"] + 0.5, sizes
    assert sizes["cells"] <= sizes["box"] + 0.5, sizes  # the SIP column too
    assert sizes["box"] <= sizes["main"] + 0.5, sizes
    assert sizes["scroll"] <= sizes["client"], sizes  # nothing to scroll sideways
    assert sizes["page"] <= width, sizes
    # The whole of a long message stays available.
    messages = browser.find_elements(By.CSS_SELECTOR, "#disconnects td.message")
    assert any("does not recognise" in m.text for m in messages)
    no_csp_violations(browser)
