"""Failure categories made to happen for real: the sandbox calls the live app over HTTP.

Each failure kind (a crashing handler, an invalid reply, wrong or missing credentials, an
unreachable answer URL, busy, no answer) ends up with its category in the store, in the
JSON API, in the counts and the chart, and findable from the dashboard's first page.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

import bxml
from callbacks import Flow
from store import categories, get_store
from tests.conftest import DASHBOARD_PASSWORD, DASHBOARD_USER
from tests.servers import closed_port

CRASHING = "+12025550111"  # our number whose answer handler raises
INVALID = "+12025550112"  # our number whose answer handler builds invalid BXML
BARE_GATHER = "+12025550113"  # our number whose Gather sets no credentials
DASHBOARD = (DASHBOARD_USER, DASHBOARD_PASSWORD)


@pytest.fixture
def broken_flows(live_app):
    """Two flows of the live app that fail: one raises, one builds invalid BXML."""
    flows = live_app.app.extensions["flows"]
    crashing = flows.register(Flow("crashing", numbers=[CRASHING]))
    crashing.on("answer")(lambda event: 1 / 0)
    invalid = flows.register(Flow("invalid", numbers=[INVALID]))
    invalid.on("answer")(lambda event: bxml.Response(bxml.Gather(bxml.Hangup())))
    return live_app


def disconnects(live, **params: Any) -> list[dict[str, Any]]:
    reply = requests.get(
        live.base_url + "/api/disconnects", params=params, auth=DASHBOARD, timeout=10
    )
    assert reply.status_code == 200, reply.text
    return reply.json()["disconnects"]


def place(api, sandbox, body: dict[str, Any]) -> dict[str, Any]:
    call_id = api.create_ok(**body)
    state = sandbox.wait_for(call_id, "disconnected")
    state["callId"] = call_id
    return state


def dashboard_page(live, path: str = "/dashboard") -> str:
    """A dashboard page as an operator's browser gets it, after the login form."""
    with requests.Session() as session:
        login = session.get(live.base_url + "/dashboard/login", timeout=10).text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login)
        assert token, login
        reply = session.post(
            live.base_url + "/dashboard/login",
            data={
                "csrf_token": token.group(1),
                "username": DASHBOARD_USER,
                "password": DASHBOARD_PASSWORD,
            },
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
        page = session.get(live.base_url + path, timeout=10)
        assert page.status_code == 200, page.text
        return page.text


def test_a_crashing_handler_is_a_handler_error_in_the_default_view(
    api, sandbox, broken_flows, app_call
):
    state = place(api, sandbox, app_call(**{"from": CRASHING}))
    # The safe document ends the call normally: Bandwidth's cause is hangup...
    assert state["disconnectCause"] == "hangup", state["log"]
    # ...but the call needs attention, so the default view (no filter) shows it.
    rows = {r["callId"]: r for r in disconnects(broken_flows)}
    assert rows[state["callId"]]["category"] == "handler-error"
    assert rows[state["callId"]]["cause"] == "hangup"
    # What went wrong, for a person, and the traceback one click away.
    assert rows[state["callId"]]["handlerError"] == (
        "your handler raised ZeroDivisionError: division by zero"
    )
    assert "Traceback (most recent call last)" in rows[state["callId"]]["handlerErrorDetail"]
    only = disconnects(broken_flows, category="handler-error")
    assert [r["callId"] for r in only] == [state["callId"]]
    page = dashboard_page(broken_flows)
    assert state["callId"] in page
    assert 'data-category="handler-error"' in page


def test_an_invalid_reply_is_its_own_category(api, sandbox, broken_flows, app_call):
    state = place(api, sandbox, app_call(**{"from": INVALID}))
    rows = disconnects(broken_flows, category="invalid-reply")
    assert [r["callId"] for r in rows] == [state["callId"]]
    assert rows[0]["handlerError"].startswith(
        "your handler returned invalid BXML: Gather: cannot contain Hangup"
    )
    assert disconnects(broken_flows, category="handler-error") == []
    page = dashboard_page(broken_flows)
    assert "your handler returned invalid BXML" in page


def test_an_unreachable_answer_url_is_a_callback_error_said_for_a_person(
    api, sandbox, live_app, app_call
):
    dead = f"http://127.0.0.1:{closed_port()}/callbacks/answer"
    state = place(api, sandbox, app_call(answerUrl=dead))
    assert state["disconnectCause"] == "callback-error"
    (row,) = disconnects(live_app, category="callback-error")
    assert row["callId"] == state["callId"]
    message = row["errorMessage"]
    assert "refused the connection" in message and dead in message
    page = dashboard_page(live_app)
    sentence = message.split(" Detail: ", 1)[0]
    cell = page[page.index(state["callId"]) :]
    cell = cell[: cell.index("</tr>")]
    assert sentence.replace("'", "&#39;") in cell
    assert "<details><summary>technical detail</summary>" in cell
    assert cell.index("<details>") > cell.index(sentence.split(" ")[1])


@pytest.mark.parametrize(
    ("number", "cause"), [("+12025550486", "busy"), ("+12025550408", "timeout")]
)
def test_busy_and_no_answer_have_their_cause_as_category(
    api, sandbox, live_app, app_call, number, cause
):
    state = place(api, sandbox, app_call(to=number, callTimeout=2))
    assert state["disconnectCause"] == cause
    (row,) = disconnects(live_app, category=cause)
    assert row["callId"] == state["callId"] and row["category"] == cause
    assert state["callId"] in dashboard_page(live_app)


def test_wrong_credentials_are_logged_bannered_and_the_call_found(api, sandbox, live_app, app_call):
    state = place(api, sandbox, app_call(username="bandwidth", password="not-the-password"))
    call_id = state["callId"]
    assert state["disconnectCause"] == "callback-error"
    assert disconnects(live_app, all="1") == []  # nothing stored: every callback was refused
    with live_app.app.app_context():
        store = get_store()
        log = store.credential_failures()
        (refused,) = store.refused_calls()
    assert {(row["route"], row["username"], row["kind"]) for row in log} == {
        ("answer", "bandwidth", "wrong"),
        ("disconnect", "bandwidth", "wrong"),
    }
    assert all(row["remote_addr"] == "127.0.0.1" and row["count"] >= 1 for row in log)
    assert "not-the-password" not in repr(log)
    assert refused["call_id"] == call_id and refused["category"] == "credential-failure"
    assert refused["cause"] == "callback-error"  # what the refused disconnect said
    page = dashboard_page(live_app)
    assert "Callbacks are being refused: the credentials Bandwidth sends do not match." in page
    assert call_id in page[page.index('id="refused-calls"') :]
    # A search is over stored disconnects: the refused calls are not among its hits.
    assert 'id="refused-calls"' not in dashboard_page(live_app, "/dashboard?q=not-a-hit")
    assert re.search(r'data-category="credential-failure">1<', page)
    # Every dashboard page carries the banner; the call's page says what happened.
    call_page = dashboard_page(live_app, f"/dashboard/calls/{call_id}")
    assert 'id="credential-alarm"' in call_page and 'id="refused-call"' in call_page
    log_page = dashboard_page(live_app, "/dashboard/credential-failures")
    assert "bandwidth" in log_page and "not-the-password" not in log_page


def test_a_call_created_without_credentials_is_found_once_its_disconnect_is_refused(
    api, sandbox, live_app, app_call, monkeypatch
):
    from store import refusals

    monkeypatch.setattr(refusals, "CHALLENGE_GRACE", 0.0)
    state = place(api, sandbox, app_call(username=None, password=None))
    with live_app.app.app_context():
        log = get_store().credential_failures()
    # A request without credentials is also the first half of the 401 challenge: the
    # answer's refusal is logged once the refused disconnect says it ended the call.
    assert [(row["route"], row["kind"], row["username"]) for row in log] == [
        ("answer", "missing", ""),
        ("disconnect", "missing", ""),
    ]
    page = dashboard_page(live_app)
    banner = page[page.index('id="credential-alarm"') :]
    banner = banner[: banner.index("</p>")]
    assert "they arrive without the credentials this app requires" in banner
    assert "do not match" not in banner
    assert state["callId"] in page
    # The call's page says what happened: who called whom, when, which routes were refused
    # and why, and what the refused disconnect said, for a person.
    call_page = dashboard_page(live_app, f"/dashboard/calls/{state['callId']}")
    story = call_page[call_page.index('id="refused-call"') :]
    story = " ".join(re.sub(r"<[^>]+>", " ", story[: story.index("</section>")]).split())
    assert "+12025550100" in story and "+12025550123" in story  # from, to
    assert "First refused" in story and "Last refused" in story
    assert "/callbacks/answer was refused, so Bandwidth ended the call with callback-error" in story
    assert "/callbacks/answer : 401: sent without credentials" in story
    assert "/callbacks/disconnect : 401: sent without credentials" in story
    assert "The app refused 2 callbacks of this call" in story
    assert "The answer callback failed:" in story  # the message, for a person ...
    assert "Detail:" not in story and "technical detail" in story  # ... the rest a click away
    assert "technical detail" in story


def test_a_gather_sent_without_credentials_is_logged_as_missing_and_bannered(
    api, sandbox, live_app, app_call
):
    """The call has credentials, its Gather has none: the gather is refused, the call ends
    callback-error, and the refusal is in the log as missing (not wrong) credentials."""
    flows = live_app.app.extensions["flows"]
    gathering = flows.register(Flow("bare-gather", numbers=[BARE_GATHER]))
    gathering.on("answer")(
        lambda event: bxml.Response(
            bxml.Gather(
                bxml.SpeakSentence("Press a key."),
                gather_url=gathering.url("gather"),  # no username/password: the mistake
                max_digits=1,
                first_digit_timeout=1,
            )
        )
    )
    state = place(api, sandbox, app_call(**{"from": BARE_GATHER}))
    call_id = state["callId"]
    assert state["disconnectCause"] == "callback-error", state
    (row,) = disconnects(live_app, all="1")
    assert row["callId"] == call_id and row["category"] == "credential-failure"
    with live_app.app.app_context():
        log = get_store().credential_failures()
    assert [(r["route"], r["kind"], r["username"], r["last_call_id"]) for r in log] == [
        ("gather", "missing", "", call_id)
    ]
    page = dashboard_page(live_app)
    banner = page[page.index('id="credential-alarm"') :]
    banner = banner[: banner.index("</p>")]
    assert "they arrive without the credentials this app requires" in banner
    assert "/callbacks/gather" in banner and "do not match" not in banner
    call_page = dashboard_page(live_app, f"/dashboard/calls/{call_id}")
    assert "no credentials were sent" in call_page
    assert "the credentials sent were refused" not in call_page
    log_page = dashboard_page(live_app, "/dashboard/credential-failures")
    assert call_id in log_page and ">missing<" in log_page


def test_a_credential_failure_is_described_as_missing_or_wrong():
    text = categories.describe(categories.CREDENTIAL_FAILURE)
    assert "missing" in text and "wrong" in text


@pytest.mark.parametrize(
    ("cause", "message", "route"),
    [
        (
            "callback-error",
            "http://h/callbacks/gather answered HTTP 401 (no credentials)",
            "gather",
        ),
        (
            "callback-error",
            "The answer callback failed: http://h/callbacks/answer answered HTTP 401",
            "answer",
        ),
        ("callback-error", "http://h/callbacks/gather answered HTTP 500", None),
        ("callback-error", "http://other/hooks/gather answered HTTP 401", None),
        ("hangup", "http://h/callbacks/gather answered HTTP 401", None),
        ("callback-error", None, None),
    ],
)
def test_refused_route_reads_a_401_from_the_disconnect(cause, message, route):
    assert categories.refused_route(cause, message) == route


def test_the_401_challenge_answered_with_credentials_raises_no_alarm(live_app):
    """A sender that retries with the right credentials after the 401 is not a failure."""
    from tests.callbacks.helpers import Bandwidth, disconnect_event

    client = live_app.app.test_client()
    event = disconnect_event(cause="hangup")
    assert client.post("/callbacks/disconnect", json=event).status_code == 401
    assert Bandwidth(client).post("disconnect", event).status_code == 204
    with live_app.app.app_context():
        store = get_store()
        assert store.refusals_since(0.0, now=1e12) is None
        assert store.refused_calls(now=1e12) == []
        (row,) = disconnects(live_app, all="1")
    assert row["category"] == "hangup"


def test_a_rejected_payload_names_its_call(live_app):
    from tests.callbacks.helpers import Bandwidth, disconnect_event

    event = disconnect_event(cause="busy", startTime="not a time")
    reply = Bandwidth(live_app.app.test_client()).post("disconnect", event)
    assert reply.status_code == 422
    with live_app.app.app_context():
        (refused,) = get_store().refused_calls()
    assert refused["call_id"] == event["callId"] and refused["category"] == "rejected-payload"
    page = dashboard_page(live_app)
    assert re.search(r'data-category="rejected-payload">1<', page)
    assert event["callId"] in page
    assert 'id="credential-alarm"' not in page


def test_categories_have_counts_chart_colours_and_api_lines(api, sandbox, broken_flows, app_call):
    place(api, sandbox, app_call(**{"from": CRASHING}))
    place(api, sandbox, app_call(to="+12025550486"))
    place(api, sandbox, app_call())  # the demo IVR: a normal hangup
    page = dashboard_page(broken_flows)
    counts = dict(re.findall(r'data-category="([^"]+)">(\d+)<', page))
    assert counts == {"handler-error": "1", "busy": "1", "hangup": "1"}
    legend = page[page.index('class="legend"') :]
    assert 'data-category="handler-error"' in legend and 'data-category="busy"' in legend
    assert 'data-category="hangup"' not in legend  # the chart draws what needs attention
    from dashboard import chart

    assert chart.colour("handler-error") != chart.colour("busy")
    assert f'fill="{chart.colour("handler-error")}"' in page
    every = disconnects(broken_flows, all="1")
    assert sorted(r["category"] for r in every) == ["busy", "handler-error", "hangup"]
    assert categories.needs_attention("handler-error") and not categories.needs_attention("hangup")
