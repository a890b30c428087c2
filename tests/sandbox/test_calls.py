"""What the sandbox does to an app: callbacks, BXML verbs, failures, callee scripts.

The app here is ``Receiver``, a real HTTP server on 127.0.0.1 that records each callback and
answers scripted BXML, so every payload can be asserted exactly.
"""

from __future__ import annotations

import uuid

import pytest

from sandbox.standalone import running
from tests.sandbox.conftest import CALL_EVENT_KEYS, TO, basic_credentials
from tests.servers import closed_port

HANGUP = "<Response><Hangup/></Response>"


def test_answer_payload_has_the_documented_fields(api, call_body, receiver, sandbox):
    receiver.reply("/answer", HANGUP)
    call_id = api.create_ok(**call_body(username="cb", password="cb-secret", tag="at creation"))
    answer = receiver.wait_for("answer")[0]
    assert list(answer.payload) == [
        *CALL_EVENT_KEYS,
        "enqueuedTime",
        "startTime",
        "answerTime",
        "tag",
    ]
    assert answer.payload["callId"] == call_id
    assert answer.payload["direction"] == "outbound"
    assert answer.payload["tag"] == "at creation"
    assert answer.payload["eventTime"].endswith("Z") and len(answer.payload["eventTime"]) == 24
    assert basic_credentials(answer) == ("cb", "cb-secret")
    disconnect = receiver.wait_for("disconnect")[0]
    assert basic_credentials(disconnect) == (
        "cb",
        "cb-secret",
    )  # the call's credentials go there too
    assert disconnect.payload["cause"] == "hangup"
    for absent in ("errorMessage", "errorId", "sipResponseCode"):
        assert absent not in disconnect.payload
    assert disconnect.payload["endTime"] >= disconnect.payload["answerTime"]


@pytest.mark.parametrize(
    ("number", "cause", "sip"),
    [
        ("+12025550486", "busy", 486),
        ("+12025550408", "timeout", None),
        ("+12025550603", "rejected", 603),
    ],
)
def test_scripted_callees_end_with_their_cause(api, call_body, receiver, number, cause, sip):
    call_id = api.create_ok(**call_body(to=number, callTimeout=5))
    disconnect = receiver.wait_for("disconnect", call_id)[0].payload
    assert disconnect["cause"] == cause
    assert disconnect["errorMessage"]
    uuid.UUID(disconnect["errorId"])
    assert disconnect.get("sipResponseCode") == sip
    assert "answerTime" not in disconnect
    assert not receiver.events("answer")


@pytest.mark.parametrize(
    "reply",
    [
        "<Response><SpeakSentence>unclosed",
        "<Response><Dance/></Response>",
        "<Bxml><Hangup/></Bxml>",  # a reply needs a Response root
        '<Response><Gather maxDigits="99"/></Response>',
    ],
    ids=["malformed", "unknown-verb", "wrong-root", "out-of-range"],
)
def test_invalid_bxml_ends_the_call_with_invalid_bxml(api, call_body, receiver, sandbox, reply):
    receiver.reply("/answer", reply)
    call_id = api.create_ok(**call_body())
    disconnect = receiver.wait_for("disconnect")[0].payload
    assert disconnect["cause"] == "invalid-bxml"
    assert "Invalid BXML in the reply to answer" in disconnect["errorMessage"]
    uuid.UUID(disconnect["errorId"])
    state = sandbox.wait_for(call_id, "disconnected")
    assert state["disconnectCause"] == "invalid-bxml"


def test_a_failing_answer_url_uses_the_fallback(api, call_body, receiver):
    receiver.reply("/fallback", HANGUP)
    dead = f"http://127.0.0.1:{closed_port()}/answer"
    api.create_ok(
        **call_body(
            answerUrl=dead,
            answerFallbackUrl=receiver.url("/fallback"),
            fallbackUsername="fb",
            fallbackPassword="fb-secret",
        )
    )
    answer = receiver.wait_for("answer")[0]
    assert answer.path == "/fallback"
    assert basic_credentials(answer) == ("fb", "fb-secret")
    assert receiver.wait_for("disconnect")[0].payload["cause"] == "hangup"


def test_a_5xx_answer_also_uses_the_fallback(api, call_body, receiver):
    receiver.reply("/answer", "", status=503)
    receiver.reply("/fallback", HANGUP)
    api.create_ok(**call_body(answerFallbackUrl=receiver.url("/fallback")))
    assert [r.path for r in receiver.wait_for("answer", count=2)] == ["/answer", "/fallback"]
    assert receiver.wait_for("disconnect")[0].payload["cause"] == "hangup"


def test_primary_and_fallback_failing_ends_with_callback_error(api, call_body, receiver, sandbox):
    receiver.reply("/answer", "", status=500)
    dead = f"http://127.0.0.1:{closed_port()}/fallback"
    call_id = api.create_ok(**call_body(answerFallbackUrl=dead))
    disconnect = receiver.wait_for("disconnect")[0].payload
    assert disconnect["cause"] == "callback-error"
    assert "HTTP 500" in disconnect["errorMessage"] and "fallback" in disconnect["errorMessage"]
    assert sandbox.wait_for(call_id, "disconnected")["disconnectCause"] == "callback-error"


