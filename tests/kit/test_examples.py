"""The project's own flows, tested with the kit as a user would test theirs: the demo IVR
(examples/ivr.py) dialled in, and click-to-call (dashboard/clicktocall_flow.py) placed
through its public form; on SQLite and PostgreSQL (the store and the sandbox's calls)."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from tests.dashboard.conftest import csrf_from
from tests.kit.conftest import CALLER, IVR_NUMBER, SALES, SUPPORT

VISITOR = "+12025550133"


@pytest.fixture
def voice_app_config(database: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {"VOICE_FLOWS": "examples.ivr"}
    if database:
        config["DATABASE_URL"] = database
    return config


def test_the_ivr_sends_sales_callers_to_sales(voice_call):
    call = voice_call.dial(IVR_NUMBER, from_=CALLER)
    call.expect_heard("Thanks for calling. For sales, press 1. For support, press 2.")
    call.press("1")
    call.expect_heard("Connecting you to sales.")
    agent = call.expect_transfer_to(SALES)
    agent.expect_heard("A caller from the demo IVR is on the line.")
    # The agent talks for SANDBOX_BRIDGE_SECONDS, then hangs up: transferComplete.
    call.expect_heard("The call with our team has ended. Goodbye.")
    call.expect_ended("hangup")
    assert agent.disconnect_cause == "hangup"
    events = [c.event_type for c in call.callbacks]
    assert events == [
        "initiate",
        "gather",
        "transferAnswer",
        "transferDisconnect",
        "transferComplete",
        "disconnect",
    ]
    stored = _stored_events(voice_call, call.call_id)
    assert stored == ["initiate", "gather", "transferComplete", "disconnect"]


def test_the_ivr_carries_the_order_number_to_support(voice_call):
    call = voice_call.dial(IVR_NUMBER, from_=CALLER)
    call.expect_heard("For support, press 2.")
    call.press("2")
    call.expect_heard("Please enter your 4 digit order number.")
    assert call.tag_state() == {"step": "order", "department": "support"}
    call.press("4321")
    call.expect_heard("Order 4 3 2 1. Connecting you to support.")
    agent = call.expect_transfer_to(SUPPORT)
    assert agent.callbacks == []  # still ringing
    agent.expect_heard("A caller from the demo IVR is on the line.")
    assert agent.callbacks[0].state == {"step": "order", "department": "support"}
    call.hang_up()  # the caller leaves during the transfer: the agent's leg ends too
    assert call.disconnect_cause == "hangup"
    assert agent.ended
    assert call.callbacks[2].payload["digits"] == "4321"
    assert call.tag_state(1) == {"step": "department"}


def test_the_ivr_says_goodbye_to_a_wrong_choice_and_to_silence(voice_call):
    wrong = voice_call.dial(IVR_NUMBER, from_=CALLER)
    wrong.press("9")
    wrong.expect_heard("Sorry, that is not a choice. Goodbye.")
    wrong.expect_ended("hangup")

    silent = voice_call.dial(IVR_NUMBER, from_="+12025550112")
    silent.stay_silent()
    silent.expect_heard("We did not hear a choice. Goodbye.")
    silent.expect_ended("hangup")

    half = voice_call.dial(IVR_NUMBER, from_="+12025550113")
    half.press("2")
    half.expect_heard("order number")
    half.advance(5)  # firstDigitTimeout: 5 s after the prompt
    half.expect_heard("We did not get an order number. Goodbye.")
    assert half.callbacks[-2].payload["digits"] == ""


def test_click_to_call_connects_the_visitor_to_the_agent(voice_call):
    client = voice_call.client
    token = csrf_from(client.get("/click-to-call").get_data(as_text=True))
    placed = client.post("/click-to-call", data={"csrf_token": token, "number": VISITOR})
    assert placed.status_code == 303
    progress = placed.headers["Location"]

    call = voice_call.expect_call(to=VISITOR)
    call.expect_heard("Thanks for your request. Connecting you to an agent now.")
    agent_number = voice_call.app.config.get("CLICK_TO_CALL_AGENT") or "+12025550142"
    agent = call.expect_transfer_to(agent_number)
    agent.expect_heard("You have a click-to-call visitor on the line.")
    assert _status(client, progress)["state"] == "connected"
    call.expect_heard("The agent has left the call. Goodbye.")
    call.expect_ended("hangup")
    ended = _status(client, progress)
    assert 0 < ended.pop("askAgainIn") <= 300  # seconds left of the number's cooldown
    assert ended == {
        "state": "ended",
        "cause": "hangup",
        "reached": "connected",
        "message": "Your call with our agent has ended. Thank you for calling. "
        "You can ask for another call in 5 minutes.",
    }
    assert set(call.callbacks[0].state) == {"visitor"}  # the state click-to-call placed it with
    assert call.tag_state()["step"] == "connecting"


def test_click_to_call_to_a_busy_visitor(voice_call):
    voice_call.script(VISITOR, answer="busy")
    client = voice_call.client
    token = csrf_from(client.get("/click-to-call").get_data(as_text=True))
    placed = client.post("/click-to-call", data={"csrf_token": token, "number": VISITOR})
    call = voice_call.expect_call(to=VISITOR)
    call.expect_ended("busy")
    status = _status(client, placed.headers["Location"])
    assert (status["state"], status["cause"], status["reached"]) == ("ended", "busy", "queued")
    assert status["message"].startswith("Your line was busy")


def _status(client: Any, progress: str) -> dict[str, Any]:
    reply = client.get(progress.rstrip("/") + "/status")
    assert reply.status_code == 200, reply.get_data(as_text=True)
    return dict(reply.get_json())


def _stored_events(kit: Any, call_id: str) -> list[str]:
    from store import get_store

    return [row["event_type"] for row in get_store(kit.app).events_for_call(call_id)]


def test_the_call_page_shows_what_the_caller_heard(voice_call):
    """An operator opening a sandbox call's page reads what the caller heard and pressed."""
    from tests.conftest import DASHBOARD_PASSWORD, DASHBOARD_USER
    from tests.dashboard.conftest import login

    call = voice_call.dial(IVR_NUMBER, from_=CALLER)
    call.expect_heard("For sales, press 1.")
    call.press("7")
    call.expect_ended()
    voice_call.app.config.update(
        DASHBOARD_USERNAME=DASHBOARD_USER, DASHBOARD_PASSWORD=DASHBOARD_PASSWORD
    )
    client = voice_call.app.test_client()
    login(client)
    page = client.get(f"/dashboard/calls/{call.call_id}").get_data(as_text=True)
    heard = page[page.index('id="caller-heard"') :]
    assert "For sales, press 1." in heard
    pressed = heard.index('<span class="badge">pressed</span> 7')
    assert heard.index("For sales, press 1.") < pressed < heard.index("not a choice")


