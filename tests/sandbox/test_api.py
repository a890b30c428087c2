"""The Voice API subset: paths, status codes, bodies and errors as Bandwidth answers them."""

from __future__ import annotations

import re

import pytest

from tests.sandbox.conftest import TO

CALL_ID = re.compile(r"c-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
LONG_PAUSE = '<Response><Pause duration="60"/></Response>'


def test_create_answers_201_with_location_and_the_documented_body(api, call_body, receiver):
    receiver.reply("/answer", "<Response><Hangup/></Response>")
    reply = api.create(
        **call_body(
            tag="my tag",
            username="cb-user",
            password="cb-secret",
            answerFallbackUrl=receiver.url("/fallback"),
            fallbackUsername="fb-user",
            fallbackPassword="fb-secret",
        )
    )
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert CALL_ID.fullmatch(body["callId"]) and len(body["callId"]) == 47
    assert reply.headers["Location"] == body["callUrl"]
    assert body["callUrl"] == f"{api.calls_url}/{body['callId']}"
    assert ISO.fullmatch(body["enqueuedTime"])
    assert body["password"] == "*****" and body["fallbackPassword"] == "*****"
    assert body["username"] == "cb-user" and body["fallbackUsername"] == "fb-user"
    assert body["accountId"] == api.account_id and body["applicationId"] == "app-1"
    assert (body["to"], body["tag"]) == (TO, "my tag")
    assert body["answerMethod"] == body["disconnectMethod"] == "POST"
    assert (body["callTimeout"], body["callbackTimeout"], body["priority"]) == (30, 15, 5)
    assert "cb-secret" not in reply.text and "fb-secret" not in reply.text


@pytest.mark.parametrize(
    "auth", [None, ("sandbox", "wrong"), ("someone", "sandbox-password")], ids=str
)
def test_wrong_or_missing_credentials_get_401(api, call_body, auth):
    api.session.auth = auth
    reply = api.create(**call_body())
    assert reply.status_code == 401
    assert reply.json()["type"] == "authentication-error"
    assert reply.json()["description"]


def test_another_account_gets_403(api, call_body):
    api.account_id = "1234567"
    reply = api.create(**call_body())
    assert reply.status_code == 403
    assert reply.json()["type"] == "authorization-error"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"to": "12345"}, "Invalid to:"),
        ({"from": "+1"}, "Invalid from:"),
        ({"answerUrl": None}, "Missing at least one required field"),
        ({"answerUrl": "ftp://example.com/a"}, "Invalid answerUrl:"),
        ({"callTimeout": 0}, "Invalid callTimeout:"),
        ({"answerMethod": "PUT"}, "Invalid answerMethod:"),
        ({"machineDetection": {"detectionTimeout": "15"}}, "Invalid machineDetection:"),
    ],
)
def test_invalid_requests_get_400_in_bandwidths_shape(api, call_body, overrides, expected):
    reply = api.create(**call_body(**overrides))
    assert reply.status_code == 400
    body = reply.json()
    assert body["type"] == "validation"
    assert body["description"].startswith(expected), body
    assert set(body) == {"type", "description", "id"}