def test_get_answer_method_sends_query_parameters(api, call_body, receiver):
    receiver.reply("/answer", HANGUP)
    call_id = api.create_ok(**call_body(answerMethod="GET", disconnectMethod="GET", tag="q"))
    answer = receiver.wait_for("answer")[0]
    assert answer.method == "GET"
    assert answer.payload["callId"] == call_id and answer.payload["tag"] == "q"
    assert receiver.wait_for("disconnect")[0].method == "GET"


def test_challenge_setting_sends_credentials_after_a_401(sandbox, call_body, receiver, api):
    settings = sandbox.sandbox.settings.with_(challenge=True)
    receiver.auth = ("cb", "cb-secret")
    receiver.reply("/answer", HANGUP)
    with running(settings) as challenging:
        api.api_url = challenging.api_url
        api.create_ok(**call_body(username="cb", password="cb-secret"))
        receiver.wait_for("disconnect")
    answers = [r for r in receiver.requests if r.path == "/answer"]
    assert [r.authorization is not None for r in answers] == [False, True]
    assert basic_credentials(answers[1]) == ("cb", "cb-secret")


def test_tag_verb_changes_later_callbacks_and_empty_tag_clears_it(api, call_body, receiver):
    receiver.reply("/answer", '<Response><Tag>one</Tag><Redirect redirectUrl="/r1"/></Response>')
    receiver.reply("/r1", '<Response><Tag>  two  </Tag><Redirect redirectUrl="/r2"/></Response>')
    receiver.reply("/r2", '<Response><Tag></Tag><Redirect redirectUrl="/r3"/></Response>')
    receiver.reply("/r3", HANGUP)
    api.create_ok(**call_body(tag="zero"))
    receiver.wait_for("disconnect")
    tags = {r.path: r.payload.get("tag", "ABSENT") for r in receiver.requests}
    assert tags == {
        "/answer": "zero",
        "/r1": "one",
        "/r2": "two",
        "/r3": "ABSENT",
        "/disconnect": "ABSENT",
    }
    assert "tag" not in receiver.events("disconnect")[0].payload


def test_gather_collects_pressed_digits_and_sends_gather(api, call_body, receiver, sandbox):
    receiver.reply(
        "/answer",
        '<Response><Gather gatherUrl="/gather" terminatingDigits="#" firstDigitTimeout="60">'
        "<SpeakSentence>Enter your code</SpeakSentence></Gather></Response>",
    )
    receiver.reply("/gather", HANGUP)
    call_id = api.create_ok(**call_body())
    receiver.wait_for("answer")
    sandbox.press(call_id, "12#9")
    gather = receiver.wait_for("gather")[0].payload
    assert (gather["digits"], gather["terminatingDigit"]) == ("12", "#")
    assert receiver.wait_for("disconnect")[0].payload["cause"] == "hangup"


def test_gather_times_out_with_empty_digits_and_without_url_continues(
    api, call_body, receiver, sandbox
):
    receiver.reply(
        "/answer",
        '<Response><Gather firstDigitTimeout="1"/><Gather gatherUrl="/gather" maxDigits="2"'
        ' firstDigitTimeout="1" interDigitTimeout="1"/></Response>',
    )
    receiver.reply("/gather", HANGUP)
    api.create_ok(**call_body())
    gather = receiver.wait_for("gather")[0].payload
    assert (gather["digits"], gather["terminatingDigit"]) == ("", "")


def test_scripted_gather_digits(api, call_body, receiver, sandbox):
    sandbox.script(TO, gatherDigits=["42"])
    receiver.reply("/answer", '<Response><Gather gatherUrl="/gather" maxDigits="2"/></Response>')
    receiver.reply("/gather", HANGUP)
    api.create_ok(**call_body())
    assert receiver.wait_for("gather")[0].payload["digits"] == "42"


