"""Inbound calls: a caller dials an application's number; the app gets ``initiate``, its
reply runs, and ``disconnect`` goes to the application's status URL."""

from __future__ import annotations

import pytest

from sandbox import credentials
from tests.sandbox.conftest import CALL_EVENT_KEYS, FROM, TO, basic_credentials

NUMBER = "+12025550199"
STATUS_AUTH = {"userId": "bw-app", "password": "app-secret"}
RING_UNANSWERED = '<Response><Ring duration="3000" answerCall="false"/></Response>'


@pytest.fixture
def control(api, sandbox):
    """POST/PUT/GET to the control API, with the sandbox's credentials."""

    def request(method: str, path: str, body=None):
        return api.session.request(method, sandbox.control_url + path, json=body, timeout=10)

    return request


@pytest.fixture
def application(control, receiver):
    """An application owning NUMBER, pointed at the receiver; keyword overrides."""

    def make(**overrides):
        body = {
            "callInitiatedCallbackUrl": receiver.url("/initiate"),
            "callStatusCallbackUrl": receiver.url("/status"),
            "callbackCreds": STATUS_AUTH,
            "numbers": [NUMBER],
            **overrides,
        }
        reply = control("PUT", "/applications/ivr-app", body)
        assert reply.status_code == 204, reply.text
        return body

    return make


def _dial_in(control, **body) -> str:
    reply = control("POST", "/inbound", {"to": NUMBER, "from": FROM, **body})
    assert reply.status_code == 201, reply.text
    assert reply.json()["direction"] == "inbound"
    return str(reply.json()["callId"])


def test_initiate_has_the_documented_fields_and_its_reply_runs(
    application, control, receiver, sandbox, api
):
    application()
    sandbox.script(FROM, gatherDigits=["7"])  # the caller presses 7 at the first Gather
    receiver.reply(
        "/initiate",
        "<Response><SpeakSentence>Press a key</SpeakSentence>"
        '<Gather gatherUrl="/gather" maxDigits="1"/></Response>',
    )
    receiver.reply("/gather", "<Response><Hangup/></Response>")
    call_id = _dial_in(
        control,
        diversion={"origTo": "+12025550111", "reason": "unconditional"},
        stirShaken={"verstat": "TN-Validation-Passed", "attestationIndicator": "A"},
        uui="bXl1dWk=;encoding=base64",
        sipHeaders={"X-Customer-Id": "42"},
    )
    initiate = receiver.wait_for("initiate", call_id)[0]
    assert initiate.path == "/initiate"
    assert list(initiate.payload) == [
        *CALL_EVENT_KEYS,
        "startTime",
        "diversion",
        "stirShaken",
        "uui",
        "sipCallId",
        "sipHeaders",
    ]
    assert initiate.payload["applicationId"] == "ivr-app"
    assert initiate.payload["direction"] == "inbound"
    assert (initiate.payload["from"], initiate.payload["to"]) == (FROM, NUMBER)
    assert initiate.payload["diversion"] == {"origTo": "+12025550111", "reason": "unconditional"}
    assert initiate.payload["sipHeaders"] == {"x-customer-id": "42"}
    assert basic_credentials(initiate) == ("bw-app", "app-secret")

    gather = receiver.wait_for("gather", call_id)[0].payload
    assert gather["digits"] == "7"
    assert gather["direction"] == "inbound"
    assert gather["answerTime"] >= gather["startTime"]  # SpeakSentence answered it
    assert "enqueuedTime" not in gather

    disconnect = receiver.wait_for("disconnect", call_id)[0]
    assert disconnect.path == "/status"
    assert basic_credentials(disconnect) == ("bw-app", "app-secret")
    assert disconnect.payload["cause"] == "hangup"
    assert disconnect.payload["direction"] == "inbound"
    assert not receiver.events("answer")  # inbound calls get no answer event

    sandbox.wait_for(call_id, "disconnected")
    state = api.state(call_id).json()
    assert (state["direction"], state["state"]) == ("inbound", "disconnected")
    log = [line["text"] for line in sandbox.call(call_id)["log"]]
    assert "SpeakSentence answers the inbound call" in log


def test_a_hangup_reply_rejects_the_call_unanswered(application, control, receiver, sandbox):
    application()
    receiver.reply("/initiate", "<Response><Tag>screened</Tag><Hangup/></Response>")
    call_id = _dial_in(control)
    disconnect = receiver.wait_for("disconnect", call_id)[0].payload
    assert disconnect["cause"] == "hangup"
    assert disconnect["tag"] == "screened"
    assert "answerTime" not in disconnect
    assert sandbox.wait_for(call_id, "disconnected")["state"] == "disconnected"


