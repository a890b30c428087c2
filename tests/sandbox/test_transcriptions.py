"""StartTranscription/StopTranscription: realTimeTranscriptionAvailable and the
Transcriptions API, with what the callee said (script) and what the call played."""

from __future__ import annotations

from tests.sandbox.conftest import TO


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
    assert "StartTranscription ignored: a transcription named 'live' is running" in log

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
