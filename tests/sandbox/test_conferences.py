"""Conference: several calls in one named conference, its events in order, conference BXML
(recording), the Conferences API (members' mute/hold, ending it, redirecting it)."""

from __future__ import annotations

import io
import time
import wave

import pytest

from tests.sandbox.conftest import FROM

CONF_EVENT_KEYS = ["eventType", "eventTime", "conferenceId", "name"]
MEMBER_EVENT_KEYS = [*CONF_EVENT_KEYS, "from", "to", "callId"]
CALLERS = ("+12025550111", "+12025550112", "+12025550113")


def conference_answer(name: str = "room-1", attrs: str = 'conferenceEventUrl="/conf"') -> str:
    return (
        f"<Response><SpeakSentence>Joining</SpeakSentence>"
        f"<Conference {attrs}>{name}</Conference>"
        f'<SpeakSentence>You left the conference</SpeakSentence><Pause duration="300"/>'
        "</Response>"
    )


def join(api, call_body, receiver, count: int, **body) -> list[str]:
    """``count`` calls that join the conference the receiver's /answer names, in order."""
    ids = []
    for index in range(count):
        call_id = api.create_ok(**call_body(to=CALLERS[index], **body))
        receiver.wait_for("conferenceMemberJoin", call_id)
        ids.append(call_id)
    return ids


def conference_events(receiver) -> list[tuple[str, str | None]]:
    return [
        (r.event_type, r.payload.get("callId"))
        for r in receiver.requests
        if r.event_type.startswith("conference")
    ]


def wait_until(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)  # poll until the deadline


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_three_calls_meet_in_one_conference(api, call_body, receiver, sandbox, method):
    receiver.reply(
        "/answer",
        conference_answer(
            attrs=f'conferenceEventUrl="/conf" conferenceEventMethod="{method}" tag="room tag"'
        ),
    )
    receiver.reply("/conf", "<Response><SpeakSentence>Welcome</SpeakSentence></Response>")
    first, second, third = join(api, call_body, receiver, 3)

    created = receiver.wait_for("conferenceCreated")[0]
    assert created.method == method
    assert list(created.payload) == [*CONF_EVENT_KEYS, "tag"]
    conference_id = created.payload["conferenceId"]
    assert conference_id.startswith("conf-") and len(conference_id) == 50
    joins = receiver.events("conferenceMemberJoin")
    assert [r.payload["callId"] for r in joins] == [first, second, third]
    assert list(joins[1].payload) == [*MEMBER_EVENT_KEYS, "tag"]
    assert joins[1].payload["from"] == FROM and joins[1].payload["to"] == CALLERS[1]
    assert {r.payload["tag"] for r in joins} == {"room tag"}
    assert {r.payload["conferenceId"] for r in joins} == {conference_id}

    shown = api.session.get(
        f"{api.api_url}/accounts/{api.account_id}/conferences/{conference_id}", timeout=10
    ).json()
    assert shown["name"] == "room-1" and shown["completedTime"] is None
    assert shown["tag"] == "room tag" and shown["conferenceEventMethod"] == method
    assert [m["callId"] for m in shown["activeMembers"]] == [first, second, third]

    # A member leaves when its call hangs up; the last one out completes the conference.
    for call_id in (second, first, third):
        sandbox.hang_up(call_id)
        receiver.wait_for("disconnect", call_id)
    receiver.wait_for("conferenceCompleted")
    assert conference_events(receiver) == [
        ("conferenceCreated", None),
        ("conferenceMemberJoin", first),
        ("conferenceMemberJoin", second),
        ("conferenceMemberJoin", third),
        ("conferenceMemberExit", second),
        ("conferenceMemberExit", first),
        ("conferenceMemberExit", third),
        ("conferenceCompleted", None),
    ]
    # The exit comes before the call's disconnect.
    order = [(r.event_type, r.payload.get("callId")) for r in receiver.requests]
    assert order.index(("conferenceMemberExit", second)) < order.index(("disconnect", second))
    ended = api.session.get(
        f"{api.api_url}/accounts/{api.account_id}/conferences/{conference_id}", timeout=10
    ).json()
    assert ended["completedTime"] is not None and ended["activeMembers"] == []
    log = [line["text"] for line in sandbox.call(first)["log"]]
    assert any("SpeakSentence to every member: 'Welcome'" in text for text in log)


def test_a_recorded_conference(api, call_body, receiver, sandbox):
    receiver.reply("/answer", conference_answer(attrs='conferenceEventUrl="/conf"'))
    receiver.reply(
        "/conf",
        lambda r: (
            '<Response><StartRecording recordingAvailableUrl="/rec" fileFormat="wav"'
            ' tag="ignored"/></Response>'
            if r.event_type == "conferenceCreated"
            else ""
        ),
    )
    ids = join(api, call_body, receiver, 3)
    for call_id in ids:
        sandbox.hang_up(call_id)
    available = receiver.wait_for("conferenceRecordingAvailable")[0]
    assert available.path == "/rec"
    payload = available.payload
    assert list(payload) == [
        *CONF_EVENT_KEYS,
        "accountId",
        "recordingId",
        "channels",
        "startTime",
        "endTime",
        "duration",
        "fileFormat",
        "mediaUrl",
        "status",
    ]
    assert payload["status"] == "complete" and payload["channels"] == 1
    kinds = [r.event_type for r in receiver.requests if r.event_type.startswith("conference")]
    assert kinds[-2:] == ["conferenceCompleted", "conferenceRecordingAvailable"]

    conference_id = payload["conferenceId"]
    base = f"{api.api_url}/accounts/{api.account_id}/conferences/{conference_id}"
    listed = api.session.get(f"{base}/recordings", timeout=10).json()
    assert [r["recordingId"] for r in listed] == [payload["recordingId"]]
    assert listed[0]["status"] == "complete" and listed[0]["name"] == "room-1"
    one = api.session.get(f"{base}/recordings/{payload['recordingId']}", timeout=10).json()
    assert one["mediaUrl"] == payload["mediaUrl"] == f"{base}/recordings/{one['recordingId']}/media"
    media = api.session.get(payload["mediaUrl"], timeout=10)
    assert media.headers["Content-Type"] == "audio/vnd.wave"
    seconds = float(payload["duration"].removeprefix("PT").removesuffix("S"))
    with wave.open(io.BytesIO(media.content)) as audio:
        assert audio.getnchannels() == 1
        assert abs(audio.getnframes() / audio.getframerate() - seconds) < 0.001
    assert seconds > 0
    # Not among the calls' recordings.
    assert api.session.get(f"{api.api_url}/accounts/{api.account_id}/recordings").json() == []