@pytest.mark.parametrize(
    ("how", "cause"), [("caller hangs up", "cancel"), ("Update Call completed", "rejected")]
)
def test_an_unanswered_inbound_call_ends_by_the_caller_or_the_api(
    application, control, receiver, api, how, cause
):
    application()
    receiver.reply("/initiate", RING_UNANSWERED)  # ringing, not answered
    call_id = _dial_in(control)
    receiver.wait_for("initiate", call_id)
    if how == "caller hangs up":
        reply = control("POST", f"/calls/{call_id}/hangup", {})
        assert reply.status_code == 202, reply.text
    else:
        reply = api.update(call_id, state="completed")
        assert reply.status_code == 200, reply.text
    disconnect = receiver.wait_for("disconnect", call_id)[0].payload
    assert disconnect["cause"] == cause
    assert "answerTime" not in disconnect


def test_initiate_falls_back_with_the_fallback_credentials(application, control, receiver):
    from tests.servers import closed_port

    application(
        callInitiatedCallbackUrl=f"http://127.0.0.1:{closed_port()}/initiate",
        callInitiatedFallbackUrl=receiver.url("/initiate-fallback"),
        callInitiatedFallbackCreds={"userId": "fb", "password": "fb-secret"},
    )
    receiver.reply("/initiate-fallback", "<Response><Hangup/></Response>")
    call_id = _dial_in(control)
    initiate = receiver.wait_for("initiate", call_id)[0]
    assert initiate.path == "/initiate-fallback"
    assert basic_credentials(initiate) == ("fb", "fb-secret")
    assert receiver.wait_for("disconnect", call_id)[0].payload["cause"] == "hangup"


def test_applications_are_listed_without_passwords_and_can_be_removed(
    application, control, receiver
):
    application()
    listed = control("GET", "/applications").json()["applications"]
    assert listed == [
        {
            "applicationId": "ivr-app",
            "callInitiatedCallbackUrl": receiver.url("/initiate"),
            "callStatusCallbackUrl": receiver.url("/status"),
            "callbackCreds": {"userId": "bw-app", "password": "*****"},
            "numbers": [NUMBER],
        }
    ]
    assert control("DELETE", "/applications/ivr-app").status_code == 204
    assert control("DELETE", "/applications/ivr-app").status_code == 404
    refused = control("POST", "/inbound", {"to": NUMBER, "from": FROM})
    assert refused.status_code == 404
    assert f"No Voice application has the number {NUMBER}" in refused.json()["description"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"to": "12345", "from": FROM}, "Invalid to"),
        ({"to": NUMBER, "from": "someone"}, "Invalid from"),
        ({"to": NUMBER}, "Invalid from"),
        ({"to": NUMBER, "from": FROM, "sipHeaders": {"Customer": "1"}}, "Invalid sipHeaders"),
        ({"to": NUMBER, "from": FROM, "diversion": {"reason": "busy"}}, "Invalid diversion"),
        ({"to": NUMBER, "from": FROM, "ring": True}, "Invalid ring"),
        (["not", "an", "object"], "must be a JSON object"),
    ],
    ids=["to", "from", "no-from", "sip-header", "diversion-origTo", "unknown-key", "array"],
)
def test_bad_dial_ins_get_a_400_naming_the_problem(application, control, body, problem):
    application()
    reply = control("POST", "/inbound", body)
    assert reply.status_code == 400, reply.text
    assert problem in reply.json()["description"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"callStatusCallbackUrl": "http://127.0.0.1:1/s"}, "Invalid callInitiatedCallbackUrl"),
        ({"callInitiatedCallbackUrl": "ftp://x/y"}, "Invalid callInitiatedCallbackUrl"),
        (
            {"callInitiatedCallbackUrl": "http://127.0.0.1:1/i", "numbers": ["555"]},
            "Invalid numbers",
        ),
        (
            {"callInitiatedCallbackUrl": "http://127.0.0.1:1/i", "callbackCreds": {"userId": "u"}},
            "Invalid callbackCreds",
        ),
    ],
    ids=["no-initiate-url", "bad-url", "bad-number", "creds-without-password"],
)
def test_bad_applications_get_a_400_naming_the_problem(control, body, problem):
    reply = control("PUT", "/applications/app-x", body)
    assert reply.status_code == 400, reply.text
    assert problem in reply.json()["description"]


