"""What the caller heard: each call's transcript, per leg, at its simulated clock, through
the control API (real HTTP), the control page and ``sandbox.transcript``; on the real clock
(the kit's tests cover the manual one)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

import sandbox as sandbox_package
from sandbox.clock import ManualClock, SettleTimeout
from tests.sandbox.conftest import TO

ANSWER = (
    "<Response>"
    "<SpeakSentence>Welcome to the test line.</SpeakSentence>"
    "<PlayAudio>https://example.com/jingle.wav</PlayAudio>"
    '<Pause duration="2"/>'
    "<SendDtmf>12</SendDtmf>"
    '<Gather gatherUrl="/gather" maxDigits="1" firstDigitTimeout="20">'
    "<SpeakSentence>Press a key.</SpeakSentence></Gather>"
    "</Response>"
)
AFTER_GATHER = (
    "<Response><SpeakSentence>Transferring.</SpeakSentence>"
    '<Transfer><PhoneNumber transferAnswerUrl="/agent">+12025550143</PhoneNumber></Transfer>'
    "</Response>"
)
AGENT = "<Response><SpeakSentence>You have a caller.</SpeakSentence></Response>"


def control(sandbox: Any, path: str) -> requests.Response:
    return requests.get(
        f"{sandbox.control_url}{path}", auth=(sandbox.username, sandbox.password), timeout=10
    )


def test_the_transcript_of_both_legs_through_the_control_api(api, call_body, receiver, sandbox):
    receiver.reply("/answer", ANSWER)
    receiver.reply("/gather", AFTER_GATHER)
    receiver.reply("/agent", AGENT)
    sandbox.script(TO, gatherDigits=["7"], bridgeSeconds=1)
    sandbox.script("+12025550143", bridgeSeconds=1)
    call_id = api.create_ok(**call_body())
    sandbox.wait_for(call_id, "disconnected")

    reply = control(sandbox, f"/calls/{call_id}/transcript")
    assert reply.status_code == 200
    entries = reply.json()["transcript"]
    assert {e["callId"] for e in entries} == {call_id}
    assert [(e["kind"], e["text"]) for e in entries] == [
        ("answered", "the call is answered"),
        ("speech", "Welcome to the test line."),
        ("audio", "https://example.com/jingle.wav"),
        ("pause", "2 s"),
        ("tones", "12"),
        ("pressed", "7"),  # the script presses as the Gather starts: no prompt plays
        ("speech", "Transferring."),
        ("transfer", "+12025550143"),
        ("ended", "hangup"),
    ]
    ats = [e["at"] for e in entries]
    assert ats == sorted(ats)
    # Simulated seconds: ring 1; speech 25 chars x 0.06; audio 3; the pause 2.
    at = {e["text"]: e["at"] for e in entries}
    assert at["Welcome to the test line."] == 1.0
    assert at["https://example.com/jingle.wav"] == pytest.approx(2.5)
    assert at["2 s"] == pytest.approx(5.5)
    assert entries[1]["line"] == "heard 'Welcome to the test line.'"

    # The agent's leg has its own: what the agent heard.
    [leg] = [c for c in sandbox.calls() if c["parentCallId"] == call_id]
    agent = control(sandbox, f"/calls/{leg['callId']}/transcript").json()["transcript"]
    assert [(e["kind"], e["text"]) for e in agent] == [
        ("answered", "+12025550143 answered"),
        ("speech", "You have a caller."),
        ("ended", "hangup"),
    ]
    # The call's JSON carries it too, and so does sandbox.transcript().
    assert control(sandbox, f"/calls/{call_id}").json()["transcript"] == entries
    listed = control(sandbox, "/calls").json()["calls"]
    assert next(c for c in listed if c["callId"] == leg["callId"])["transcript"] == agent
    assert sandbox_package.transcript(sandbox.sandbox, leg["callId"]) == agent
    assert sandbox.transcript(call_id) == entries  # the bandwidth_sandbox fixture's


def test_the_control_page_shows_what_the_caller_heard(api, call_body, receiver, sandbox):
    receiver.reply(
        "/answer", "<Response><SpeakSentence>Hello &lt;there&gt;</SpeakSentence></Response>"
    )
    call_id = api.create_ok(**call_body())
    sandbox.wait_for(call_id, "disconnected")
    page = control(sandbox, "/")
    assert page.status_code == 200
    html = page.text
    assert 'aria-label="What the caller heard"' in html
    assert "heard &#39;Hello &lt;there&gt;&#39;" in html  # escaped
    assert '<li class="ended">' in html


def test_a_phrase_said_ends_a_record_and_is_its_transcription(api, call_body, receiver, sandbox):
    receiver.reply(
        "/answer",
        '<Response><Record maxDuration="60" transcribe="true" '
        'transcriptionAvailableUrl="/transcribed"/></Response>',
    )
    call_id = api.create_ok(**call_body())
    sandbox.wait_for(call_id, "answered")
    said = requests.post(
        f"{sandbox.control_url}/calls/{call_id}/speech",
        json={"text": "call me back"},
        auth=(sandbox.username, sandbox.password),
        timeout=10,
    )
    assert said.status_code == 202
    [transcribed] = receiver.wait_for("transcriptionAvailable")
    assert transcribed.payload["transcription"]["text"] == "call me back"
    sandbox.wait_for(call_id, "disconnected")
    entries = control(sandbox, f"/calls/{call_id}/transcript").json()["transcript"]
    assert [e["text"] for e in entries if e["kind"] == "said"] == ["call me back"]


@pytest.mark.parametrize("text", [None, "", "   ", "x" * 4097, 7])
def test_speech_needs_a_phrase(api, call_body, receiver, sandbox, text):
    receiver.reply("/answer", '<Response><Pause duration="30"/></Response>')
    call_id = api.create_ok(**call_body())
    reply = requests.post(
        f"{sandbox.control_url}/calls/{call_id}/speech",
        json={"text": text},
        auth=(sandbox.username, sandbox.password),
        timeout=10,
    )
    assert reply.status_code == 400
    assert reply.json()["description"] == "text must be 1-4096 characters"
    sandbox.hang_up(call_id)


def test_an_unknown_call_has_no_transcript(sandbox):
    assert control(sandbox, "/calls/c-nope/transcript").status_code == 404
    assert sandbox_package.transcript(sandbox.sandbox, "c-nope") == []


def test_the_manual_clock_wakes_calls_in_deadline_order():
    """Two parked waiters: moving the clock past both wakes the earlier one first."""
    import queue
    import threading

    clock = ManualClock()
    woke: list[str] = []

    class Waiter:
        def __init__(self, call_id: str, seconds: float) -> None:
            self.call_id = call_id
            self.inbox: queue.Queue[Any] = queue.Queue()
            self.seconds = seconds
            clock.register(self)

        def run(self) -> None:
            assert clock.park(self, self.inbox, self.seconds, False) is None
            woke.append(self.call_id)
            clock.unregister(self)

    late, early = Waiter("late", 20), Waiter("early", 5)
    threads = [threading.Thread(target=w.run) for w in (late, early)]
    for thread in threads:
        thread.start()
    clock.wait_settled(10)
    assert clock.next_deadline().deadline == 5  # type: ignore[union-attr]
    clock.move_to(5)
    clock.wait_settled(10)
    assert woke == ["early"] and clock.now == 5
    clock.move_to(25)
    clock.wait_settled(10)
    assert woke == ["early", "late"]
    for thread in threads:
        thread.join(5)


def test_settling_names_the_call_still_running():
    class Busy:
        call_id = "c-busy"

    clock = ManualClock()
    clock.register(Busy())
    with pytest.raises(SettleTimeout, match="c-busy"):
        clock.wait_settled(0.05)