def _seconds(offset: str) -> float:
    return float(offset.split()[0])


def _diagram(page: str) -> list[tuple[float, str]]:
    """(offset, request label) of each row of a call page's sequence diagram."""
    rows = re.findall(
        r'<text class="seq-offset"[^>]*>([^<]+)</text>\s*<a [^>]*>\s*<title>[^<]*</title>\s*'
        r"<line [^>]*/>\s*<text [^>]*>([^<]+)</text>",
        page,
    )
    return [(_seconds(offset), html.unescape(label)) for offset, label in rows]


def _heard(page: str) -> list[tuple[float, str]]:
    section = page[page.index('id="caller-heard"') :]
    items = re.findall(
        r'<li class="heard-(\w+)">\s*<span class="muted">([^<·]+)[^<]*</span>\s*'
        r'<span class="badge">\w+</span>\s*([^<]*)</li>',
        section,
    )
    return [(_seconds(at), html.unescape(text).strip()) for _, at, text in items]


def test_the_transcript_and_the_diagram_share_one_time_base_on_every_leg(voice_call):
    """One moment, one offset: seconds since the whole call began, in the sequence diagram
    and in what the caller heard, on the caller's page and on the agent's."""
    from tests.conftest import DASHBOARD_PASSWORD, DASHBOARD_USER
    from tests.dashboard.conftest import login

    call = voice_call.dial(IVR_NUMBER, from_=CALLER)
    call.expect_heard("For sales, press 1.")
    call.advance(3)  # the simulated clock runs ahead of the wall clock
    call.press("1")
    agent = call.expect_transfer_to(SALES)
    agent.expect_heard("A caller from the demo IVR is on the line.")
    call.expect_ended("hangup")
    voice_call.app.config.update(
        DASHBOARD_USERNAME=DASHBOARD_USER, DASHBOARD_PASSWORD=DASHBOARD_PASSWORD
    )
    client = voice_call.app.test_client()
    login(client)
    caller_page = client.get(f"/dashboard/calls/{call.call_id}").get_data(as_text=True)
    agent_page = client.get(f"/dashboard/calls/{agent.call_id}").get_data(as_text=True)

    drawn = dict((label, at) for at, label in _diagram(caller_page))
    heard = _heard(caller_page)
    greeting = next(at for at, text in heard if text.startswith("Thanks for calling."))
    sales = next(at for at, text in heard if text == "Connecting you to sales.")
    # The greeting is the reply to initiate, heard before the gather was sent; the
    # sales line is the reply to that gather.
    assert drawn["initiate"] <= greeting <= drawn["gather"] <= sales
    assert drawn["gather"] <= sales <= drawn["agent: transferAnswer"]
    # The agent's page counts from the caller's start too: its transferAnswer has the
    # offset the caller's page gives it, and the agent heard its whisper after it.
    agent_drawn = dict((label, at) for at, label in _diagram(agent_page))
    assert agent_drawn["transferAnswer"] == drawn["agent: transferAnswer"] > 0
    whisper = next(at for at, text in _heard(agent_page) if "demo IVR is on the line" in text)
    assert whisper >= agent_drawn["transferAnswer"]
    assert 'id="heard-base"' in agent_page
    # One base, not after anything shown: no negative time on either page.
    for shown in (caller_page, agent_page):
        times = [at for at, _ in _diagram(shown)] + [at for at, _ in _heard(shown)]
        assert times and min(times) >= 0, times