def test_an_inbound_call_runs_in_another_process_sharing_the_database(make_sandbox, receiver):
    """The application and the call are rows: one sandbox takes the call, another runs it."""
    api_only = make_sandbox(driver="off")
    api_only.set_application(
        "shared-app",
        {
            "callInitiatedCallbackUrl": receiver.url("/initiate"),
            "callStatusCallbackUrl": receiver.url("/status"),
            "numbers": [NUMBER],
        },
    )
    receiver.reply("/initiate", '<Response><Pause duration="1"/></Response>')
    call_id = api_only.dial_in({"to": NUMBER, "from": FROM}, "http://sandbox/api/v2")["callId"]
    make_sandbox().start_driver()
    assert receiver.wait_for("initiate", call_id)[0].payload["applicationId"] == "shared-app"
    disconnect = receiver.wait_for("disconnect", call_id)[0].payload
    assert disconnect["cause"] == "hangup"
    assert disconnect["answerTime"] >= disconnect["startTime"]  # the Pause answered it
    assert api_only.wait_for(call_id, "disconnected")["direction"] == "inbound"


def test_inside_the_app_a_dial_in_reaches_the_apps_initiate_route(live_app, app_config):
    """No user step: the app's own /callbacks/initiate and /callbacks/disconnect get them."""
    import requests

    account, username, password = credentials(live_app.app.config)
    with requests.Session() as http:
        http.trust_env = False
        page = http.get(
            f"{live_app.base_url}/sandbox/sandbox-control/", auth=(username, password), timeout=10
        )
        # The page's "Dial in" form posts to the same control route as below.
        assert 'data-inbound-url="/sandbox/sandbox-control/inbound"' in page.text
        reply = http.post(
            f"{live_app.base_url}/sandbox/sandbox-control/inbound",
            json={"to": TO, "from": FROM},
            auth=(username, password),
            timeout=10,
        )
        assert reply.status_code == 201, reply.text
        call_id = reply.json()["callId"]
        assert reply.json()["callInitiatedCallbackUrl"] == f"{live_app.base_url}/callbacks/initiate"
        sandbox = live_app.app.extensions["sandbox"]
        sandbox.wait_for(call_id, "disconnected", timeout=20)
        state = http.get(
            f"{live_app.base_url}/sandbox/api/v2/accounts/{account}/calls/{call_id}",
            auth=(username, password),
            timeout=10,
        ).json()
    assert state["direction"] == "inbound"
    events = live_app.events(call_id)
    assert events[0] == "initiate"
    assert "disconnect" in events


def _b_leg_of(sandbox, call_id: str) -> dict:
    """The forwarded leg of ``call_id``, once it exists."""
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        legs = [c for c in sandbox.calls() if c["parentCallId"] == call_id]
        if legs:
            return legs[0]
        time.sleep(0.02)  # poll until the deadline
    raise AssertionError(f"no forwarded leg of {call_id}")


def test_forward_passes_the_call_on_and_the_app_loses_control(
    application, control, receiver, sandbox, api
):
    application()
    forwarded_to = "+12025550177"
    sandbox.script(forwarded_to, bridgeSeconds=3000)  # talks until hung up
    receiver.reply("/initiate", f'<Response><Forward to="{forwarded_to}"/></Response>')
    call_id = _dial_in(control)
    b_leg = _b_leg_of(sandbox, call_id)
    assert (b_leg["from"], b_leg["to"]) == (FROM, forwarded_to)
    sandbox.wait_for(b_leg["callId"], "answered")
    refused = api.update(call_id, redirectUrl=receiver.url("/elsewhere"))
    assert refused.status_code == 409  # no control of a forwarded call
    sandbox.hang_up(b_leg["callId"])  # the forwarded party hangs up
    disconnect = receiver.wait_for("disconnect", call_id)[0].payload
    assert disconnect["cause"] == "hangup"
    assert disconnect["answerTime"] >= disconnect["startTime"]
    assert [r.event_type for r in receiver.events(call_id=call_id)] == ["initiate", "disconnect"]
    assert sandbox.wait_for(b_leg["callId"], "disconnected")["disconnectCause"] == "hangup"


def test_a_forward_to_a_busy_number_ends_the_call_busy(application, control, receiver):
    application()
    receiver.reply("/initiate", '<Response><Forward to="+12025550486"/></Response>')
    call_id = _dial_in(control)
    disconnect = receiver.wait_for("disconnect", call_id)[0].payload
    assert disconnect["cause"] == "busy"
    assert "answerTime" not in disconnect


