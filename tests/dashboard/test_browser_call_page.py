"""Real headless Chromium on a call's page, for calls that really ran in the in-app sandbox:
a transfer (the demo IVR sends the caller to sales) and a recorded voicemail.

The operator reads the summary, follows the legs both ways, sees the sequence diagram, plays
the recording and replays a callback whose handler changed since; the page also works at
375 px wide.  Screenshots go to artifacts/screenshots/call-page-*.png.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

import config
from calls.outbound import place_call
from store import get_store
from tests.conftest import DASHBOARD_PASSWORD, DASHBOARD_USER
from tests.dashboard import test_browser
from tests.dashboard.test_browser import no_csp_violations, shot, text_of, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The real app with its in-app sandbox on 127.0.0.1 (``server``) and headless Chromium
# (``browser``), the fixtures of test_browser.py.
server = test_browser.server
browser = test_browser.browser

CALLEE = "+12025550123"
SALES = "+12025550142"  # the demo IVR's sales line


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "VOICE_FLOWS": "examples.ivr,tests.dashboard.voicemail_flow"}


def ended(app: Any, call_id: str) -> bool:
    with app.app_context():
        rows = get_store().events_for_call(call_id)
    return any(r["event_type"] in ("disconnect", "transferDisconnect") for r in rows)


def wait_until(condition: Any, timeout: float = 60.0) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(None, timeout, poll_frequency=0.2).until(lambda _: condition())


def script_callee(base: str, app: Any, number: str, **script: Any) -> None:
    api = config.voice_api(app.config)
    reply = requests.put(
        f"{base}/sandbox/sandbox-control/callees/{number}",
        json=script,
        auth=(api["username"], api["password"]),
        timeout=10,
    )
    assert reply.status_code in (200, 204), reply.text


def call(app: Any, to: str, flow: str) -> str:
    with app.app_context():
        return str(place_call(to=to, flow=flow)["callId"])


def log_in(browser: Any, base: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(base + "/dashboard/login")
    browser.find_element(By.ID, "username").send_keys(DASHBOARD_USER)
    browser.find_element(By.ID, "password").send_keys(DASHBOARD_PASSWORD)
    browser.find_element(By.ID, "login-submit").click()
    wait_for(browser, lambda d: "/login" not in d.current_url)


def fits(browser: Any) -> bool:
    return bool(
        browser.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1"
        )
    )


def test_a_transfer_call_page(server, browser, monkeypatch):
    from selenium.webdriver.common.by import By

    base, app = server
    script_callee(base, app, CALLEE, gatherDigits=["1"])  # sales: a transfer
    caller = call(app, CALLEE, "demo-ivr")
    wait_until(lambda: ended(app, caller))
    with app.app_context():
        legs = {r["call_id"] for r in get_store().events_for_parent_call(caller)}
    assert len(legs) == 1
    (agent,) = legs
    wait_until(lambda: ended(app, agent))

    log_in(browser, base)
    browser.get(f"{base}/dashboard/calls/{caller}")
    assert text_of(browser, "summary-to") == CALLEE
    assert text_of(browser, "summary-direction") == "outbound"
    assert text_of(browser, "summary-flow") == "demo-ivr"
    assert text_of(browser, "summary-outcome").startswith("hangup")
    assert "min" in text_of(browser, "summary-duration") or " s" in text_of(
        browser, "summary-duration"
    )
    diagram = browser.find_element(By.CSS_SELECTOR, "#sequence svg")
    assert diagram.is_displayed() and diagram.size["height"] > 100
    entries = browser.find_elements(By.CSS_SELECTOR, "#timeline > li[id^=event-]")
    requests_drawn = browser.find_elements(By.CSS_SELECTOR, "#sequence a.seq-request")
    drawn = [a.text for a in requests_drawn]
    assert drawn[:3] == ["answer", "gather", "agent: transferAnswer"]
    # The agent's hang-up reaches both legs at once: their two callbacks race.
    assert set(drawn[3:5]) == {"agent: transferDisconnect (hangup)", "transferComplete (hangup)"}
    assert drawn[5:] == ["disconnect (hangup)"]
    own = browser.find_elements(By.CSS_SELECTOR, "#sequence a.seq-request:not(.seq-leg)")
    assert len(own) == len(entries)
    shot(browser, "call-page-1-transfer-caller")

    browser.find_element(By.CSS_SELECTOR, f'#leg-transferred-to a[href$="{agent}"]').click()
    wait_for(browser, lambda d: d.current_url.endswith(agent))
    assert text_of(browser, "summary-to") == SALES
    back = browser.find_element(By.CSS_SELECTOR, "#leg-transferred-from a")
    assert back.text == caller
    shot(browser, "call-page-2-transfer-agent")
    back.click()
    wait_for(browser, lambda d: d.current_url.endswith(caller))

    browser.set_window_size(375, 2400)
    browser.get(f"{base}/dashboard/calls/{caller}")
    shot(browser, "call-page-3-narrow")
    wide = browser.execute_script(
        "return [...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)"
        ".map(e => e.tagName + '#' + e.id + '.' + e.className).slice(0, 5)"
    )
    assert fits(browser), wide
    figure = browser.find_element(By.ID, "sequence")
    assert figure.size["width"] <= 375 and figure.is_displayed()
    browser.set_window_size(1400, 1000)

    # The menu changed since the call: replay shows the changed line only.
    import examples.ivr

    monkeypatch.setattr(examples.ivr, "MENU", "New menu: for sales, press 1.")
    browser.find_element(By.CSS_SELECTOR, "#timeline form.replay button").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "replay-verdict"))
    assert "changed" in text_of(browser, "replay-verdict")
    added = browser.find_elements(By.CSS_SELECTOR, "#reply-diff .diff-add")
    removed = browser.find_elements(By.CSS_SELECTOR, "#reply-diff .diff-remove")
    assert [line.text.strip() for line in added] == [
        "+    <SpeakSentence>New menu: for sales, press 1.</SpeakSentence>"
    ]
    assert len(removed) == 1 and "Thanks for calling" in removed[0].text
    shot(browser, "call-page-4-replay-diff")
    no_csp_violations(browser)


def test_a_recorded_call_page_plays_its_recording(server, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    base, app = server
    cid = call(app, CALLEE, "voicemail")

    def available() -> bool:
        with app.app_context():
            rows = get_store().events_for_call(cid)
        return any(r["event_type"] == "recordingAvailable" for r in rows)

    wait_until(available)
    log_in(browser, base)
    browser.get(f"{base}/dashboard/calls/{cid}")
    audio = browser.find_element(By.CSS_SELECTOR, "#recordings audio")
    assert "/dashboard/calls/" in audio.get_attribute("src")
    wait_for(browser, lambda d: d.execute_script("return arguments[0].readyState", audio) >= 1)
    duration = browser.execute_script("return arguments[0].duration", audio)
    assert 3.5 < duration < 4.5  # Record's maxDuration, 4 simulated seconds
    # The operator presses the control's play button (its left end).
    left = -audio.size["width"] // 2 + 16
    ActionChains(browser).move_to_element_with_offset(audio, left, 0).click().perform()
    wait_for(browser, lambda d: d.execute_script("return arguments[0].currentTime", audio) > 0.2)
    assert browser.execute_script("return arguments[0].error", audio) is None
    tag = browser.find_element(By.CSS_SELECTOR, "#timeline li.recordComplete dd.tag").text
    assert "st2" not in tag and '"step": "recording"' in tag and "voicemail" in tag
    shot(browser, "call-page-5-recording")
    no_csp_violations(browser)
