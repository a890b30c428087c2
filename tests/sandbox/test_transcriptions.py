"""StartTranscription/StopTranscription: realTimeTranscriptionAvailable and the
Transcriptions API, with what the callee said (script) and what the call played."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.sandbox.conftest import TO
from tests.sandbox.ws_receiver import WebSocketReceiver


def test_a_real_time_transcription_of_both_tracks(api, call_body, receiver, sandbox):
    sandbox.script(TO, transcript="I need help with my order")
    receiver.reply(
        "/answer",
        '<Response><StartTranscription name="live" tracks="both" transcriptionEventUrl="/rtt"/>'
        "<SpeakSentence>How can I help?</SpeakSentence>"
        '<StartTranscription name="live"/>'  # a duplicate name is ignored
        '<StopTranscription name="live"/><SpeakSentence>Goodbye</SpeakSentence></Response>',
    )
    call_id = api.create_ok(**call_body())
    available = receiver.wait_for("realTimeTranscriptionAvailable", call_id)[0].payload
    details = available["realTimeTranscription"]
    assert (details["name"], details["tracks"], details["status"]) == (
        "live",
        ["inbound", "outbound"],
        "available",
    )
    assert details["id"].startswith("t-")
    assert details["url"] == f"{api.calls_url}/{call_id}/transcriptions/{details['id']}"
    assert details["completedTime"] >= details["startTime"]
    receiver.wait_for("disconnect", call_id)

    listed = api.session.get(f"{api.calls_url}/{call_id}/transcriptions", timeout=10).json()
    assert listed == [
        {
            "transcriptionId": details["id"],
            "transcriptionName": "live",
            "transcriptionUrl": details["url"],
        }
    ]
    got = api.session.get(details["url"], timeout=10).json()
    assert (got["callId"], got["transcriptionId"]) == (call_id, details["id"])
    assert [(t["track"], t["transcript"]) for t in got["tracks"]] == [
        ("inbound", "I need help with my order"),
        ("outbound", "How can I help?"),  # Goodbye came after StopTranscription
    ]
    log = [line["text"] for line in sandbox.wait_for(call_id, "disconnected")["log"]]
    assert (
        "StartTranscription 'live' ignored: duplicate "
        "(A transcription with the name live already exists)" in log
    )

    deleted = api.session.delete(details["url"], timeout=10)
    assert (deleted.status_code, deleted.content) == (200, b"")
    assert api.session.get(details["url"], timeout=10).status_code == 404
    assert api.session.delete(details["url"], timeout=10).status_code == 404


def test_a_transcription_still_running_ends_with_the_call(api, call_body, receiver, sandbox):
    receiver.reply(
        "/answer",
        '<Response><StartTranscription transcriptionEventUrl="/rtt" tracks="outbound"/>'
        "<SpeakSentence>Your balance is ten dollars</SpeakSentence></Response>",
    )
    call_id = api.create_ok(**call_body())
    available = receiver.wait_for("realTimeTranscriptionAvailable", call_id)[0].payload
    assert available["realTimeTranscription"]["name"] == available["realTimeTranscription"]["id"]
    got = api.session.get(available["realTimeTranscription"]["url"], timeout=10).json()
    assert got["tracks"][0]["transcript"] == "Your balance is ten dollars"
    events = [r.event_type for r in receiver.events(call_id=call_id)]
    assert events.index("disconnect") < events.index("realTimeTranscriptionAvailable")


@pytest.fixture
def ws() -> Iterator[WebSocketReceiver]:
    with WebSocketReceiver() as server:
        yield server


def transcribing(ws, *, attrs: str = "") -> str:
    return (
        f'<Response><StartTranscription name="live" tracks="both" destination="{ws.url("/rtt")}" '
        f'transcriptionEventUrl="/rtt" {attrs}><CustomParam name="agent" value="7"/>'
        "</StartTranscription><SpeakSentence>How can I help?</SpeakSentence>"
        f'<StartTranscription name="live" destination="{ws.url("/again")}" '
        'transcriptionEventUrl="/rtt"/>'
        '<StopTranscription name="live"/><SpeakSentence>Goodbye</SpeakSentence></Response>'
    )


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_destination_gets_the_phrases_and_the_events_follow(
    api, call_body, receiver, sandbox, ws, method
):
    sandbox.script(TO, transcript="My card was declined. Can you check it?")
    receiver.reply("/answer", transcribing(ws, attrs=f'transcriptionEventMethod="{method}"'))
    call_id = api.create_ok(**call_body())
    available = receiver.wait_for("realTimeTranscriptionAvailable", call_id)[0]
    conn = ws.wait_for(lambda c: c.closed)
    assert conn.path == "/rtt"
    start, *phrases, stop = conn.messages
    assert start["eventType"] == "start"
    assert start["customParams"] == {"agent": "7"}
    metadata = start["metadata"]
    assert (metadata["callId"], metadata["transcriptionName"]) == (call_id, "live")
    assert metadata["tracks"] == [{"name": "inbound"}, {"name": "outbound"}]
    assert [(p["eventType"], p["track"], p["transcript"]) for p in phrases] == [
        ("transcription", "inbound", "My card was declined."),
        ("transcription", "inbound", "Can you check it?"),
        ("transcription", "outbound", "How can I help?"),
    ]
    assert [i["content"] for i in phrases[2]["items"]] == ["How", "can", "I", "help", "?"]
    assert phrases[2]["items"][-1]["type"] == "PUNCTUATION"
    assert stop == {"eventType": "stop", "metadata": metadata}

    events = [r for r in receiver.events(call_id=call_id) if r.path == "/rtt"]
    assert [r.event_type for r in events] == [
        "realTimeTranscriptionStarted",
        "realTimeTranscriptionRejected",  # the second "live"
        "realTimeTranscriptionStopped",
        "realTimeTranscriptionAvailable",
    ]
    # each verb's own method: the duplicate's verb does not set one
    assert [r.method for r in events] == [method, "POST", method, method]
    started, rejected, stopped = (nested(r.payload) for r in events[:3])
    assert started["realTimeTranscription"]["id"] == metadata["realTimeTranscriptionId"]
    assert started["realTimeTranscription"]["destination"] == ws.url("/rtt")
    assert rejected["cause"] == "duplicate"
    assert rejected["originalTranscription"]["id"] == metadata["realTimeTranscriptionId"]
    assert stopped["cause"] == "closed"
    assert stopped["realTimeTranscription"]["duration"].startswith("PT")
    assert nested(available.payload)["realTimeTranscription"]["status"] == "available"
    assert [c.path for c in ws.connections] == ["/rtt"]  # the duplicate never connected


def test_an_unreachable_destination_is_rejected(api, call_body, receiver, ws):
    ws.refuse = 500
    receiver.reply("/answer", transcribing(ws))
    call_id = api.create_ok(**call_body())
    rejected = receiver.wait_for("realTimeTranscriptionRejected", call_id, count=2)
    assert [r.payload["cause"] for r in rejected] == ["connection-error", "connection-error"]
    assert "500" in rejected[0].payload["errorMessage"]
    receiver.wait_for("disconnect", call_id)
    assert receiver.events("realTimeTranscriptionStarted", call_id) == []
    assert receiver.events("realTimeTranscriptionAvailable", call_id) == []


def nested(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload with its nested objects decoded (GET sends them JSON-encoded)."""
    return {
        key: json.loads(value) if isinstance(value, str) and value.startswith("{") else value
        for key, value in payload.items()
    }
