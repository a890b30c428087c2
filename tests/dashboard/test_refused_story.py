"""A call whose callbacks were refused for their credentials: its page tells what happened
(from, to, times, the routes refused and why, what its disconnect said, for a person), the
credential log names the route that ended it, and the banner's words follow the latest
refusals (missing or wrong)."""

from __future__ import annotations

import html
import re

import pytest

from tests.callbacks.helpers import answer_event, basic_auth, call_id, disconnect_event

RAW_401 = "Callback to https://app.example.com/callbacks/answer returned HTTP 401"


@pytest.fixture(autouse=True)
def _no_grace(monkeypatch):
    from store import refusals

    monkeypatch.setattr(refusals, "CHALLENGE_GRACE", 0.0)


def refused_without_credentials(bw, cid: str) -> None:
    """Bandwidth's story of a call created without credentials: the answer is refused (not
    logged: it looks like a challenge's first half), the call ends callback-error, and its
    disconnect, sent without credentials too, is refused."""
    assert bw.post("answer", answer_event(callId=cid), auth={}).status_code == 401
    event = disconnect_event(callId=cid, cause="callback-error", errorMessage=RAW_401)
    assert bw.post("disconnect", event, auth={}).status_code == 401


def section(page: str, element_id: str, end: str) -> str:
    part = page[page.index(f'id="{element_id}"') :]
    part = part[part.index(">") + 1 :]
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", part[: part.index(end)]).split()))


def test_the_call_page_tells_what_happened(operator, bw):
    cid = call_id()
    refused_without_credentials(bw, cid)
    reply = operator.get(f"/dashboard/calls/{cid}")
    assert reply.status_code == 200
    story = section(reply.get_data(as_text=True), "refused-call", "</section>")
    assert "The app refused 2 callbacks of this call" in story
    assert (
        "its /callbacks/answer was refused, so Bandwidth ended the call with callback-error"
        in story
    )
    assert "From +12025550100 To +12025550123" in story
    assert re.search(r"First refused \d{4}-\d\d-\d\d .* UTC Last refused", story)
    assert "/callbacks/answer : 401: sent without credentials" in story
    assert "/callbacks/disconnect : 401: sent without credentials" in story
    # The disconnect's message as a person reads it, the original one click away.
    assert "Its disconnect said callback-error your app refused the callback (401)" in story
    assert "technical detail " + RAW_401 in story


def test_the_credential_log_names_the_route_that_ended_the_call(operator, bw):
    cid = call_id()
    refused_without_credentials(bw, cid)
    log = operator.get("/api/credential-failures").get_json()["credentialFailures"]
    assert sorted((row["route"], row["kind"]) for row in log) == [
        ("answer", "missing"),
        ("disconnect", "missing"),
    ]
    assert {row["lastCallId"] for row in log} == {cid}


def test_the_banner_follows_the_latest_refusals(operator, bw):
    wrong = basic_auth(password="not-the-password")
    assert bw.post("answer", answer_event(callId=call_id()), auth=wrong).status_code == 401
    page = operator.get("/dashboard").get_data(as_text=True)
    banner = section(page, "credential-alarm", "</p>")
    assert "the credentials Bandwidth sends do not match" in banner
    assert "without credentials" not in banner

    refused_without_credentials(bw, call_id())  # the latest refusals: none sent
    page = operator.get("/dashboard").get_data(as_text=True)
    banner = section(page, "credential-alarm", "</p>")
    assert banner.startswith("Callbacks are being refused: they arrive without the credentials")
    assert "do not match" not in banner.split(".")[0]
    assert "some came with credentials that do not match too" in banner