def test_transfer_sends_transfer_answer_disconnect_and_complete(api, call_body, receiver, sandbox):
    agent = "+12025550999"
    sandbox.script(agent, bridgeSeconds=1)
    receiver.reply(
        "/answer",
        '<Response><Transfer transferCompleteUrl="/complete" transferCallerId="+12025550111">'
        '<PhoneNumber transferAnswerUrl="/transfer-answer" transferDisconnectUrl="/td" tag="b">'
        f"{agent}</PhoneNumber></Transfer></Response>",
    )
    receiver.reply(
        "/transfer-answer", "<Response><SpeakSentence>A caller</SpeakSentence></Response>"
    )
    receiver.reply("/complete", "<Response><SpeakSentence>Bye</SpeakSentence></Response>")
    call_id = api.create_ok(**call_body())
    answer = receiver.wait_for("transferAnswer")[0].payload
    b_leg = answer["callId"]
    assert b_leg != call_id and len(b_leg) == 47
    assert answer["parentCallId"] == call_id
    assert (answer["to"], answer["from"], answer["tag"]) == (agent, "+12025550111", "b")
    assert (answer["transferTo"], answer["transferCallerId"]) == (agent, "+12025550111")
    b_disconnect = receiver.wait_for("transferDisconnect")[0].payload
    assert b_disconnect["callId"] == b_leg and b_disconnect["cause"] == "hangup"
    complete = receiver.wait_for("transferComplete")[0].payload
    assert complete["callId"] == call_id and complete["cause"] == "hangup"
    assert "parentCallId" not in complete
    disconnect = receiver.wait_for("disconnect")[0].payload
    assert disconnect["callId"] == call_id and disconnect["cause"] == "hangup"
    order = [r.event_type for r in receiver.requests]
    assert order == [
        "answer",
        "transferAnswer",
        "transferDisconnect",
        "transferComplete",
        "disconnect",
    ]
    state = api.state(b_leg).json()
    assert state["parentCallId"] == call_id and state["state"] == "disconnected"


def test_transfer_to_a_busy_number_reports_busy_and_continues(api, call_body, receiver):
    receiver.reply(
        "/answer",
        '<Response><Transfer transferCompleteUrl="/complete"><PhoneNumber>+12025550486'
        "</PhoneNumber></Transfer></Response>",
    )
    receiver.reply("/complete", HANGUP)
    api.create_ok(**call_body())
    complete = receiver.wait_for("transferComplete")[0].payload
    assert complete["cause"] == "busy" and complete["errorMessage"]
    assert receiver.wait_for("disconnect")[0].payload["cause"] == "hangup"


def test_hanging_up_the_a_leg_during_a_transfer_ends_both(api, call_body, receiver, sandbox):
    receiver.reply(
        "/answer",
        '<Response><Transfer transferCompleteUrl="/complete"><PhoneNumber '
        'transferAnswerUrl="/ta" transferDisconnectUrl="/td">+12025550999</PhoneNumber>'
        "</Transfer></Response>",
    )
    call_id = api.create_ok(**call_body())
    receiver.wait_for("transferAnswer")
    sandbox.hang_up(call_id)
    assert receiver.wait_for("transferDisconnect")[0].payload["cause"] == "hangup"
    assert receiver.wait_for("disconnect")[0].payload["cause"] == "hangup"
    assert not receiver.events("transferComplete")  # only sent if the A-leg is still up


def test_record_sends_record_complete_and_recording_available(api, call_body, receiver):
    receiver.reply(
        "/answer",
        '<Response><Record recordCompleteUrl="/rc" recordingAvailableUrl="/ra" maxDuration="5"'
        ' fileFormat="mp3"/></Response>',
    )
    receiver.reply("/rc", HANGUP)
    call_id = api.create_ok(**call_body())
    complete = receiver.wait_for("recordComplete")[0].payload
    assert complete["callId"] == call_id and complete["fileFormat"] == "mp3"
    assert complete["recordingId"].startswith("r-") and complete["channels"] == 1
    assert complete["mediaUrl"].endswith(f"/recordings/{complete['recordingId']}/media")
    assert complete["duration"].startswith("PT") and complete["duration"].endswith("S")
    available = receiver.wait_for("recordingAvailable")[0].payload
    assert available["status"] == "complete"
    assert available["recordingId"] == complete["recordingId"]
    assert "answerTime" not in available
    assert receiver.wait_for("disconnect")[0].payload["cause"] == "hangup"


def test_start_gather_sends_dtmf_per_digit(api, call_body, receiver, sandbox):
    receiver.reply(
        "/answer", '<Response><StartGather dtmfUrl="/dtmf"/><Pause duration="100"/></Response>'
    )
    call_id = api.create_ok(**call_body())
    sandbox.wait_for(call_id, "answered")
    receiver.wait_for("answer")
    sandbox.press(call_id, "1*")
    dtmf = receiver.wait_for("dtmf", count=2)
    assert [d.payload["digit"] for d in dtmf] == ["1", "*"]
    sandbox.hang_up(call_id)
    assert receiver.wait_for("disconnect")[0].payload["cause"] == "hangup"


def test_every_verb_a_document_can_hold_is_simulated():
    """No BXML verb is skipped any more: each one a document can hold has its unit (the
    others live inside another verb, or are the document itself)."""
    import bxml
    from sandbox.verbs import unit_for

    verbs = [
        name
        for name, cls in bxml.Verb.registry.items()
        if not cls.nested_only and not issubclass(cls, bxml.Root)
    ]
    assert "Conference" in verbs and "StartStream" in verbs
    assert [name for name in verbs if unit_for(name) is None] == []


def test_callee_hangup_script(api, call_body, receiver, sandbox):
    sandbox.script(TO, hangupAfter=2)
    receiver.reply("/answer", '<Response><Pause duration="1000"/></Response>')
    api.create_ok(**call_body())
    assert receiver.wait_for("disconnect")[0].payload["cause"] == "hangup"
