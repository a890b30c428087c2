"""Recordings: what Record stores, the Recordings API, the generated media (a real WAV or
MP3 of the recorded duration) and transcription, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import math
import wave

import requests

from sandbox import media
from tests.sandbox.conftest import FROM, TO, basic_credentials

RECORD = (
    '<Response><Record recordCompleteUrl="/rc" recordingAvailableUrl="/ra" maxDuration="30"'
    ' silenceTimeout="1" transcribe="true" transcriptionAvailableUrl="/ta"'
    ' fileFormat="{fmt}"/></Response>'
)
HANGUP = "<Response><Hangup/></Response>"
SAID = "Please call me back tomorrow"


def _create(db_api, receiver) -> str:
    return db_api.create_ok(
        to=TO,
        applicationId="app-1",
        answerUrl=receiver.url("/answer"),
        disconnectUrl=receiver.url("/disconnect"),
        **{"from": FROM},
    )


def _record_a_call(db_server, db_api, receiver, fmt: str = "wav") -> tuple[str, str]:
    """A call whose callee speaks SAID for 2 s (then 1 s of silence) into a transcribed Record; (callId, recordingId)."""
    db_server.sandbox.script(TO, {"recordSeconds": 2, "transcript": SAID})
    receiver.reply("/answer", RECORD.format(fmt=fmt))
    media_while_complete: list[int] = []

    def on_record_complete(received):
        # Media is not downloadable yet when recordComplete arrives (still processing).
        reply = db_api.session.get(received.payload["mediaUrl"], timeout=10)
        media_while_complete.append(reply.status_code)
        return HANGUP

    receiver.reply("/rc", on_record_complete)
    call_id = _create(db_api, receiver)
    transcribed = receiver.wait_for("transcriptionAvailable", call_id)[0].payload
    assert media_while_complete == [404]
    return call_id, transcribed["recordingId"]


def test_a_transcribed_recording_through_the_recordings_api(db_server, db_api, receiver):
    call_id, recording_id = _record_a_call(db_server, db_api, receiver)
    calls_url = db_api.calls_url
    recording_url = f"{calls_url}/{call_id}/recordings/{recording_id}"

    events = [r.event_type for r in receiver.events(call_id=call_id)]
    assert events[:4] == [
        "answer",
        "recordComplete",
        "recordingAvailable",
        "transcriptionAvailable",
    ]
    transcribed = receiver.events("transcriptionAvailable", call_id)[0].payload
    assert transcribed["transcription"]["text"] == SAID
    assert transcribed["transcription"]["speaker"] == 0
    assert 0 <= transcribed["transcription"]["confidence"] <= 1
    assert transcribed["transcription"]["id"].startswith("t-")
    assert transcribed["transcription"]["url"] == recording_url + "/transcription"
    assert transcribed["duration"] == "PT3S"
    assert "answerTime" not in transcribed

    listed = db_api.session.get(f"{calls_url}/{call_id}/recordings", timeout=10).json()
    assert [item["recordingId"] for item in listed] == [recording_id]
    meta = db_api.session.get(recording_url, timeout=10).json()
    assert meta == listed[0]
    assert (meta["callId"], meta["to"], meta["from"], meta["direction"]) == (
        call_id,
        TO,
        FROM,
        "outbound",
    )
    assert (meta["status"], meta["duration"], meta["fileFormat"], meta["channels"]) == (
        "complete",
        "PT3S",
        "wav",
        1,
    )
    assert meta["mediaUrl"] == recording_url + "/media"
    assert meta["transcription"]["status"] == "available"

    download = db_api.session.get(meta["mediaUrl"], timeout=10)
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "audio/vnd.wave"
    with wave.open(io.BytesIO(download.content)) as audio:
        assert (audio.getnchannels(), audio.getsampwidth()) == (1, 2)
        assert audio.getnframes() / audio.getframerate() == 3.0
    assert requests.get(meta["mediaUrl"], timeout=10).status_code == 401  # credentials needed

    transcript = db_api.session.get(recording_url + "/transcription", timeout=10).json()
    assert transcript["transcripts"] == [{"speaker": 0, "text": SAID, "confidence": 0.9}]
    assert transcript["clips"][0]["endTimeSeconds"] == 3.0

    account_url = calls_url.rsplit("/calls", 1)[0] + "/recordings"
    mine = db_api.session.get(account_url, params={"from": FROM}, timeout=10).json()
    assert [item["recordingId"] for item in mine] == [recording_id]
    later = db_api.session.get(
        account_url, params={"minStartTime": "2999-01-01T00:00:00Z"}, timeout=10
    )
    assert later.json() == []
    bad = db_api.session.get(account_url, params={"minStartTime": "yesterday"}, timeout=10)
    assert bad.status_code == 400
    assert "Invalid minStartTime" in bad.json()["description"]

    assert db_api.session.delete(recording_url + "/transcription", timeout=10).status_code == 204
    assert db_api.session.get(recording_url + "/transcription", timeout=10).status_code == 404
    assert db_api.session.delete(meta["mediaUrl"], timeout=10).status_code == 204
    assert db_api.session.get(meta["mediaUrl"], timeout=10).status_code == 404
    assert db_api.session.get(recording_url, timeout=10).status_code == 200  # metadata stays
    assert db_api.session.delete(recording_url, timeout=10).status_code == 204
    assert db_api.session.get(recording_url, timeout=10).status_code == 404
    assert db_api.session.get(f"{calls_url}/{call_id}/recordings", timeout=10).json() == []
    unknown = db_api.session.get(f"{calls_url}/c-unknown/recordings", timeout=10)
    assert (unknown.status_code, unknown.json()) == (200, [])


def test_an_mp3_recording_is_served_as_mpeg_frames_of_its_duration(db_server, db_api, receiver):
    call_id, recording_id = _record_a_call(db_server, db_api, receiver, fmt="mp3")
    download = db_api.session.get(
        f"{db_api.calls_url}/{call_id}/recordings/{recording_id}/media", timeout=10
    )
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "audio/mpeg"
    frames = math.ceil(3.0 / media.MP3_FRAME_SECONDS)
    assert len(download.content) == frames * media.MP3_FRAME_BYTES
    for index in range(frames):  # every frame starts with an MPEG-1 Layer III header
        start = index * media.MP3_FRAME_BYTES
        assert download.content[start : start + 4] == media.MP3_HEADER


def test_generated_wav_media_streams_its_exact_length():
    for seconds in (0.0, 0.5, 1.0, 2.75):
        data = b"".join(media.wav(seconds))
        assert len(data) == media.wav_size(seconds)
        with wave.open(io.BytesIO(data)) as audio:
            assert audio.getnframes() == round(seconds * media.RATE)


def test_start_pause_resume_stop_recording_leaves_out_the_paused_time(db_server, db_api, receiver):
    """Speech 1 s, paused 2 s, speech 1 s: a 2 s recording (simulated time)."""
    receiver.reply(
        "/answer",
        '<Response><StartRecording recordingAvailableUrl="/ra" multiChannel="true"'
        ' fileFormat="mp3"/><Pause duration="1"/><PauseRecording/><Pause duration="2"/>'
        '<ResumeRecording/><Pause duration="1"/><StopRecording/>'
        '<StartRecording recordingAvailableUrl="/ra2"/><Pause duration="1"/></Response>',
    )
    call_id = _create(db_api, receiver)
    first = receiver.wait_for("recordingAvailable", call_id)[0].payload
    assert (first["fileFormat"], first["channels"], first["status"]) == ("mp3", 2, "complete")
    assert first["duration"] == "PT2S"  # not the 4 s the call took
    # The second one was still running when the document ended: it ends with the call.
    second = receiver.wait_for("recordingAvailable", call_id, count=2)[1]
    assert second.path == "/ra2"
    events = [r.event_type for r in receiver.events(call_id=call_id)]
    assert events.index("disconnect") < len(events) - 1  # available after the disconnect
    listed = db_api.session.get(f"{db_api.calls_url}/{call_id}/recordings", timeout=10).json()
    assert [item["recordingId"] for item in listed] == [
        first["recordingId"],
        second.payload["recordingId"],
    ]


def test_update_recording_state_pauses_and_resumes(db_server, db_api, receiver):
    receiver.reply(
        "/answer",
        '<Response><StartRecording recordingAvailableUrl="/ra"/>'
        '<Pause duration="3000"/></Response>',
    )
    call_id = _create(db_api, receiver)
    db_server.sandbox.wait_for(call_id, "answered")
    receiver.wait_for("answer", call_id)
    url = f"{db_api.calls_url}/{call_id}/recording"
    for state in ("paused", "recording"):
        reply = db_api.session.put(url, json={"state": state}, timeout=10)
        assert reply.status_code == 200, reply.text
    for bad in ({"state": "stopped"}, {}, {"state": "paused", "extra": 1}):
        refused = db_api.session.put(url, json=bad, timeout=10)
        assert refused.status_code == 400
        assert "Invalid state" in refused.json()["description"]
    db_api.update(call_id, state="completed")
    assert receiver.wait_for("recordingAvailable", call_id)[0].payload["status"] == "complete"
    db_server.sandbox.wait_for(call_id, "disconnected")
    log = [line["text"] for line in db_server.sandbox.call(call_id)["log"]]
    assert "Update Recording: paused" in log and "Update Recording: recording" in log
    ended = db_api.session.put(url, json={"state": "paused"}, timeout=10)
    assert ended.status_code == 409


def test_transcribe_call_recording_transcribes_again_and_calls_back(db_server, db_api, receiver):
    call_id, recording_id = _record_a_call(db_server, db_api, receiver)
    url = f"{db_api.calls_url}/{call_id}/recordings/{recording_id}/transcription"
    assert db_api.session.delete(url, timeout=10).status_code == 204
    db_server.sandbox.script(TO, {"transcript": "A second reading"})

    for bad, problem in [
        ({"callbackTimeout": 99}, "callbackTimeout"),
        ({"callbackMethod": "PUT"}, "callbackMethod"),
        ([], "JSON object"),
    ]:
        reply = db_api.session.post(url, json=bad, timeout=10)
        assert reply.status_code == 400 and problem in reply.json()["description"], reply.text
    missing = url.replace(recording_id, "r-00000000-00000000-0000-0000-0000-000000000000")
    assert db_api.session.post(missing, json={}, timeout=10).status_code == 404

    reply = db_api.session.post(
        url,
        json={
            "callbackUrl": receiver.url("/transcribed"),
            "callbackMethod": "GET",
            "username": "u",
            "password": "p",
            "tag": "second",
        },
        timeout=10,
    )
    assert (reply.status_code, reply.content) == (204, b"")
    got = db_api.session.get(url, timeout=10).json()
    assert got["transcripts"][0]["text"] == "A second reading"
    sent = receiver.wait_for("transcriptionAvailable", call_id, count=2)[1]
    assert (sent.method, sent.path, sent.payload["tag"]) == ("GET", "/transcribed", "second")
    assert sent.payload["recordingId"] == recording_id
    assert '"text":"A second reading"' in sent.payload["transcription"]
    assert basic_credentials(sent) == ("u", "p")


def test_speech_without_a_transcript_is_heard_as_seconds_not_an_iso_duration(
    db_server, db_api, receiver
):
    db_server.sandbox.script(TO, {"recordSeconds": 2})
    receiver.reply(
        "/answer",
        '<Response><Record recordingAvailableUrl="/ra" maxDuration="30" silenceTimeout="1"/>'
        "</Response>",
    )
    call_id = _create(db_api, receiver)
    receiver.wait_for("recordingAvailable", call_id)
    receiver.wait_for("disconnect", call_id)  # the call's entries are kept by then
    said = [e["text"] for e in db_server.sandbox.transcript(call_id) if e["kind"] == "said"]
    assert said == ["(speech for 3 s)"]  # 2 s of speech, then 1 s of silence
