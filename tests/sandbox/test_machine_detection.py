"""Create Call ``machineDetection``: sync results ride on ``answer``; async ones arrive as
``machineDetectionComplete``; the callee script decides human, machine or silence."""

from __future__ import annotations

import pytest

from sandbox import amd
from sandbox.callee import Callee
from tests.sandbox.conftest import TO, basic_credentials

KEEP_BUSY = '<Response><Pause duration="60"/></Response>'


@pytest.mark.parametrize(
    ("script", "config", "expected"),
    [
        ({"machineDetection": "human"}, {}, ("human", 6.0)),
        ({"machineDetection": "human", "greetingSeconds": 3}, {}, ("human", 8.0)),
        ({"machineDetection": "machine"}, {}, ("answering-machine", 10.0)),
        ({"machineDetection": "machine"}, {"speechThreshold": 4}, ("answering-machine", 4.0)),
        (
            {"machineDetection": "machine", "greetingSeconds": 8},
            {"speechThreshold": 4, "delayResult": True, "machineSpeechEndThreshold": 2},
            ("answering-machine", 10.0),
        ),
        ({"machineDetection": "machine"}, {"delayResult": True}, ("timeout", 15.0)),
        ({"machineDetection": "silence"}, {}, ("silence", 10.0)),
        ({"machineDetection": "silence"}, {"detectionTimeout": 5}, ("timeout", 5.0)),
    ],
)
def test_what_detection_finds_and_when(script, config, expected):
    from sandbox import callee

    assert amd.detect(config, callee.from_json(script)) == expected


def test_sync_detection_holds_answer_and_carries_the_result(api, call_body, receiver, sandbox):
    sandbox.script(TO, machineDetection="machine", greetingSeconds=12)
    receiver.reply("/answer", "<Response><Hangup/></Response>")
    call_id = api.create_ok(**call_body(machineDetection={"mode": "sync", "speechThreshold": 4}))
    answer = receiver.wait_for("answer", call_id)[0].payload
    assert answer["machineDetectionResult"] == {"value": "answering-machine", "duration": "PT4S"}
    assert not receiver.events("machineDetectionComplete")
    assert receiver.wait_for("disconnect", call_id)[0].payload["cause"] == "hangup"
    log = [line["text"] for line in sandbox.call(call_id)["log"]]
    assert "machine detection (sync): answering-machine after 4 s" in log


def test_async_detection_sends_machine_detection_complete(api, call_body, receiver, sandbox):
    sandbox.script(TO, machineDetection="human", greetingSeconds=1)
    receiver.reply("/answer", KEEP_BUSY)
    call_id = api.create_ok(
        **call_body(
            machineDetection={
                "callbackUrl": receiver.url("/amd"),
                "username": "amd-user",
                "password": "amd-secret",
                "speechEndThreshold": 2,
            }
        )
    )
    answer = receiver.wait_for("answer", call_id)[0].payload
    assert "machineDetectionResult" not in answer  # async: answer goes at once
    detected = receiver.wait_for("machineDetectionComplete", call_id)[0]
    assert detected.path == "/amd"
    assert basic_credentials(detected) == ("amd-user", "amd-secret")
    assert detected.payload["machineDetectionResult"] == {"value": "human", "duration": "PT3S"}
    assert detected.payload["answerTime"] == answer["answerTime"]
    sandbox.hang_up(call_id)
    assert receiver.wait_for("disconnect", call_id)[0].payload["cause"] == "hangup"


def test_async_detection_after_the_call_ended_sends_nothing(api, call_body, receiver, sandbox):
    sandbox.script(TO, machineDetection="silence")
    receiver.reply("/answer", "<Response><Hangup/></Response>")
    call_id = api.create_ok(**call_body(machineDetection={"callbackUrl": receiver.url("/amd")}))
    sandbox.wait_for(call_id, "disconnected")
    receiver.wait_for("disconnect", call_id)
    log = [line["text"] for line in sandbox.call(call_id)["log"]]
    assert "machine detection (async): silence after 10 s" in log
    assert not receiver.events("machineDetectionComplete")


def test_a_bad_machine_detection_script_is_refused():
    from sandbox import callee

    with pytest.raises(callee.ScriptError, match="machineDetection must be one of"):
        callee.from_json({"machineDetection": "robot"})
    assert Callee().machine_detection == "human"
