"""End to end against the real app: its routes, its flows, its store; and inside the app."""

from __future__ import annotations

import json
import time

import pytest
import requests

import sandbox as sandbox_package
from sandbox.settings import derived_password
from tests.conftest import DASHBOARD_PASSWORD, DASHBOARD_USER
from tests.sandbox.conftest import FROM, TO


def test_the_demo_ivr_end_to_end(api, sandbox, live_app, app_call):
    call_id = api.create_ok(**app_call())
    sandbox.wait_for(call_id, "answered")
    sandbox.press(call_id, "9")  # not a choice: the demo says goodbye and hangs up
    state = sandbox.wait_for(call_id, "disconnected")
    assert state["disconnectCause"] == "hangup", state["log"]
    assert live_app.events(call_id) == ["answer", "gather", "disconnect"]
    events = requests.get(
        f"{live_app.base_url}/api/calls/{call_id}/events",
        auth=(DASHBOARD_USER, DASHBOARD_PASSWORD),
        timeout=10,
    ).json()["events"]
    assert events[1]["payload"]["digits"] == "9"
    assert events[2]["payload"]["cause"] == "hangup"


def test_the_demo_ivr_carries_state_across_two_gathers_to_a_transfer(
    api, sandbox, live_app, app_call
):
    sandbox.script(TO, gatherDigits=["2", "1234"])  # support, then an order number
    call_id = api.create_ok(**app_call())
    state = sandbox.wait_for(call_id, "disconnected")
    events = live_app.events(call_id)
    assert events[:3] == ["answer", "gather", "gather"], state["log"]
    assert "transferComplete" in events and events[-1] == "disconnect"
    from store import get_store

    rows = get_store(live_app.app).events_for_call(call_id)
    second_gather = rows[2]
    assert "Order 1 2 3 4. Connecting you to support." in second_gather["reply_body"]
    assert "+12025550143" in second_gather["reply_body"]  # support's line
    # The agent's leg (another call id) came back to the same flow, with its greeting.
    [b_leg] = {row["call_id"] for row in get_store(live_app.app).events_for_parent_call(call_id)}
    b_rows = get_store(live_app.app).events_for_call(b_leg)
    answered = next(row for row in b_rows if row["event_type"] == "transferAnswer")
    assert "A caller from the demo IVR is on the line." in answered["reply_body"]


@pytest.mark.parametrize(
    ("number", "cause"),
    [("+12025550486", "busy"), ("+12025550408", "timeout"), ("+12025550603", "rejected")],
)
def test_busy_no_answer_and_reject_reach_the_app(api, sandbox, live_app, app_call, number, cause):
    call_id = api.create_ok(**app_call(to=number, callTimeout=3))
    sandbox.wait_for(call_id, "disconnected")
    assert live_app.events(call_id) == ["disconnect"]
    from store import get_store

    row = get_store(live_app.app).events_for_call(call_id)[0]
    assert row["cause"] == cause and row["error_id"]


def test_a_tag_with_an_emoji_reaches_the_app(api, sandbox, live_app, app_call):
    # The sandbox sends its callbacks with json.dumps: the emoji goes as a surrogate pair.
    call_id = api.create_ok(**app_call(tag="caller \U0001f600"))
    sandbox.wait_for(call_id, "answered")
    sandbox.press(call_id, "9")  # the demo IVR: not a choice, goodbye
    state = sandbox.wait_for(call_id, "disconnected")
    assert state["disconnectCause"] == "hangup", state["log"]
    assert live_app.events(call_id) == ["answer", "gather", "disconnect"]
    from store import get_store

    rows = get_store(live_app.app).events_for_call(call_id)
    # The answer carried the emoji; the demo's reply then set its own <Tag>.
    assert rows[0]["payload"]["tag"] == "caller \U0001f600"


def test_wrong_callback_credentials_end_with_callback_error(api, sandbox, live_app, app_call):
    call_id = api.create_ok(**app_call(password="wrong"))
    state = sandbox.wait_for(call_id, "disconnected")
    assert state["disconnectCause"] == "callback-error"
    assert "HTTP 401" in state["errorMessage"]