def test_a_body_that_is_not_json_gets_400(api):
    reply = api.session.post(
        api.calls_url, data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert reply.status_code == 400
    assert reply.json()["type"] == "validation"


def test_wrong_content_type_gets_415(api, call_body):
    reply = api.session.post(
        api.calls_url, data=b"to=+12025550123", headers={"Content-Type": "text/plain"}
    )
    assert reply.status_code == 415
    assert reply.json()["description"] == "Content type 'text/plain' not supported"


def test_unknown_call_gets_404(api):
    missing = "c-00000000-00000000-0000-0000-0000-000000000000"
    for reply in (
        api.state(missing),
        api.update(missing, state="completed"),
        api.put_bxml(missing, "<Bxml><Hangup/></Bxml>"),
    ):
        assert reply.status_code == 404
        assert reply.json()["description"] == f"Call [{missing}] not found"


def test_spec_valid_extras_are_accepted(api, call_body, receiver):
    """The spec forbids no extra property and sets no minimum on machineDetection's
    durations: a server accepts both (unknown properties are ignored)."""
    receiver.reply("/answer", "<Response><Hangup/></Response>")
    detection = {"mode": "async", "detectionTimeout": -1, "silenceTimeout": -0.5}
    for name in ("speechThreshold", "speechEndThreshold", "machineSpeechEndThreshold"):
        detection[name] = -2
    reply = api.create(
        **call_body(futureOption=True, machineDetection={**detection, "futureAmdOption": 1})
    )
    assert reply.status_code == 201, reply.text
    assert "futureOption" not in reply.json()
    assert receiver.wait_for("disconnect")[0].payload["cause"] == "hangup"


def test_update_with_null_state_is_a_redirect(api, call_body, receiver, sandbox):
    """``state`` is nullable like the method fields: null means the default, active."""
    receiver.reply("/answer", LONG_PAUSE)
    receiver.reply("/redirected", "<Response><Hangup/></Response>")
    call_id = api.create_ok(**call_body())
    sandbox.wait_for(call_id, "answered")
    receiver.wait_for("answer")
    reply = api.update(
        call_id,
        state=None,
        redirectUrl=receiver.url("/redirected"),
        redirectMethod=None,
        futureOption="x",
    )
    assert reply.status_code == 200, reply.text
    assert receiver.wait_for("redirect")[0].path == "/redirected"
    assert receiver.wait_for("disconnect")[0].payload["cause"] == "hangup"


def test_null_state_still_needs_a_redirect_url(api, call_body):
    call_id = api.create_ok(**call_body())
    reply = api.update(call_id, state=None)
    assert reply.status_code == 400
    assert reply.json()["description"] == "Invalid redirectUrl: Required when state is active."
    api.update(call_id, state="completed")


def _allowed(reply):
    return sorted(method.strip() for method in reply.headers["Allow"].split(","))


@pytest.mark.parametrize(
    ("path", "served"),
    [
        ("", ["GET", "HEAD", "OPTIONS", "POST"]),  # listCalls, createCall
        ("/c-1", ["GET", "HEAD", "OPTIONS", "POST"]),
        ("/c-1/bxml", ["OPTIONS", "PUT"]),
        ("/c-1/recording", ["OPTIONS", "PUT"]),
        ("/c-1/recordings/r-1", ["DELETE", "GET", "HEAD", "OPTIONS"]),
    ],
)
def test_options_lists_only_the_methods_served(api, path, served):
    reply = api.session.options(api.calls_url + path)
    assert reply.status_code == 200
    assert _allowed(reply) == served
    for method in {"GET", "POST", "PUT", "PATCH", "DELETE"} - set(served):
        refused = api.session.request(method, api.calls_url + path)
        assert refused.status_code == 405, method
        assert refused.json()["description"] == "Method Not Allowed"
        assert _allowed(refused) == served


def test_unknown_paths_are_404_whatever_the_method(api):
    for method in ("GET", "POST", "DELETE", "OPTIONS"):
        reply = api.session.request(method, f"{api.api_url}/accounts/{api.account_id}/nothing")
        assert reply.status_code == 404, method
        assert reply.json()["description"] == "Not Found"
        assert "Allow" not in reply.headers


def test_call_state_through_the_calls_life(api, call_body, receiver, sandbox):
    receiver.reply("/answer", LONG_PAUSE)
    call_id = api.create_ok(**call_body())
    assert api.state(call_id).json()["state"] in ("queued", "initiated", "answered")
    receiver.wait_for("answer")
    sandbox.wait_for(call_id, "answered")
    state = api.state(call_id).json()
    assert state["state"] == "answered"
    assert ISO.fullmatch(state["startTime"]) and ISO.fullmatch(state["answerTime"])
    assert state["endTime"] is None and state["disconnectCause"] is None
    assert state["direction"] == "outbound" and "parentCallId" not in state

    assert api.update(call_id, state="completed").status_code == 200
    disconnect = receiver.wait_for("disconnect")[0].payload
    assert disconnect["cause"] == "hangup"
    sandbox.wait_for(call_id, "disconnected")
    state = api.state(call_id).json()
    assert state["state"] == "disconnected" and state["disconnectCause"] == "hangup"
    assert ISO.fullmatch(state["endTime"])
    assert state["errorMessage"] is None and state["errorId"] is None

    # An ended call cannot be modified.
    for reply in (
        api.update(call_id, state="completed"),
        api.update(call_id, redirectUrl=receiver.url("/late")),
        api.put_bxml(call_id, "<Bxml><Hangup/></Bxml>"),
    ):
        assert reply.status_code == 409
        assert reply.json()["description"] == (
            f"Call [{call_id}] cannot be modified in its current state"
        )


def test_completed_before_answer_cancels_the_call(api, call_body, receiver, sandbox):
    sandbox.script(TO, ringSeconds=200)  # 2 s at the test time scale
    call_id = api.create_ok(**call_body())
    sandbox.wait_for(call_id, "initiated")
    assert api.update(call_id, state="completed").status_code == 200
    disconnect = receiver.wait_for("disconnect")[0].payload
    assert disconnect["cause"] == "cancel"
    assert "answerTime" not in disconnect
    assert not receiver.events("answer")


def test_redirect_replaces_the_bxml_and_sets_the_tag(api, call_body, receiver, sandbox):
    receiver.reply("/answer", LONG_PAUSE)
    receiver.reply("/redirected", "<Response><Hangup/></Response>")
    call_id = api.create_ok(**call_body(tag="before"))
    sandbox.wait_for(call_id, "answered")
    receiver.wait_for("answer")
    reply = api.update(call_id, redirectUrl=receiver.url("/redirected"), tag="after")
    assert reply.status_code == 200 and reply.content == b""
    redirect = receiver.wait_for("redirect")[0]
    assert redirect.path == "/redirected" and redirect.payload["tag"] == "after"
    disconnect = receiver.wait_for("disconnect")[0].payload
    assert disconnect["cause"] == "hangup" and disconnect["tag"] == "after"


def test_redirect_before_answer_is_409(api, call_body, receiver, sandbox):
    sandbox.script(TO, ringSeconds=200)
    call_id = api.create_ok(**call_body())
    sandbox.wait_for(call_id, "initiated")
    assert api.update(call_id, redirectUrl=receiver.url("/x")).status_code == 409
    assert api.put_bxml(call_id, "<Bxml><Hangup/></Bxml>").status_code == 409
    api.update(call_id, state="completed")


def test_update_with_redirect_fields_and_completed_is_400(api, call_body):
    call_id = api.create_ok(**call_body())
    reply = api.update(call_id, state="completed", redirectUrl="http://127.0.0.1:1/x")
    assert reply.status_code == 400
    assert reply.json()["description"].startswith("Invalid redirectUrl:")


@pytest.mark.parametrize("root", ["Bxml", "Response"])
def test_put_bxml_replaces_the_document_with_either_root(api, call_body, receiver, sandbox, root):
    receiver.reply("/answer", LONG_PAUSE)
    receiver.reply("/after-bxml", "<Response><Hangup/></Response>")
    call_id = api.create_ok(**call_body())
    sandbox.wait_for(call_id, "answered")
    receiver.wait_for("answer")
    document = (
        f'<?xml version="1.0" encoding="UTF-8"?><{root}><SpeakSentence>New words'
        f'</SpeakSentence><Redirect redirectUrl="/after-bxml"/></{root}>'
    )
    reply = api.put_bxml(call_id, document)
    assert reply.status_code == 204, reply.text
    redirect = receiver.wait_for("redirect")[0]
    assert redirect.path == "/after-bxml"  # relative to the URL that served the BXML
    assert receiver.wait_for("disconnect")[0].payload["cause"] == "hangup"


def test_put_bxml_rejects_invalid_documents_and_content_types(api, call_body, receiver, sandbox):
    receiver.reply("/answer", LONG_PAUSE)
    call_id = api.create_ok(**call_body())
    sandbox.wait_for(call_id, "answered")
    invalid = api.put_bxml(call_id, "invalidBXML")
    assert invalid.status_code == 400
    assert invalid.json()["description"].startswith("Invalid BXML:")
    unknown = api.put_bxml(call_id, "<Bxml><Dance/></Bxml>")
    assert unknown.status_code == 400 and "Dance" in unknown.json()["description"]
    assert api.put_bxml(call_id, "<Bxml/>", content_type="text/plain").status_code == 415
    api.update(call_id, state="completed")
    assert receiver.wait_for("disconnect")[0].payload["cause"] == "hangup"


def test_control_api_needs_credentials_and_json(sandbox, api, call_body, receiver):
    receiver.reply("/answer", LONG_PAUSE)
    call_id = api.create_ok(**call_body())
    url = f"{sandbox.control_url}/calls/{call_id}/digits"
    assert api.session.post(url, json={"digits": "1"}, auth=("x", "y")).status_code == 401
    form = api.session.post(url, data={"digits": "1"})
    assert form.status_code == 415  # a cross-site form cannot press buttons
    assert api.session.post(url, json={"digits": "12x"}).status_code == 400
    assert api.session.post(url, json={"digits": "12#"}).status_code == 202
    hangup = api.session.post(f"{sandbox.control_url}/calls/{call_id}/hangup", json={})
    assert hangup.status_code == 202
    sandbox.wait_for(call_id, "disconnected")
    assert api.session.post(url, json={"digits": "1"}).status_code == 409
