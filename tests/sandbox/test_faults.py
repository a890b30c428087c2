"""Opt-in delivery faults: a callback delivered twice, late, or refused once; chosen per call
by the callee script or for every call by the settings."""

from __future__ import annotations

import pytest

from sandbox.callee import ScriptError, from_json
from tests.sandbox.conftest import TO, Api


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_duplicated_callback_arrives_twice_and_only_the_first_reply_runs(
    api, call_body, receiver, sandbox, method
):
    sandbox.script(TO, deliveryFaults={"duplicate": ["answer", "disconnect"]})
    receiver.reply("/answer", '<Response><Redirect redirectUrl="/next"/></Response>')
    receiver.reply("/next", "<Response><Hangup/></Response>")
    call_id = api.create_ok(**call_body(answerMethod=method, disconnectMethod=method))
    answers = receiver.wait_for("answer", call_id, count=2)
    disconnects = receiver.wait_for("disconnect", call_id, count=2)
    assert answers[0].payload == answers[1].payload  # the same delivery, eventTime included
    assert answers[0].method == answers[1].method == method
    assert disconnects[0].payload == disconnects[1].payload
    log = [line["text"] for line in sandbox.wait_for(call_id, "disconnected")["log"]]
    assert any(line.startswith("answer: again (delivery fault): ") for line in log)
    assert len(receiver.events("redirect", call_id)) == 1  # the second reply did not run


def test_a_callback_refused_once_is_retried(api, call_body, receiver, sandbox):
    sandbox.script(TO, deliveryFaults={"refuseOnce": ["answer"]})
    receiver.reply("/answer", "<Response><Hangup/></Response>")
    call_id = api.create_ok(**call_body())
    assert receiver.wait_for("disconnect", call_id)[0].payload["cause"] == "hangup"
    assert len(receiver.events("answer", call_id)) == 1
    log = [line["text"] for line in sandbox.wait_for(call_id, "disconnected")["log"]]
    assert "answer: first attempt refused (delivery fault)" in log
    assert any("connection refused (delivery fault)" in line for line in log)


def test_a_refused_bxml_callback_that_fails_again_goes_to_its_fallback(
    api, call_body, receiver, sandbox
):
    sandbox.script(TO, deliveryFaults={"refuseOnce": ["answer"]})
    receiver.reply("/answer", "broken", status=503)
    receiver.reply("/fallback", "<Response><Hangup/></Response>")
    call_id = api.create_ok(**call_body(answerFallbackUrl=receiver.url("/fallback")))
    assert receiver.wait_for("disconnect", call_id)[0].payload["cause"] == "hangup"
    assert [r.path for r in receiver.events("answer", call_id)] == ["/answer", "/fallback"]


def test_settings_make_every_call_deliver_late(make_sandbox, receiver):
    from sandbox.standalone import Server

    server = Server(make_sandbox(late_events="disconnect", late_seconds=100)).start()
    settings = server.sandbox.settings
    api = Api(server.api_url, settings.account_id, (settings.username, settings.password))
    try:
        receiver.reply(
            "/answer",
            '<Response><StartRecording recordingAvailableUrl="/ra"/><Pause duration="1"/>'
            "</Response>",
        )
        call_id = api.create_ok(
            to=TO,
            applicationId="app-1",
            answerUrl=receiver.url("/answer"),
            disconnectUrl=receiver.url("/disconnect"),
            **{"from": "+12025550100"},
        )
        receiver.wait_for("disconnect", call_id)
        # disconnect is sent before the recording's event, but 100 simulated s late
        events = [r.event_type for r in receiver.events(call_id=call_id)]
        assert events == ["answer", "recordingAvailable", "disconnect"]
        log = [line["text"] for line in server.sandbox.call(call_id)["log"]]
        assert "disconnect: delivered 100 s late (delivery fault)" in log
    finally:
        api.close()
        server.stop()


@pytest.mark.sandbox_settings(duplicate_events="answer, disconnect", refuse_once_events="*")
def test_the_fixture_takes_fault_settings_from_a_marker(api, call_body, receiver, sandbox):
    receiver.reply("/answer", "<Response><Hangup/></Response>")
    call_id = api.create_ok(**call_body())
    assert len(receiver.wait_for("disconnect", call_id, count=2)) == 2
    assert len(receiver.events("answer", call_id)) == 2
    log = [line["text"] for line in sandbox.wait_for(call_id, "disconnected")["log"]]
    assert "disconnect: first attempt refused (delivery fault)" in log


@pytest.mark.parametrize(
    ("faults", "problem"),
    [
        ({"twice": ["answer"]}, "deliveryFaults is an object"),
        ({"late": "answer"}, "deliveryFaults.late must be a list"),
        ({"lateSeconds": -1}, "lateSeconds"),
    ],
)
def test_bad_fault_scripts_are_named(faults, problem):
    with pytest.raises(ScriptError, match=problem):
        from_json({"deliveryFaults": faults})
