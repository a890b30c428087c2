"""Bridge: two answered calls joined; exactly one of bridgeComplete (the target left first)
or bridgeTargetComplete (the bridging call left first) follows, and its reply runs."""

from __future__ import annotations

import uuid

PAUSE = '<Response><Pause duration="3000"/></Response>'
HANGUP = "<Response><Hangup/></Response>"
BOTH_URLS = 'bridgeCompleteUrl="/bc" bridgeTargetCompleteUrl="/btc"'


def _target(api, call_body, receiver, sandbox) -> str:
    """An answered call that pauses until something happens to it."""
    receiver.reply("/target-answer", PAUSE)
    target = api.create_ok(**call_body(answerUrl=receiver.url("/target-answer")))
    sandbox.wait_for(target, "answered")
    receiver.wait_for("answer", target)
    return target


def _bridge(api, call_body, receiver, sandbox, target: str, urls: str) -> str:
    receiver.reply("/a-answer", f"<Response><Bridge {urls}>{target}</Bridge></Response>")
    caller = api.create_ok(**call_body(answerUrl=receiver.url("/a-answer")))
    receiver.wait_for("answer", caller)
    _wait_log(sandbox, target, "Bridge: bridged with ")
    return caller


def _wait_log(sandbox, call_id: str, start: str) -> None:
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(line["text"].startswith(start) for line in sandbox.call(call_id)["log"]):
            return
        time.sleep(0.02)  # poll until the deadline
    raise AssertionError(f"{call_id}: no log line starting {start!r}")


def test_the_target_leaving_first_sends_bridge_complete(api, call_body, receiver, sandbox):
    target = _target(api, call_body, receiver, sandbox)
    receiver.reply("/bc", HANGUP)
    caller = _bridge(api, call_body, receiver, sandbox, target, BOTH_URLS)
    sandbox.hang_up(target)
    complete = receiver.wait_for("bridgeComplete", caller)[0].payload
    assert complete["callId"] == caller
    for absent in ("cause", "errorMessage", "errorId"):
        assert absent not in complete
    assert receiver.wait_for("disconnect", caller)[0].payload["cause"] == "hangup"
    assert receiver.wait_for("disconnect", target)[0].payload["cause"] == "hangup"
    assert not receiver.events("bridgeTargetComplete")


def test_the_caller_leaving_first_sends_bridge_target_complete(api, call_body, receiver, sandbox):
    target = _target(api, call_body, receiver, sandbox)
    receiver.reply(
        "/btc", "<Response><SpeakSentence>The other party left</SpeakSentence></Response>"
    )
    caller = _bridge(api, call_body, receiver, sandbox, target, BOTH_URLS)
    sandbox.hang_up(caller)
    target_complete = receiver.wait_for("bridgeTargetComplete", target)[0]
    assert target_complete.path == "/btc"
    assert target_complete.payload["callId"] == target
    # The reply ran on the target: it spoke, then its document ended.
    assert receiver.wait_for("disconnect", target)[0].payload["cause"] == "hangup"
    log = [line["text"] for line in sandbox.wait_for(target, "disconnected")["log"]]
    assert any("this call's document was cancelled" in text for text in log)
    assert not receiver.events("bridgeComplete")


def test_without_a_target_url_the_target_is_hung_up(api, call_body, receiver, sandbox):
    target = _target(api, call_body, receiver, sandbox)
    caller = _bridge(api, call_body, receiver, sandbox, target, "")
    api.update(caller, state="completed")
    assert receiver.wait_for("disconnect", target)[0].payload["cause"] == "hangup"
    assert not receiver.events("bridgeTargetComplete")
    assert not receiver.events("bridgeComplete")


def _failed_bridge(api, call_body, receiver, target: str) -> tuple[str, dict]:
    """A call whose Bridge to ``target`` fails: (its id, the bridgeComplete payload)."""
    receiver.reply(
        "/fail-answer", f'<Response><Bridge bridgeCompleteUrl="/bcf">{target}</Bridge></Response>'
    )
    receiver.reply("/bcf", HANGUP)
    caller = api.create_ok(**call_body(answerUrl=receiver.url("/fail-answer")))
    return caller, receiver.wait_for("bridgeComplete", caller)[0].payload


def test_a_bridge_that_cannot_happen_fails_at_once(api, call_body, receiver, sandbox):
    unknown = f"c-00000000-{uuid.uuid4()}"
    caller, failed = _failed_bridge(api, call_body, receiver, unknown)
    assert failed["cause"] == "unknown"
    assert unknown in failed["errorMessage"]
    uuid.UUID(failed["errorId"])
    assert receiver.wait_for("disconnect", caller)[0].payload["cause"] == "hangup"


def test_a_target_already_bridged_is_busy(api, call_body, receiver, sandbox):
    target = _target(api, call_body, receiver, sandbox)
    _bridge(api, call_body, receiver, sandbox, target, "")
    _, failed = _failed_bridge(api, call_body, receiver, target)
    assert failed["cause"] == "busy"
    assert "already bridged" in failed["errorMessage"]
    sandbox.hang_up(target)


def test_a_bridge_on_sqlite_and_postgresql(db_server, db_api, call_body, receiver):
    """The two calls tell each other through stored inputs: both databases."""
    sandbox = db_server.sandbox
    target = _target(db_api, call_body, receiver, sandbox)
    receiver.reply("/btc", HANGUP)
    caller = _bridge(db_api, call_body, receiver, sandbox, target, BOTH_URLS)
    sandbox.hang_up(caller)
    assert receiver.wait_for("bridgeTargetComplete", target)[0].payload["callId"] == target
    assert receiver.wait_for("disconnect", target)[0].payload["cause"] == "hangup"
    assert receiver.wait_for("disconnect", caller)[0].payload["cause"] == "hangup"