def test_forward_on_an_outbound_call_is_skipped(api, call_body, receiver, sandbox):
    receiver.reply("/answer", '<Response><Forward to="+12025550177"/></Response>')
    call_id = api.create_ok(**call_body())
    assert receiver.wait_for("disconnect", call_id)[0].payload["cause"] == "hangup"
    log = [line["text"] for line in sandbox.wait_for(call_id, "disconnected")["log"]]
    assert "Forward works only on an unanswered inbound call; skipped" in log


SIP_LINE = "sip:ivr@sandbox.example.com"


def test_a_successful_refer_sends_refer_complete_and_ends_the_call(
    application, control, receiver, sandbox
):
    application(numbers=[SIP_LINE])
    receiver.reply(
        "/initiate",
        '<Response><Refer referCompleteUrl="/refer"><SipUri>sip:agent@pbx.example.com</SipUri>'
        "</Refer><SpeakSentence>not reached</SpeakSentence></Response>",
    )
    call_id = _dial_in(control, to=SIP_LINE)
    refer = receiver.wait_for("referComplete", call_id)[0].payload
    assert (refer["referCallStatus"], refer["referSipResponseCode"]) == ("success", 202)
    assert refer["notifySipResponseCode"] == 200
    assert receiver.wait_for("disconnect", call_id)[0].payload["cause"] == "hangup"
    log = [line["text"] for line in sandbox.wait_for(call_id, "disconnected")["log"]]
    assert "Refer to sip:agent@pbx.example.com: NOTIFY 200 (success)" in log
    assert not any(text.startswith("SpeakSentence") for text in log)


def test_a_failed_refer_runs_the_refer_complete_reply(application, control, receiver):
    application(numbers=[SIP_LINE])
    receiver.reply(
        "/initiate",
        '<Response><Refer referCompleteUrl="/refer">'
        "<SipUri>sip:agent-486@pbx.example.com</SipUri></Refer></Response>",
    )
    receiver.reply("/refer", '<Response><Redirect redirectUrl="/after-refer"/></Response>')
    receiver.reply("/after-refer", "<Response><Hangup/></Response>")
    call_id = _dial_in(control, to=SIP_LINE)
    refer = receiver.wait_for("referComplete", call_id)[0].payload
    assert (refer["referCallStatus"], refer["notifySipResponseCode"]) == ("failure", 486)
    assert receiver.wait_for("redirect", call_id)[0].path == "/after-refer"
    assert receiver.wait_for("disconnect", call_id)[0].payload["cause"] == "hangup"


def test_refer_on_a_call_to_a_phone_number_is_skipped(application, control, receiver, sandbox):
    application()
    receiver.reply(
        "/initiate",
        '<Response><Refer referCompleteUrl="/refer"><SipUri>sip:a@b.example.com</SipUri>'
        "</Refer></Response>",
    )
    call_id = _dial_in(control)
    receiver.wait_for("disconnect", call_id)
    log = [line["text"] for line in sandbox.wait_for(call_id, "disconnected")["log"]]
    assert "Refer works only on an inbound SIP call; skipped" in log
    assert not receiver.events("referComplete")


def test_the_standalone_command_takes_a_default_application(receiver):
    """``python -m sandbox --initiate-url ... --status-url ...``: dial in to any number."""
    import os
    import subprocess
    import sys

    import requests

    from tests.servers import ROOT, listening_socket, port_of, wait_until_up

    receiver.reply("/initiate", "<Response><SpeakSentence>hi</SpeakSentence></Response>")
    # The command line takes a port number, not a socket: the port is free again for it.
    probe = listening_socket()
    port = port_of(probe)
    probe.close()
    env = {**os.environ, "BW_PASSWORD": "cli-secret", "SANDBOX_TIME_SCALE": "0.01"}
    command = [sys.executable, "-m", "sandbox", "--port", str(port)]
    command += ["--initiate-url", receiver.url("/initiate"), "--status-url", receiver.url("/st")]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base + "/api/v2/")
        with requests.Session() as http:
            http.trust_env = False
            reply = http.post(
                base + "/sandbox-control/inbound",
                json={"to": "+12025550111", "from": FROM},
                auth=("sandbox", "cli-secret"),
                timeout=10,
            )
        assert reply.status_code == 201, reply.text
        call_id = reply.json()["callId"]
        assert (
            receiver.wait_for("initiate", call_id)[0].payload["applicationId"]
            == "sandbox-application"
        )
        assert receiver.wait_for("disconnect", call_id)[0].path == "/st"
    finally:
        process.terminate()
        process.wait(timeout=20)
