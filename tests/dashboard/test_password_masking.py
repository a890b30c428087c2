"""Passwords a handler writes into its BXML are stored as written (a repeated delivery
gets the same document) but every page and API shows them as ``[redacted]``."""

from __future__ import annotations

import json

from bxml import Gather, PhoneNumber, Response, Transfer
from callbacks import Flow
from callbacks.redact import mask_passwords, masked
from store import get_store
from tests.callbacks.helpers import answer_event, call_id, disconnect_event
from tests.dashboard.conftest import page_token, stored_event

SECRETS = ("not-the-right-one", "agent-secret", "fallback-secret", "replayed-secret")


def _document(password: str) -> Response:
    return Response(
        Gather(gather_url="https://example.com/g", password=password, max_digits=1),
        Transfer(
            PhoneNumber("+12025550100", username="agent", password="agent-secret"),
            transfer_complete_url="https://example.com/t",
            fallback_username="fb",
            fallback_password="fallback-secret",
        ),
    )


def _flow(app, password: str = "not-the-right-one", name: str = "with-passwords") -> None:
    registry = Flow(name)

    @registry.on("answer")
    def answer(event):
        return _document(password)

    @registry.on("transferAnswer")
    def agent(event):  # a Transfer here is invalid: the document is kept in the error detail
        return _document(password)

    app.extensions["flows"].register(registry, default=True)


def _shows_none(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, secret


def test_stored_and_repeated_replies_keep_the_password(operator, bw, app):
    _flow(app)
    cid = call_id()
    event = answer_event(callId=cid)
    first = bw.post("answer", event).get_data(as_text=True)
    again = bw.post("answer", event).get_data(as_text=True)
    assert 'password="not-the-right-one"' in first and again == first
    with app.app_context():
        assert "not-the-right-one" in get_store().events_for_call(cid)[0]["reply_body"]


def test_call_page_api_and_replay_mask_every_password(operator, bw, app):
    _flow(app)
    cid = call_id()
    assert bw.post("answer", answer_event(callId=cid)).status_code == 200
    agent = {**answer_event(callId=call_id()), "eventType": "transferAnswer", "parentCallId": cid}
    bw.post("transferAnswer", agent)
    bw.post("disconnect", disconnect_event(callId=cid, cause="hangup"))
    with app.app_context():
        rows = get_store().events_for_call(cid)
        failed = get_store().events_for_call(agent["callId"])
    assert "fallback-secret" in (failed[0]["error_detail"] or "")  # the handler's document

    page = operator.get(f"/dashboard/calls/{cid}").get_data(as_text=True)
    _shows_none(page)
    assert page.count("[redacted]") >= 3

    _shows_none(operator.get(f"/dashboard/calls/{agent['callId']}").get_data(as_text=True))
    api = operator.get(f"/api/calls/{cid}/events").get_data(as_text=True)
    _shows_none(api)
    _shows_none(operator.get(f"/api/calls/{agent['callId']}/events").get_data(as_text=True))
    assert "[redacted]" in json.loads(api)["events"][0]["replyBody"]

    listed = operator.get("/api/disconnects?category=invalid-reply").get_data(as_text=True)
    _shows_none(listed)
    _shows_none(operator.get("/dashboard?category=invalid-reply").get_data(as_text=True))

    _flow(
        app, password="replayed-secret", name="replayed"
    )  # the handler now writes another password
    token = page_token(operator, f"/dashboard/calls/{cid}")
    replayed = operator.post(
        f"/dashboard/calls/{cid}/replay/{rows[0]['id']}", data={"csrf_token": token}
    ).get_data(as_text=True)
    _shows_none(replayed)
    assert "[redacted]" in replayed


def test_exports_mask_passwords_in_error_messages(operator, app):
    stored_event(app, cause="error", error_message='bad <Gather password="not-the-right-one"/>')
    for path in ("/dashboard/disconnects.csv", "/dashboard/disconnects.json"):
        text = operator.get(path + "?category=error").get_data(as_text=True)
        assert "Gather password=" in text.replace('\\"', '"').replace('""', '"'), path
        _shows_none(text)


def test_mask_passwords_keeps_everything_else():
    text = (
        '<Response><SipUri uui="u" fallbackPassword="p1">sip:a@b</SipUri>'
        "<StartStream destinationPassword='p2' destinationUsername=\"n\"/>"
        '<Redirect redirectUrl="https://me:p3@example.com/x" password=""/></Response>'
    )
    assert mask_passwords(text) == (
        '<Response><SipUri uui="u" fallbackPassword="[redacted]">sip:a@b</SipUri>'
        "<StartStream destinationPassword='[redacted]' destinationUsername=\"n\"/>"
        '<Redirect redirectUrl="https://me:[redacted]@example.com/x" password="[redacted]"/>'
        "</Response>"
    )
    assert masked({"password": "p", "nested": ['x "password": "q"'], "n": 1}) == {
        "password": "[redacted]",
        "nested": ['x "password": "[redacted]"'],
        "n": 1,
    }