def test_inside_the_app(live_app, app_callback_auth):
    """VOICE_BACKEND=sandbox: the app serves the API and calls its own callback routes."""
    app = live_app.app
    if "sandbox" not in app.extensions:  # until app.py calls it
        sandbox_package.init_app(app)
    in_app = app.extensions["sandbox"]
    assert in_app is not None
    account, user, password = sandbox_package.credentials(app.config)
    assert (account, user) == ("9900000", "sandbox")
    assert password == derived_password("test-secret-key") != derived_password("other")
    api_url = f"{live_app.base_url}{sandbox_package.API_PREFIX}/accounts/{account}/calls"
    body = {
        "to": TO,
        "from": FROM,
        "applicationId": "app-1",
        "answerUrl": live_app.base_url + "/callbacks/answer",
        "disconnectUrl": live_app.base_url + "/callbacks/disconnect",
        "tag": "<script>alert(1)</script>",
        **app_callback_auth,
    }
    created = requests.post(api_url, json=body, auth=(user, password), timeout=10)
    assert created.status_code == 201, created.text
    call_id = created.json()["callId"]
    assert created.json()["callUrl"] == f"{api_url}/{call_id}"
    in_app.wait_for(call_id, "answered")
    in_app.press(call_id, "9")  # the demo IVR: not a choice, goodbye
    assert in_app.wait_for(call_id, "disconnected")["disconnectCause"] == "hangup"
    assert live_app.events(call_id) == ["answer", "gather", "disconnect"]

    # No SSRF: a deployed app's sandbox only calls its own origin and loopback.
    elsewhere = requests.post(
        api_url,
        json=dict(body, answerUrl="https://attacker.example/answer"),
        auth=(user, password),
        timeout=10,
    )
    assert elsewhere.status_code == 400
    assert elsewhere.json()["description"].startswith("Invalid answerUrl:")
    assert requests.post(api_url, json=body, timeout=10).status_code == 401

    # The answered call's tag now holds the framework's signed state (its first reply set
    # it); a busy call keeps the raw tag, which the control page must show escaped.
    busy = requests.post(
        api_url, json=dict(body, to="+12025550486"), auth=(user, password), timeout=10
    )
    assert busy.status_code == 201, busy.text
    in_app.wait_for(busy.json()["callId"], "disconnected")
    page = requests.get(
        f"{live_app.base_url}{sandbox_package.CONTROL_PREFIX}/", auth=(user, password), timeout=10
    )
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "/static/sandbox/sandbox.js" in page.text and "<script>" not in page.text
    script = requests.get(f"{live_app.base_url}/static/sandbox/sandbox.js", timeout=10)
    assert script.status_code == 200 and "textContent" in script.text
    listed = requests.get(
        f"{live_app.base_url}{sandbox_package.CONTROL_PREFIX}/calls",
        auth=(user, password),
        timeout=10,
    ).json()["calls"]
    listed_ids = [call["callId"] for call in listed]
    assert call_id in listed_ids and all(call["log"] for call in listed)
    json.dumps(listed)


def test_init_app_does_nothing_for_another_backend(app_config):
    from flask import Flask

    app = Flask(__name__)
    app.config.update(app_config, VOICE_BACKEND="bandwidth")
    assert sandbox_package.init_app(app) is None
    assert "sandbox" not in app.extensions


def test_credentials_match_what_the_apps_outbound_client_uses():
    import config

    settings = {"SECRET_KEY": "k", "PUBLIC_BASE_URL": "http://127.0.0.1:8000"}
    client = config.voice_api(settings)
    assert client["base_url"] == "http://127.0.0.1:8000" + sandbox_package.API_PREFIX
    assert sandbox_package.credentials(settings) == (
        client["account_id"],
        client["username"],
        client["password"],
    )


def test_credentials_prefer_the_bw_settings():
    config = {"BW_ACCOUNT_ID": "5551234", "BW_USERNAME": "u", "BW_PASSWORD": "p", "SECRET_KEY": "k"}
    assert sandbox_package.credentials(config) == ("5551234", "u", "p")
    with pytest.raises(ValueError, match="SECRET_KEY"):
        sandbox_package.credentials({})


def test_place_call_with_a_flow_is_answered_by_that_flow(live_app):
    """The in-app sandbox places the call; its answer reaches the named flow, not the
    default one, and the call's later callbacks too."""
    from bxml import Hangup, Response, SpeakSentence
    from callbacks import Flow
    from calls.outbound import place_call
    from store import get_store

    app = live_app.app
    reminders = Flow("reminders")
    said = []

    @reminders.on("answer")
    def remind(event):
        return Response(SpeakSentence(f"Reminder {event.state['id']}"), Hangup())

    reminders.on("disconnect")(lambda event: said.append((event.flow, event.state["id"])))
    app.extensions["flows"].register(reminders)
    with app.test_request_context():
        placed = place_call(to=TO, flow="reminders", state={"id": 7})
        default = place_call(to=TO)
    in_app = app.extensions["sandbox"]
    for call in (placed, default):
        in_app.wait_for(call["callId"], "disconnected")
    [answer, *_] = get_store(app).events_for_call(placed["callId"])
    assert "Reminder 7" in answer["reply_body"]
    [answer, *_] = get_store(app).events_for_call(default["callId"])
    assert "For sales, press 1" in answer["reply_body"]  # the demo IVR, the default flow
    deadline = time.monotonic() + 10
    while not said and time.monotonic() < deadline:  # the disconnect callback may trail
        time.sleep(0.02)
    assert said == [("reminders", 7)]


def test_a_caller_dials_a_flows_number_through_the_in_app_sandbox(live_app):
    """Inbound: the sandbox sends initiate to the app; the flow that declared the number
    answers, and the call's later callbacks stay with it."""
    from bxml import Gather, Hangup, Response, SpeakSentence
    from callbacks import Flow
    from store import get_store

    app = live_app.app
    line = Flow("support-line", numbers=["+12025550111"])
    heard = []

    @line.on("initiate")
    def greet(event):
        return Response(
            line.tag({"step": "menu"}),
            Gather(
                SpeakSentence("Support line"),
                gather_url=line.url("gather"),
                max_digits=1,
                **line.credentials(),
            ),
        )

    @line.on("gather")
    def choice(event):
        heard.append((event.digits, event.state))
        return Response(SpeakSentence("Bye"), Hangup())

    app.extensions["flows"].register(line)
    in_app = app.extensions["sandbox"]
    in_app.script("+12025550199", {"gatherDigits": ["3"]})  # the caller, by their number
    created = in_app.dial_in({"to": "+12025550111", "from": "+12025550199"}, live_app.base_url)
    in_app.wait_for(created["callId"], "disconnected")
    rows = get_store(app).events_for_call(created["callId"])
    assert [row["event_type"] for row in rows] == ["initiate", "gather", "disconnect"]
    assert "Support line" in rows[0]["reply_body"]
    assert heard == [("3", {"step": "menu"})]
