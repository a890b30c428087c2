"""Every page the app serves, in real headless Chromium on a 375 x 812 phone screen.

No page may scroll sideways as a whole (``document.documentElement.scrollWidth`` stays within
the screen): a wide table or chart scrolls inside its own box, long tokens (call ids, URLs,
tags) wrap.  Beyond that: the list's chart shows its newest bucket first, the refused-calls
table is a list of cards, and the sandbox page's status line never covers a keypad.  At a
tablet's 768 px no page scrolls sideways either.  Screenshots go to
artifacts/screenshots/narrow-*.png (the whole page, 375 px wide, in parts).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests

from sandbox.kit import voice_kit
from tests.callbacks.helpers import (
    answer_event,
    basic_auth,
    call_event,
    call_id,
    conference_event,
    disconnect_event,
)
from tests.conftest import DASHBOARD_PASSWORD, DASHBOARD_USER
from tests.dashboard.test_browser import (  # noqa: F401  (browser and server are fixtures)
    SCREENSHOTS,
    _callback,
    browser,
    call_ends,
    no_csp_violations,
    server,
    text_of,
    wait_for,
)
from tests.sandbox.test_page_browser import open_control_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTH = 375
SLICE = 1500
LONG_TAG = "order-" + "9f8e7d6c5b4a" * 6  # one unbroken token, wider than the screen
LONG_MESSAGE = (
    "The answer URL https://callbacks.example.com/callbacks/answer/with/a/rather/long/path"
    "?tenant=0123456789abcdef0123456789abcdef did not respond within 15 s"
)
CONFERENCE = "conf-11111111-22222222-3333-4444-5555-666666666666"


def phone(driver: Any, width: int = WIDTH) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 812, "deviceScaleFactor": 1, "mobile": True},
    )


# Elements reaching past the phone's right edge that no scroll box of theirs contains: what
# makes the page scroll sideways (for the failure message).  A mobile browser widens its
# layout viewport to such content, so innerWidth itself is checked against the phone's width.
_SIDEWAYS = """
const width = arguments[0];
const inScrollBox = (e) => {
  for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
    const x = getComputedStyle(p).overflowX;
    if (x === 'auto' || x === 'scroll' || x === 'hidden') return true;
  }
  return false;
};
return {
  viewport: window.innerWidth,
  page: document.documentElement.scrollWidth,
  wide: [...document.querySelectorAll('body *')]
    .filter((e) => e.getBoundingClientRect().right > width + 0.5 && !inScrollBox(e))
    .map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
         + (typeof e.className === 'string' && e.className ? '.' + e.className : ''))
    .slice(0, 8),
};
"""


def fits_the_phone(driver: Any, name: str | None, width: int = WIDTH) -> None:
    """The page does not scroll sideways; a screenshot of all of it is saved (``name``)."""
    sizes = driver.execute_script(_SIDEWAYS, width)
    if name:
        full_shot(driver, f"narrow-{name}")
    assert sizes["viewport"] == width, (name, sizes)
    assert sizes["page"] <= sizes["viewport"], (name, sizes)


def full_shot(driver: Any, name: str) -> None:
    """The whole page at the phone's width, in parts of at most ``SLICE`` px (readable at
    full size): the window itself only shows the first 812 px."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for part, top in enumerate(range(0, min(height, 12 * SLICE), SLICE), start=1):
        clip = {"x": 0, "y": top, "width": WIDTH, "height": min(SLICE, height - top), "scale": 1}
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
        )
        suffix = "" if part == 1 else f"-{part}"
        (SCREENSHOTS / f"{name}{suffix}.png").write_bytes(base64.b64decode(shot["data"]))


def rect(driver: Any, element: Any) -> dict[str, float]:
    return dict(
        driver.execute_script("return arguments[0].getBoundingClientRect().toJSON()", element)
    )


def inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    return inner["left"] >= outer["left"] - 0.5 and inner["right"] <= outer["right"] + 0.5


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["left"] < b["right"]
        and b["left"] < a["right"]
        and a["top"] < b["bottom"]
        and b["top"] < a["bottom"]
        and a["width"] > 0
        and b["width"] > 0
    )


def click_fresh(driver: Any, selector: str) -> None:
    """Click ``selector``'s element, found again if the page replaced it meanwhile (the
    sandbox page redraws its calls every 1.5 s)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def attempt(d: Any) -> bool:
        try:
            d.find_element(By.CSS_SELECTOR, selector).click()
        except StaleElementReferenceException:
            return False
        return True

    wait_for(driver, attempt)


def cards_fit(driver: Any, table: str, labels: list[str]) -> None:
    """Each row of ``table`` is a card inside the screen whose lines start with their
    column's name; the table has nothing to scroll sideways."""
    from selenium.webdriver.common.by import By

    element = driver.find_element(By.CSS_SELECTOR, table)
    assert not driver.find_element(By.CSS_SELECTOR, table + " thead").is_displayed()
    assert driver.execute_script(
        "return arguments[0].scrollWidth <= arguments[0].clientWidth", element
    )
    cards = driver.find_elements(By.CSS_SELECTOR, table + " tbody tr")
    assert cards
    for card in cards:
        assert inside(rect(driver, card), {"left": 0, "right": WIDTH}), rect(driver, card)
    shown = driver.execute_script(
        "return Array.from(document.querySelector(arguments[0]).querySelectorAll("
        "'tbody tr:first-child td'), (td) => getComputedStyle(td, '::before').content);",
        table,
    )
    assert shown[: len(labels)] == [f'"{label}"' for label in labels]


def seed(base: str) -> dict[str, str]:
    """A failed call with long tokens, a call refused for its credentials, a rejected
    request and a conference."""
    calls = {"failed": call_id(), "refused": call_id(), "member": call_id()}
    failed = calls["failed"]
    _callback(base, "answer", answer_event(callId=failed, tag=LONG_TAG))
    _callback(base, "gather", call_event("gather", callId=failed, tag=LONG_TAG, digits="1"))
    _callback(
        base,
        "disconnect",
        disconnect_event(
            callId=failed, cause="callback-error", errorMessage=LONG_MESSAGE, tag=LONG_TAG
        ),
    )
    wrong = {"Authorization": "Basic " + base64.b64encode(b"bandwidth:old-password").decode()}
    refused = requests.post(
        f"{base}/callbacks/answer",
        data=json.dumps(answer_event(callId=calls["refused"])),
        headers={"Content-Type": "application/json", **wrong},
        timeout=10,
    )
    assert refused.status_code == 401
    rejected = requests.post(
        f"{base}/callbacks/disconnect",
        data='{"eventType": "disconnect", "callId": "' + "x" * 300 + '", ',
        headers={"Content-Type": "application/json", **basic_auth()},
        timeout=10,
    )
    assert rejected.status_code == 400
    for event_type, member in (
        ("conferenceCreated", None),
        ("conferenceMemberJoin", calls["member"]),
        ("conferenceMemberJoin", failed),
        ("conferenceMemberExit", calls["member"]),
        ("conferenceCompleted", None),
    ):
        fields = {"conferenceId": CONFERENCE, "tag": LONG_TAG}
        if member:
            fields["callId"] = member
        _callback(base, "conference", conference_event(event_type, **fields))
    return calls


def log_in(driver: Any, base: str, width: int = WIDTH) -> None:
    from selenium.webdriver.common.by import By

    driver.get(base + "/dashboard/login")
    fits_the_phone(driver, "01-login" if width == WIDTH else None, width)
    driver.find_element(By.ID, "username").send_keys(DASHBOARD_USER)
    driver.find_element(By.ID, "password").send_keys(DASHBOARD_PASSWORD)
    driver.find_element(By.ID, "login-submit").click()
    wait_for(driver, lambda d: d.find_elements(By.ID, "disconnects"))


