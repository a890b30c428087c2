"""Click-to-call tells the truth: only the steps that happened, a sentence for every ending,
and limits spent only on calls the Voice API may have placed."""

from __future__ import annotations

import re

import pytest

from app import create_app
from dashboard.clicktocall import visitor_message
from tests.callbacks.helpers import Bandwidth, answer_event, call_event, disconnect_event
from tests.calls.fake_bandwidth import CALL_ID, Reply, created_call
from tests.dashboard.test_click_to_call import ask, error_of
from tests.servers import closed_port

VISITOR = "+12025550123"


def follow(visitor, bandwidth, c2c_app, *events):
    """Ask for a call, deliver ``events`` (answer, agent, disconnect:<cause>), and return
    the status JSON and the progress page."""
    bandwidth.script(Reply(201, created_call()))
    location = ask(visitor, VISITOR).headers["Location"]
    tag = bandwidth.received[0].json()["tag"]
    bw = Bandwidth(c2c_app.test_client())
    for event in events:
        if event == "answer":
            assert bw.post("answer", answer_event(callId=CALL_ID, tag=tag)).status_code == 200
        elif event == "agent":
            leg = call_event("transferAnswer", callId="c-agent", parentCallId=CALL_ID, tag=tag)
            assert bw.post("transferAnswer", leg).status_code == 200
        else:
            cause = event.split(":", 1)[1]
            disconnect = disconnect_event(callId=CALL_ID, cause=cause, tag=tag)
            assert bw.post("disconnect", disconnect).status_code == 204
    return visitor.get(location + "/status").get_json(), visitor.get(location).get_data(
        as_text=True
    )


def shown_steps(page: str) -> list[str]:
    """The steps the page shows (not hidden), in order."""
    return re.findall(r'<li data-step="([a-z]+)"(?: class="[^"]*")?>', page)


def ticked_steps(page: str) -> list[str]:
    return re.findall(r'<li data-step="([a-z]+)" class="done"', page)


@pytest.mark.parametrize(
    ("events", "reached", "steps", "sentence"),
    [
        (["disconnect:busy"], "queued", ["queued", "ended"], "Your line was busy"),
        (["disconnect:timeout"], "queued", ["queued", "ended"], "nobody answered"),
        (["disconnect:rejected"], "queued", ["queued", "ended"], "declined the call"),
        (["disconnect:cancel"], "queued", ["queued", "ended"], "cancelled before you answered"),
        (["disconnect:hangup"], "queued", ["queued", "ended"], "ended before you answered"),
        (["disconnect:error"], "queued", ["queued", "ended"], "went wrong on our side"),
        (["disconnect:callback-error"], "queued", ["queued", "ended"], "went wrong on our side"),
        (
            ["answer", "disconnect:hangup"],
            "answered",
            ["queued", "answered", "ended"],
            "ended before an agent joined",
        ),
        (
            ["answer", "agent", "disconnect:hangup"],
            "connected",
            ["queued", "answered", "connected", "ended"],
            "call with our agent has ended",
        ),
    ],
)
def test_the_page_shows_only_what_happened_and_ends_with_a_sentence(
    visitor, bandwidth, c2c_app, events, reached, steps, sentence
):
    status, page = follow(visitor, bandwidth, c2c_app, *events)
    assert status["state"] == "ended" and status["reached"] == reached
    assert sentence in status["message"] and sentence in page
    assert shown_steps(page) == steps
    assert ticked_steps(page) == steps[:-1]  # never a step the call did not reach
    cause = events[-1].split(":", 1)[1]
    assert f"({cause})" not in page  # no cause code for the visitor


def test_a_call_in_progress_ticks_nothing_ahead(visitor, bandwidth, c2c_app):
    status, page = follow(visitor, bandwidth, c2c_app, "answer")
    assert status == {
        "state": "answered",
        "cause": None,
        "reached": "answered",
        "message": "Please hold: we are connecting you to an agent…",
        "askAgainIn": None,
    }
    assert shown_steps(page) == ["queued", "answered"]
    assert ticked_steps(page) == ["queued"]


def test_every_cause_has_a_sentence_without_its_code():
    from store.categories import BANDWIDTH_CAUSES

    for cause in (*BANDWIDTH_CAUSES, "something-new"):
        for reached in ("queued", "answered", "connected"):
            message = visitor_message("ended", cause, reached)
            assert message.endswith(".") and f"({cause})" not in message
            if "-" in cause:  # a code, not a word: never shown
                assert cause not in message
    for outcome in ("failed", "rejected", "rate_limited", "unavailable"):
        message = visitor_message("failed", outcome, None)
        assert "could not" in message or "cannot" in message or "too many" in message


