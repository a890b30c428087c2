"""The official bandwidth-sdk 23.3.1 against every Conferences operation of the sandbox."""

from __future__ import annotations

import io
import wave

import pytest
from bandwidth.api.conferences_api import ConferencesApi
from bandwidth.exceptions import BadRequestException, NotFoundException
from bandwidth.models import UpdateConference, UpdateConferenceMember

from tests.sandbox.test_conferences import CALLERS, conference_answer, join
from tests.sandbox.test_sdk import calls_api  # noqa: F401 (fixture)


@pytest.fixture
def conferences_api(calls_api):  # noqa: F811
    return ConferencesApi(calls_api.api_client)


def test_the_sdk_drives_a_conference(conferences_api, api, call_body, receiver, sandbox):
    account = sandbox.account_id
    receiver.reply(
        "/answer", conference_answer(name="sdk-room", attrs='conferenceEventUrl="/conf" tag="sdk"')
    )
    receiver.reply(
        "/redirected", '<Response><StartRecording recordingAvailableUrl="/rec"/></Response>'
    )
    first, second, third = join(api, call_body, receiver, 3)

    (listed,) = conferences_api.list_conferences(account, name="sdk-room", page_size=10)
    assert listed.name == "sdk-room" and listed.tag == "sdk" and listed.completed_time is None
    conference_id = listed.id
    one = conferences_api.get_conference(account, conference_id)
    assert [m.call_id for m in one.active_members] == [first, second, third]
    assert one.conference_event_url == receiver.url("/conf")

    conferences_api.update_conference_member(
        account, conference_id, second, UpdateConferenceMember(mute=True, call_ids_to_coach=[third])
    )
    member = conferences_api.get_conference_member(account, conference_id, second)
    assert member.mute is True and member.hold is False and member.call_ids_to_coach == [third]
    assert member.member_url.endswith(f"/conferences/{conference_id}/members/{second}")

    conferences_api.update_conference(
        account, conference_id, UpdateConference(redirect_url=receiver.url("/redirected"))
    )
    receiver.wait_for("conferenceRedirect")
    conferences_api.update_conference_bxml(
        account,
        conference_id,
        '<?xml version="1.0" encoding="UTF-8"?><Bxml><SpeakSentence>Hi</SpeakSentence></Bxml>',
    )
    conferences_api.update_conference(account, conference_id, UpdateConference(status="completed"))
    receiver.wait_for("conferenceCompleted")
    available = receiver.wait_for("conferenceRecordingAvailable")[0].payload

    ended = conferences_api.get_conference(account, conference_id)
    assert ended.completed_time is not None and ended.active_members == []
    (recording,) = conferences_api.list_conference_recordings(account, conference_id)
    assert recording.recording_id == available["recordingId"] and recording.channels == 1
    assert recording.status == "complete" and recording.name == "sdk-room"
    got = conferences_api.get_conference_recording(account, conference_id, recording.recording_id)
    assert got.duration == available["duration"]
    media = conferences_api.download_conference_recording(
        account, conference_id, recording.recording_id
    )
    with wave.open(io.BytesIO(bytes(media))) as audio:
        seconds = audio.getnframes() / audio.getframerate()
    assert abs(seconds - float(got.duration.removeprefix("PT").removesuffix("S"))) < 0.001
    for call_id in (first, second, third):
        sandbox.hang_up(call_id)


def test_the_sdk_sees_the_conference_errors(conferences_api, sandbox):
    account = sandbox.account_id
    unknown = "conf-00000000-00000000-0000-0000-0000-000000000000"
    with pytest.raises(NotFoundException):
        conferences_api.get_conference(account, unknown)
    with pytest.raises(NotFoundException):
        conferences_api.get_conference_member(account, unknown, f"c-{CALLERS[0]}")
    with pytest.raises(BadRequestException) as raised:
        conferences_api.list_conferences(account, min_created_time="not a time")
    assert "minCreatedTime" in raised.value.body
