"""The official bandwidth-sdk 23.3.1, pointed at the sandbox: create, read, update, replace."""

from __future__ import annotations

import bandwidth
import pytest
from bandwidth.api.calls_api import CallsApi
from bandwidth.models import CreateCall, UpdateCall

from tests.sandbox.conftest import FROM, TO


@pytest.fixture
def calls_api(sandbox):
    configuration = bandwidth.Configuration(
        host=sandbox.api_url,
        username=sandbox.username,
        password=sandbox.password,
        ignore_operation_servers=True,  # the SDK's operations hard-code Bandwidth's host
    )
    with bandwidth.ApiClient(configuration) as client:
        yield CallsApi(client)


def _create(calls_api, sandbox, receiver, **extra):
    """Create Call through the SDK, pointed at the receiver's /answer and /disconnect."""
    body = CreateCall(
        to=TO,
        var_from=FROM,
        application_id="sdk-app",
        answer_url=receiver.url("/answer"),
        disconnect_url=receiver.url("/disconnect"),
        **extra,
    )
    return calls_api.create_call(sandbox.account_id, body)


def test_the_sdk_creates_reads_updates_and_replaces_bxml(calls_api, sandbox, receiver):
    receiver.reply("/answer", '<Response><Pause duration="60"/></Response>')
    receiver.reply("/from-sdk-bxml", '<Response><Pause duration="60"/></Response>')
    created = _create(calls_api, sandbox, receiver, tag="from the sdk")
    call_id = created.call_id
    assert len(call_id) == 47 and created.account_id == sandbox.account_id
    assert created.call_url.endswith(f"/calls/{call_id}")

    sandbox.wait_for(call_id, "answered")
    state = calls_api.get_call_state(sandbox.account_id, call_id)
    assert state.state == "answered" and state.answer_time is not None
    assert receiver.wait_for("answer")[0].payload["tag"] == "from the sdk"

    calls_api.update_call_bxml(
        sandbox.account_id,
        call_id,
        '<?xml version="1.0" encoding="UTF-8"?><Bxml><SpeakSentence locale="en_US" '
        'gender="female" voice="susan">This is a test bxml response</SpeakSentence>'
        '<Redirect redirectUrl="/from-sdk-bxml"/></Bxml>',
    )
    assert receiver.wait_for("redirect")[0].path == "/from-sdk-bxml"

    # UpdateCall(state="completed") also sends the redirectMethod defaults.
    calls_api.update_call(sandbox.account_id, call_id, UpdateCall(state="completed"))
    assert receiver.wait_for("disconnect")[0].payload["cause"] == "hangup"
    sandbox.wait_for(call_id, "disconnected")
    final = calls_api.get_call_state(sandbox.account_id, call_id)
    assert final.state == "disconnected" and final.disconnect_cause == "hangup"


def test_the_sdk_sees_bandwidths_errors(calls_api, sandbox):
    from bandwidth.exceptions import BadRequestException, NotFoundException

    with pytest.raises(NotFoundException):
        calls_api.get_call_state(sandbox.account_id, "c-00000000-00000000-0000-0000-0000-00000000")
    with pytest.raises(BadRequestException) as raised:
        calls_api.create_call(
            sandbox.account_id,
            CreateCall(
                to="scooby-doo",
                var_from=FROM,
                application_id="x",
                answer_url="http://127.0.0.1:9/a",
            ),
        )
    assert "Invalid to" in raised.value.body


def test_the_sdk_lists_calls_and_reads_downloads_and_deletes_recordings(
    calls_api, sandbox, receiver
):
    import io
    import wave

    from bandwidth.api.recordings_api import RecordingsApi

    sandbox.script(TO, recordSeconds=1, transcript="sdk says hello")
    receiver.reply(
        "/answer",
        '<Response><Record recordingAvailableUrl="/ra" silenceTimeout="1" transcribe="true"'
        ' transcriptionAvailableUrl="/ta"/></Response>',
    )
    created = _create(calls_api, sandbox, receiver)
    call_id = created.call_id
    receiver.wait_for("transcriptionAvailable", call_id)
    sandbox.wait_for(call_id, "disconnected")
    account = sandbox.account_id

    listed = calls_api.list_calls(account, to=TO, page_size=10)
    assert [call.call_id for call in listed] == [call_id]
    assert listed[0].state == "disconnected"

    recordings = RecordingsApi(calls_api.api_client)
    found = recordings.list_call_recordings(account, call_id)
    assert len(found) == 1 and found[0].duration == "PT2S"
    recording_id = found[0].recording_id
    one = recordings.get_call_recording(account, call_id, recording_id)
    assert one.status == "complete" and one.transcription.status == "available"
    assert [r.recording_id for r in recordings.list_account_call_recordings(account)] == [
        recording_id
    ]
    with wave.open(
        io.BytesIO(recordings.download_call_recording(account, call_id, recording_id))
    ) as audio:
        assert audio.getnframes() / audio.getframerate() == 2.0
    transcript = recordings.get_recording_transcription(account, call_id, recording_id)
    assert transcript.transcripts[0].text == "sdk says hello"
    recordings.delete_recording_transcription(account, call_id, recording_id)

    from bandwidth.models import TranscribeRecording

    recordings.transcribe_call_recording(
        account,
        call_id,
        recording_id,
        TranscribeRecording(callback_url=receiver.url("/again"), tag="again"),
    )
    again = receiver.wait_for("transcriptionAvailable", call_id, count=2)[1]
    assert (again.path, again.payload["tag"]) == ("/again", "again")
    transcript = recordings.get_recording_transcription(account, call_id, recording_id)
    assert transcript.transcripts[0].text == "sdk says hello"
    recordings.delete_recording_media(account, call_id, recording_id)
    recordings.delete_recording(account, call_id, recording_id)
    assert recordings.list_call_recordings(account, call_id) == []