def test_every_operator_page_fits_a_phone(server, browser, monkeypatch):  # noqa: F811
    from selenium.webdriver.common.by import By

    base, _app = server
    calls = seed(base)
    phone(browser)
    log_in(browser, base)
    fits_the_phone(browser, "02-list")

    # The chart scrolls in its own box and starts at its newest bucket.
    box = browser.find_element(By.CSS_SELECTOR, "#chart .chart-scroll")
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart .chart-scroll rect")
    labels = browser.find_elements(By.CSS_SELECTOR, "#chart text[data-axis]")
    assert bars and labels
    shown = rect(browser, box)
    assert shown["right"] <= WIDTH
    assert inside(rect(browser, bars[-1]), shown), "the newest bucket is scrolled out of view"
    assert inside(rect(browser, labels[-1]), shown)
    assert not inside(rect(browser, labels[0]), shown)  # it does scroll: the oldest is off

    # The refused calls are cards of labelled lines, as the disconnects are.
    cards_fit(browser, "#refused-calls table", ["Last refused", "Category", "Route"])
    assert calls["refused"] in browser.find_element(By.ID, "refused-calls").text

    search = browser.find_element(By.ID, "f-q")
    search.send_keys("did not respond")
    browser.find_element(By.ID, "f-submit").click()
    wait_for(browser, lambda d: "q=did+not+respond" in d.current_url)
    assert [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#disconnects a.call-link")] == [
        calls["failed"]
    ]
    fits_the_phone(browser, "03-list-search")

    browser.get(f"{base}/dashboard/calls/{calls['failed']}")
    assert browser.find_element(By.CSS_SELECTOR, "#sequence svg").is_displayed()
    assert browser.find_elements(By.CSS_SELECTOR, "#timeline pre.bxml")
    fits_the_phone(browser, "04-call")
    figure = rect(browser, browser.find_element(By.ID, "sequence"))
    assert figure["right"] <= WIDTH

    # The menu changed since the call: the replay shows a line diff.
    import examples.ivr

    monkeypatch.setattr(examples.ivr, "MENU", "New menu: " + "for sales, press 1. " * 4)
    browser.find_element(By.CSS_SELECTOR, "#timeline form.replay button").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "replay-verdict"))
    assert browser.find_elements(By.CSS_SELECTOR, "#reply-diff .diff-add")
    fits_the_phone(browser, "05-replay")

    browser.get(f"{base}/dashboard/conferences/{CONFERENCE}")
    assert browser.find_elements(By.CSS_SELECTOR, "#timeline > li")
    fits_the_phone(browser, "06-conference")

    browser.get(f"{base}/dashboard/rejected")
    assert browser.find_elements(By.CSS_SELECTOR, "#rejected tbody tr[data-id]")
    fits_the_phone(browser, "07-rejected")
    cards_fit(browser, "#rejected", ["Received", "Route", "Method", "Status", "Reason"])

    browser.get(f"{base}/dashboard/credential-failures")
    assert calls["refused"] in browser.find_element(By.ID, "refused-calls").text
    fits_the_phone(browser, "08-credential-failures")
    cards_fit(browser, "#credential-failures", ["Last seen", "First seen", "Count", "Route"])
    cards_fit(browser, "#refused-calls table", ["Last refused", "Category", "Route"])

    browser.get(f"{base}/dashboard/calls/no-such-call")
    fits_the_phone(browser, "09-unknown-call")
    no_csp_violations(browser)