@pytest.mark.parametrize(
    "refusal",
    [
        Reply(400, {"type": "validation", "description": "bad to"}),
        Reply(403, {"type": "forbidden", "description": "no"}),
    ],
    ids=["400", "403"],
)
def test_a_refused_placement_spends_no_limit(c2c_config, bandwidth, refusal):
    app = create_app({**c2c_config, "CLICK_TO_CALL_RATE_PER_ADDRESS": "1/hour"})
    client = app.test_client()
    bandwidth.script(refusal, Reply(201, created_call()))
    assert ask(client, VISITOR).status_code == 503
    # The same visitor, the same number, at once: neither limit was spent.
    reply = ask(client, VISITOR)
    assert reply.status_code == 303, error_of(reply)
    assert bandwidth.count == 2


def test_an_unreachable_voice_api_spends_no_limit(c2c_config, bandwidth):
    dead = {**c2c_config, "BW_VOICE_API_URL": f"http://127.0.0.1:{closed_port()}/api/v2"}
    dead["CLICK_TO_CALL_RATE_PER_ADDRESS"] = "1/hour"
    app = create_app(dead)
    client = app.test_client()
    first = ask(client, VISITOR)
    assert first.status_code == 503 and "cannot place calls right now" in error_of(first)
    again = ask(client, VISITOR)
    assert again.status_code == 503, error_of(again)  # not 429: no limit was spent
    assert "moment ago" not in error_of(again) and "too many" not in error_of(again)


def test_an_unknown_outcome_keeps_the_cooldown(visitor, bandwidth):
    bandwidth.script(Reply(500, {"type": "internal", "description": "boom"}))
    assert ask(visitor, VISITOR).status_code == 303  # followed as "unknown": it may ring
    reply = ask(visitor, VISITOR)
    assert reply.status_code == 429
    assert "called this number a moment ago" in error_of(reply)
    assert bandwidth.count == 1


def visible_lines(page: str) -> list[str]:
    """The texts a visitor sees in the progress box and under it (hidden items left out)."""
    box = page.split('<div id="progress"', 1)[1]
    shown = re.findall(r"<li data-step=\"[a-z]+\"(?: class=\"[^\"]*\")?>([^<]+)</li>", box)
    state = re.search(r'id="call-state"[^>]*>([^<]+)<', box)
    again = re.search(r'<p id="ask-again"( hidden)?>', page)
    extra = ["Ask for another call"] if again and not again.group(1) else []
    return [*shown, state.group(1) if state else "", *extra]


def test_while_placing_each_line_shows_once_and_another_call_is_not_offered(
    visitor, bandwidth, c2c_app
):
    status, page = follow(visitor, bandwidth, c2c_app)
    assert status["state"] == "queued" and status["askAgainIn"] is None
    lines = visible_lines(page)
    assert lines[0] == "Calling your phone"
    assert all("calling your phone" not in line.lower() for line in lines[1:]), lines
    assert "Ask for another call" not in lines


def test_once_answered_each_line_shows_once(visitor, bandwidth, c2c_app):
    answered_status, answered = follow(visitor, bandwidth, c2c_app, "answer")
    texts = [line.lower() for line in visible_lines(answered)]
    assert len(texts) == len(set(texts)) and "ask for another call" not in texts
    assert "you answered" not in answered_status["message"].lower()  # the step says it


@pytest.mark.parametrize("cause", ["busy", "timeout"])
def test_a_busy_or_unanswered_call_says_when_to_ask_again(visitor, bandwidth, c2c_app, cause):
    """Asking again within the cooldown is refused: the page says when it is not."""
    status, page = follow(visitor, bandwidth, c2c_app, f"disconnect:{cause}")
    cooldown = 300  # CLICK_TO_CALL_DESTINATION_COOLDOWN's default
    assert 0 < status["askAgainIn"] <= cooldown
    assert status["message"].endswith("You can ask for another call in 5 minutes.")
    assert "when your line is free" not in page and "when you are ready" not in page
    assert '<p id="ask-again" hidden>' in page  # not offered yet: it would be refused
    again = ask(visitor, VISITOR)
    assert again.status_code == 429 and "a moment ago" in error_of(again)


def test_after_the_cooldown_another_call_is_offered(c2c_config, bandwidth):
    app = create_app({**c2c_config, "CLICK_TO_CALL_DESTINATION_COOLDOWN": "0"})
    visitor = app.test_client()
    status, page = follow(visitor, bandwidth, app, "disconnect:busy")
    assert status["askAgainIn"] == 0
    assert status["message"].endswith("You can ask for another call now.")
    assert '<p id="ask-again">' in page
    bandwidth.script(Reply(201, created_call()))
    assert ask(visitor, VISITOR).status_code == 303


def test_a_call_not_placed_can_be_asked_for_again_at_once(c2c_config):
    dead = {**c2c_config, "BW_VOICE_API_URL": f"http://127.0.0.1:{closed_port()}/api/v2"}
    assert visitor_message("failed", "failed", None, 0).startswith("We could not place")
    app = create_app(dead)
    assert ask(app.test_client(), VISITOR).status_code == 503  # no progress page at all
