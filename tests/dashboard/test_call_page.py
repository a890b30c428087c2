"""One call's timeline, the invalid-bxml finding, and replay without side effects."""

from __future__ import annotations

import re
import sqlite3

import pytest
from markupsafe import escape

from bxml import Response, SpeakSentence
from callbacks import Flow
from calls.outbound import place_call
from tests.callbacks.helpers import answer_event, call_id, disconnect_event
from tests.calls.fake_bandwidth import CALL_ID, Reply, created_call
from tests.dashboard.conftest import login, page_token, stored_event

INVALID_GATHER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Gather maxDigits="99"/></Response>'
)


def table_counts(app) -> dict[str, int]:
    path = app.config["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}  # noqa: S608


def replay(client, cid: str, event_id: int, token: str | None = "page"):
    data = {}
    if token == "page":
        data["csrf_token"] = page_token(client, f"/dashboard/calls/{cid}")
    elif token is not None:
        data["csrf_token"] = token
    return client.post(f"/dashboard/calls/{cid}/replay/{event_id}", data=data)


def test_timeline_in_order_with_replies_status_and_latency(operator, bw, app):
    cid = call_id()
    bw.post("answer", answer_event(callId=cid, tag="plain-tag"))
    bw.post("gather", {**answer_event(callId=cid), "eventType": "gather", "digits": "1"})
    bw.post("disconnect", disconnect_event(callId=cid, cause="busy", tag="plain-tag"))
    html = operator.get(f"/dashboard/calls/{cid}").get_data(as_text=True)
    kinds = re.findall(r'<li class="entry (\w+)', html)
    assert kinds == ["answer", "gather", "disconnect"]
    entries = html[html.index('id="timeline"') :]
    assert entries.count("HTTP 200") == 2 and "HTTP 204" in entries
    assert "answered in" in html
    assert "&lt;Gather" in html  # our BXML reply, escaped
    assert "Callee is busy" in html and "4642074b-7b58-478b-96e4-3a60955c6765" in html
    assert "sipResponseCode" in html and "486" in html
    assert "plain-tag" in html
    assert "callback-secret" not in html


def test_unknown_call_is_404(operator):
    reply = operator.get("/dashboard/calls/c-nothing-here")
    assert reply.status_code == 404
    assert "Nothing is stored" in reply.get_data(as_text=True)


def test_invalid_bxml_disconnect_shows_the_validator_finding(operator, app):
    cid = call_id()
    stored_event(app, "answer", call_id=cid, reply_body=INVALID_GATHER)
    stored_event(app, "disconnect", call_id=cid, cause="invalid-bxml", error_message="Invalid BXML")
    html = operator.get(f"/dashboard/calls/{cid}").get_data(as_text=True)
    finding = re.search(r'class="finding-message">([^<]+)<', html).group(1)
    assert "Gather: maxDigits must be between 1 and 50, got 99" in finding
    assert "(answer reply)" in re.sub(r"<[^>]+>", "", html)


def test_invalid_bxml_finding_uses_the_reply_rules_of_the_callback(operator, app):
    cid = call_id()
    transfer = "<Response><Transfer><PhoneNumber>+12025550199</PhoneNumber></Transfer></Response>"
    stored_event(app, "answer", call_id=cid, reply_body="<Response/>")
    stored_event(app, "transferAnswer", call_id=cid, reply_body=transfer)
    stored_event(app, "disconnect", call_id=cid, cause="invalid-bxml")
    html = operator.get(f"/dashboard/calls/{cid}").get_data(as_text=True)
    assert "transferAnswer: Transfer is not allowed in this reply" in html


def test_invalid_bxml_with_a_reply_the_validator_accepts(operator, app):
    cid = call_id()
    stored_event(app, "answer", call_id=cid, reply_body="<Response><Hangup/></Response>")
    stored_event(app, "disconnect", call_id=cid, cause="invalid-bxml")
    html = operator.get(f"/dashboard/calls/{cid}").get_data(as_text=True)
    assert "Our validator finds no problem in this reply" in html


def test_invalid_bxml_without_a_stored_reply(operator, app):
    cid = call_id()
    stored_event(app, "disconnect", call_id=cid, cause="invalid-bxml")
    assert "No stored BXML reply precedes" in operator.get(f"/dashboard/calls/{cid}").get_data(
        as_text=True
    )


def test_timeline_starts_with_the_create_call_request_without_secrets(c2c_app, bandwidth):
    bandwidth.script(Reply(201, created_call()))
    with c2c_app.app_context():
        place_call(to="+12025550123", state={"flow": "demo"})
    client = c2c_app.test_client()
    login(client)
    from tests.callbacks.helpers import Bandwidth

    Bandwidth(client).post("answer", answer_event(callId=CALL_ID))
    html = client.get(f"/dashboard/calls/{CALL_ID}").get_data(as_text=True)
    assert 'id="outbound"' in html
    assert html.index('id="outbound"') < html.index('class="entry answer')
    assert "created" in html
    assert "answerUrl" in html and "+12025550123" in html
    assert "callback-secret" not in html
    assert "&#34;password&#34;" not in html and "&#34;username&#34;" not in html
    assert "st2." not in html  # the tag it was placed with, shown as its state
    request = html[html.index('id="outbound"') :].split("</pre>")[0].replace("&#34;", '"')
    assert '"signed state, verified": {\n      "_attempt": "' in request
    assert '"flow": "demo"\n    }' in request


def test_replay_shows_what_the_current_handler_answers(operator, bw, app):
    cid = call_id()
    bw.post("answer", answer_event(callId=cid))
    event_id = operator.get(f"/api/calls/{cid}/events").get_json()["events"][0]["id"]

    reply = replay(operator, cid, event_id)
    assert reply.status_code == 200
    html = reply.get_data(as_text=True)
    assert "Same reply as stored." in html

    registry = Flow("replayed-now")

    @registry.on("answer")
    def changed(event):
        return Response(SpeakSentence(f"New greeting for {event.to}"))

    app.extensions["flows"].register(registry, default=True)
    html = replay(operator, cid, event_id).get_data(as_text=True)
    assert "The reply has changed" in html
    assert "New greeting for +12025550123" in html
    diff = html[html.index('id="reply-diff"') :]
    assert re.search(r"<span class=\"diff-add\">\+ .*New greeting", diff)  # an added line


def test_replay_has_no_side_effects(operator, bw, app, bandwidth):
    cid = call_id()
    bw.post("answer", answer_event(callId=cid))
    event_id = operator.get(f"/api/calls/{cid}/events").get_json()["events"][0]["id"]
    registry = Flow("replayed-now")
    from store import get_store

    seen: dict[str, object] = {}

    @registry.on("answer")
    def greedy(event):
        seen["events"] = len(get_store().events_for_call(event.call_id))  # reads work
        try:
            get_store().record_rejected("x", "POST", 400, "from a handler", b"", None)
        except Exception as exc:
            seen["write"] = type(exc).__name__
        place_call(to="+12025550123", state={"step": "replayed"})  # refused: raises
        return Response()

    app.extensions["flows"].register(registry, default=True)
    # The call page (where the form's token comes from) is read first: opening it may set
    # up the in-app sandbox's tables, which is not the replay's doing.
    token = page_token(operator, f"/dashboard/calls/{cid}")
    before = table_counts(app)
    reply = replay(operator, cid, event_id, token=token)
    assert reply.status_code == 200
    html = reply.get_data(as_text=True)
    assert table_counts(app) == before
    assert bandwidth.count == 0
    assert seen == {"events": 1, "write": "DryRunRefused"}
    assert "store.record_rejected()" in html
    assert "store.record_outbound_attempt()" in html
    assert "The handler fails now" in html
    assert "DryRunRefused" in html


def test_replay_of_a_handler_returning_bad_bxml(operator, bw, app):
    cid = call_id()
    bw.post("answer", answer_event(callId=cid))
    event_id = operator.get(f"/api/calls/{cid}/events").get_json()["events"][0]["id"]
    registry = Flow("replayed-now")

    @registry.on("answer")
    def wrong(event):
        return "<Response/>"

    app.extensions["flows"].register(registry, default=True)
    html = replay(operator, cid, event_id).get_data(as_text=True)
    assert escape("must return a bxml.Response, got str") in html


@pytest.mark.parametrize("token", [None, "bad-token"])
def test_replay_needs_a_csrf_token(operator, bw, token):
    cid = call_id()
    bw.post("answer", answer_event(callId=cid))
    event_id = operator.get(f"/api/calls/{cid}/events").get_json()["events"][0]["id"]
    assert replay(operator, cid, event_id, token=token).status_code == 400


def test_replay_only_for_bxml_callbacks(operator, bw):
    cid = call_id()
    bw.post("disconnect", disconnect_event(callId=cid))
    event_id = operator.get(f"/api/calls/{cid}/events").get_json()["events"][0]["id"]
    html = operator.get(f"/dashboard/calls/{cid}").get_data(as_text=True)
    assert "Replay with the current handler" not in html
    assert replay(operator, cid, event_id).status_code == 400
    assert replay(operator, cid, 999999).status_code == 404


def test_a_transfers_legs_link_both_ways(operator, bw):
    from tests.callbacks.helpers import call_event

    caller, agent = call_id(), call_id()
    bw.post("answer", answer_event(callId=caller))
    leg = {"callId": agent, "parentCallId": caller, "to": "+12025550142"}
    bw.post("transferAnswer", call_event("transferAnswer", **leg))
    bw.post("transferDisconnect", call_event("transferDisconnect", cause="hangup", **leg))
    html = operator.get(f"/dashboard/calls/{caller}").get_data(as_text=True)
    assert f'href="/dashboard/calls/{agent}"' in html and "Transferred to" in html
    html = operator.get(f"/dashboard/calls/{agent}").get_data(as_text=True)
    assert f'href="/dashboard/calls/{caller}"' in html
    assert "Agent's leg of a transfer from" in html
    # A call without other legs shows none.
    alone = call_id()
    bw.post("answer", answer_event(callId=alone))
    assert 'id="call-legs"' not in operator.get(f"/dashboard/calls/{alone}").get_data(as_text=True)