@pytest.mark.parametrize("width", [768])
def test_no_page_scrolls_sideways_on_a_tablet(server, browser, width):  # noqa: F811
    """Between the phone's cards and a desktop, wide tables scroll in their own box."""
    base, _app = server
    calls = seed(base)
    phone(browser, width)
    log_in(browser, base, width)
    for path in (
        "/dashboard",
        "/dashboard?q=did+not+respond",
        f"/dashboard/calls/{calls['failed']}",
        f"/dashboard/conferences/{CONFERENCE}",
        "/dashboard/rejected",
        "/dashboard/credential-failures",
        "/click-to-call",
    ):
        browser.get(base + path)
        fits_the_phone(browser, None, width)
    no_csp_violations(browser)


def test_the_visitor_pages_fit_a_phone(server, browser):  # noqa: F811
    from selenium.webdriver.common.by import By

    base, _app = server
    phone(browser)
    browser.get(base + "/")
    fits_the_phone(browser, "10-home")
    browser.get(base + "/click-to-call")
    fits_the_phone(browser, "11-click-to-call")
    browser.find_element(By.ID, "number").send_keys("+1 876 555 1234")
    browser.find_element(By.ID, "c2c-submit").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "c2c-error"))
    fits_the_phone(browser, "12-click-to-call-refused")
    call_ends(browser, "(202) 555-0486")  # busy in the sandbox
    fits_the_phone(browser, "13-click-to-call-progress")
    no_csp_violations(browser)


def test_the_sandbox_page_fits_a_phone_and_its_status_never_covers_a_keypad(
    browser: Any,  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By

    with voice_kit({"VOICE_FLOWS": "examples.ivr"}) as kit:
        call = kit.dial("+12025550199", from_="+12025550111")
        call.expect_heard("For support, press 2.")
        phone(browser)
        open_control_page(browser, kit)
        fits_the_phone(browser, "14-sandbox")

        keypad = f'[data-call-id="{call.call_id}"] .keypad'
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, keypad))
        browser.execute_script(
            "document.querySelector(arguments[0]).scrollIntoView({block: 'end'})", keypad
        )
        click_fresh(browser, keypad + ' button[data-digit="2"]')
        said = f'[data-call-id="{call.call_id}"] .note'
        wait_for(
            browser,
            lambda d: (
                "Pressed 2"
                in d.execute_script(
                    "const e = document.querySelector(arguments[0]); return e ? e.textContent : ''",
                    said,
                )
            ),
        )
        call.expect_heard("order number")
        browser.save_screenshot(str(SCREENSHOTS / "narrow-15-sandbox-pressed.png"))
        # Read in one script: the page replaces the list as it refreshes.
        boxes = browser.execute_script(
            "const of = (s) => [...document.querySelectorAll(s)]"
            "  .map((e) => e.getBoundingClientRect().toJSON());"
            "return {notes: of('.note, [role=status]'), pads: of('.keypad')};"
        )
        assert boxes["notes"] and boxes["pads"]
        for shown in boxes["notes"]:
            for pad in boxes["pads"]:
                assert not overlap(shown, pad), (shown, pad)
        # Dialling in from the page: its answer shows under the form, in the page's flow.
        dial = browser.find_element(By.ID, "dial-in")
        for key in "+12025550199":
            dial.find_element(By.CSS_SELECTOR, f'button.dial-digit[data-digit="{key}"]').click()
        dial.find_element(By.CSS_SELECTOR, "button.dial").click()
        wait_for(
            browser, lambda d: text_of(d, "dial-status").startswith("Calling +12025550199: c-")
        )
        wait_for(
            browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#calls [data-call-id]")) == 2
        )

        # The call's log (URLs, call ids) wraps too.  Scripts, not element handles: the page
        # replaces the list as it refreshes.
        log = f'[data-call-id="{call.call_id}"] details'
        browser.execute_script("document.querySelector(arguments[0]).click()", log + " summary")
        wait_for(
            browser,
            lambda d: d.execute_script(
                "const e = document.querySelector(arguments[0]);"
                " return e && e.open && e.querySelector('ol.log').offsetHeight > 0",
                log,
            ),
        )
        fits_the_phone(browser, "16-sandbox-pressed-log")
        no_csp_violations(browser)
