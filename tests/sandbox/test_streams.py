"""StartStream/StopStream: a real WebSocket to a server the test runs on 127.0.0.1 (start,
media frames of PCMU audio, stop; playAudio and clear back), and the mediaStream* events."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest

from tests.sandbox.conftest import basic_credentials
from tests.sandbox.ws_receiver import Connection, WebSocketReceiver


@pytest.fixture
def ws() -> Iterator[WebSocketReceiver]:
    with WebSocketReceiver() as server:
        yield server


def nested(value):
    """A nested object of a callback: as sent by POST, JSON-encoded by GET."""
    return json.loads(value) if isinstance(value, str) else value


def stream_document(ws, *, attrs: str = "", after: str = '<Pause duration="1"/>') -> str:
    return (
        f'<Response><StartStream name="live" destination="{ws.url("/media?call=1")}" '
        f'streamEventUrl="/streams" {attrs}>'
        '<StreamParam name="customer" value="42"/></StartStream>'
        f'{after}<StopStream name="live"/><Pause duration="0.2"/></Response>'
    )


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_stream_sends_start_media_frames_and_stop(api, call_body, receiver, ws, method):
    receiver.reply(
        "/answer",
        stream_document(
            ws,
            attrs=f'tracks="both" streamEventMethod="{method}" destinationUsername="app" '
            'destinationPassword="secret"',
        ),
    )
    call_id = api.create_ok(**call_body())
    stopped = receiver.wait_for("mediaStreamStopped", call_id)[0]
    conn = ws.wait_for(lambda c: c.closed)

    assert conn.path == "/media?call=1"  # the query string is kept
    assert base64.b64decode(conn.authorization.split()[1]) == b"app:secret"
    start = conn.messages[0]
    assert start["eventType"] == "start"
    metadata = start["metadata"]
    assert metadata["callId"] == call_id
    assert metadata["accountId"] == api.account_id
    assert metadata["streamName"] == "live"
    assert metadata["streamId"].startswith("s-")
    assert metadata["tracks"] == [
        {"name": "inbound", "mediaFormat": {"encoding": "PCMU", "sampleRate": 8000}},
        {"name": "outbound", "mediaFormat": {"encoding": "PCMU", "sampleRate": 8000}},
    ]
    assert start["streamParams"] == {"customer": "42"}
    assert conn.messages[-1] == {"eventType": "stop", "metadata": metadata}
    media = conn.of("media")
    # one 20 ms frame per track for each of the Pause's 50 x 20 ms, in track order
    assert [m["track"] for m in media] == ["inbound", "outbound"] * 50
    frames = [base64.b64decode(m["payload"]) for m in media]
    assert {len(f) for f in frames} == {160}
    assert frames[1] == b"\xff" * 160  # outbound: silence
    assert len(set(frames[0])) > 10  # inbound: a tone

    started = receiver.wait_for("mediaStreamStarted", call_id)[0]
    assert started.method == method
    described = nested(started.payload["mediaStream"])
    assert described == {
        "id": metadata["streamId"],
        "name": "live",
        "destination": ws.url("/media?call=1"),
        "startTime": described["startTime"],
        "tracks": ["inbound", "outbound"],
        "type": "WebSocket",
    }
    stop = stopped.payload
    assert stop["cause"] == "closed" and "errorMessage" not in stop
    assert nested(stop["mediaStream"])["duration"] == "PT1.000S"
    assert started.at < stopped.at
    receiver.wait_for("disconnect", call_id)


def test_an_unreachable_destination_is_rejected_and_the_document_goes_on(
    api, call_body, receiver, ws
):
    ws.refuse = 403
    receiver.reply("/answer", stream_document(ws, after='<Redirect redirectUrl="/next"/>'))
    receiver.reply("/next", "<Response><Hangup/></Response>")
    call_id = api.create_ok(**call_body())
    rejected = receiver.wait_for("mediaStreamRejected", call_id)[0].payload
    assert rejected["cause"] == "connection-error"
    assert "403" in rejected["errorMessage"]
    assert rejected["mediaStream"]["name"] == "live"
    receiver.wait_for("redirect", call_id)
    receiver.wait_for("disconnect", call_id)
    assert receiver.events("mediaStreamStopped", call_id) == []


def test_duplicate_names_and_the_track_limit_are_rejected(api, call_body, receiver, ws, sandbox):
    second = f'<StartStream name="live" destination="{ws.url("/b")}" streamEventUrl="/streams"/>'
    third = (
        f'<StartStream name="more" tracks="both" destination="{ws.url("/c")}" '
        'streamEventUrl="/streams"/>'
    )
    fourth = f'<StartStream name="x" tracks="both" destination="{ws.url("/d")}"/>'
    receiver.reply("/answer", stream_document(ws, after=second + third + fourth))
    call_id = api.create_ok(**call_body())
    rejected = receiver.wait_for("mediaStreamRejected", call_id)[0].payload
    assert rejected["cause"] == "duplicate"
    assert rejected["errorMessage"] == "A stream with the name live already exists"
    assert rejected["originalMediaStream"]["destination"] == ws.url("/media?call=1")
    receiver.wait_for("disconnect", call_id)
    # "more" (2 tracks) brought the call to 3; "x" would make 5: rejected, without an event
    started = [r.payload["mediaStream"]["name"] for r in receiver.events("mediaStreamStarted")]
    assert started == ["live", "more"]
    log = [line["text"] for line in sandbox.wait_for(call_id, "disconnected")["log"]]
    assert any("StartStream 'x' rejected: track-limit" in line for line in log)
    assert {c.path for c in ws.connections} == {"/media?call=1", "/c"}


def test_bidirectional_play_audio_and_clear_then_the_app_closes(
    api, call_body, receiver, ws, sandbox
):
    def talk_back(conn: Connection) -> None:
        audio = base64.b64encode(b"\xff" * 800).decode()
        conn.send(
            {"eventType": "playAudio", "media": {"contentType": "audio/pcmu", "payload": audio}}
        )
        conn.send({"eventType": "playAudio", "media": {"contentType": "audio/L16", "payload": ""}})
        conn.send({"eventType": "playAudio", "media": ["not", "an", "object"]})
        conn.socket.send("not JSON")
        conn.send({"eventType": "clear"})
        conn.socket.close(1000)

    ws.on_start = talk_back
    receiver.reply(
        "/answer",
        f'<Response><StartStream name="bot" mode="bidirectional" destination="{ws.url("/bot")}" '
        'streamEventUrl="/streams"/><StopStream name="bot" wait="true"/>'
        "<SpeakSentence>after the stream</SpeakSentence></Response>",
    )
    call_id = api.create_ok(**call_body())
    stopped = receiver.wait_for("mediaStreamStopped", call_id)[0].payload
    assert stopped["cause"] == "closed"
    receiver.wait_for("disconnect", call_id)
    log = [line["text"] for line in sandbox.wait_for(call_id, "disconnected")["log"]]
    assert "stream 'bot': playAudio 100 ms" in log
    assert "stream 'bot': playAudio ignored (audio/pcmu base64 only)" in log
    assert "stream 'bot': clear (queued audio dropped)" in log
    assert log.count("stream 'bot': playAudio ignored (audio/pcmu base64 only)") == 2
    assert "stream 'bot': unknown message ignored" in log
    assert len(receiver.events("mediaStreamStopped", call_id)) == 1


def test_an_abnormal_close_is_a_connection_error(api, call_body, receiver, ws):
    ws.on_start = lambda conn: conn.socket.close(4000, "bye")
    receiver.reply(
        "/answer",
        f'<Response><StartStream name="s" destination="{ws.url("/s")}" streamEventUrl="/streams" '
        'username="u" password="p"/><Pause duration="30"/></Response>',
    )
    call_id = api.create_ok(**call_body())
    stopped = receiver.wait_for("mediaStreamStopped", call_id)[0]
    assert stopped.payload["cause"] == "connection-error"
    assert "4000" in stopped.payload["errorMessage"]
    assert basic_credentials(stopped) == ("u", "p")
    api.update(call_id, state="completed")
    receiver.wait_for("disconnect", call_id)
    assert len(receiver.events("mediaStreamStopped", call_id)) == 1


def test_the_end_of_the_call_stops_a_running_stream(api, call_body, receiver, ws):
    receiver.reply(
        "/answer",
        f'<Response><StartStream destination="{ws.url("/s")}" streamEventUrl="/streams"/>'
        '<Pause duration="0.5"/></Response>',
    )
    call_id = api.create_ok(**call_body())
    stopped = receiver.wait_for("mediaStreamStopped", call_id)[0].payload
    assert stopped["cause"] == "closed"
    assert stopped["mediaStream"]["name"] == stopped["mediaStream"]["id"]  # default name
    conn = ws.wait_for(lambda c: c.closed)
    assert len(conn.of("media")) == 25
    assert conn.messages[-1]["eventType"] == "stop"


def test_the_app_stores_the_stream_events(
    api, call_body, receiver, ws, sandbox, live_app, app_callback_auth
):
    """The framework's /callbacks/stream takes every mediaStream* event the sandbox sends."""
    events_url = f"{live_app.base_url}/callbacks/stream"
    credentials = 'username="{username}" password="{password}"'.format(**app_callback_auth)
    receiver.reply(
        "/answer",
        f'<Response><StartStream name="a" destination="{ws.url("/a")}" '
        f'streamEventUrl="{events_url}" {credentials}/>'
        f'<StartStream name="a" destination="{ws.url("/a")}" streamEventUrl="{events_url}" '
        f'{credentials}/><Pause duration="0.1"/></Response>',
    )
    call_id = api.create_ok(**call_body())
    sandbox.wait_for(call_id, "disconnected")  # after its last event was acknowledged
    assert live_app.events(call_id) == [
        "mediaStreamStarted",
        "mediaStreamRejected",
        "mediaStreamStopped",
    ]


def test_a_stream_whose_driver_died_ends_with_a_connection_error(make_sandbox, receiver, ws):
    """Another driver resumes the call (SQLite, then PostgreSQL); the socket stayed behind."""
    receiver.reply(
        "/answer",
        f'<Response><StartStream name="s" destination="{ws.url("/s")}" streamEventUrl="/streams"/>'
        '<Pause duration="60"/><Redirect redirectUrl="/after"/></Response>',
    )
    receiver.reply("/after", "<Response><Hangup/></Response>")
    body = {
        "to": "+12025550123",
        "from": "+12025550100",
        "applicationId": "app-1",
        "answerUrl": receiver.url("/answer"),
        "disconnectUrl": receiver.url("/disconnect"),
    }
    dying = make_sandbox(lease_seconds=0.5)
    call_id = dying.create_call("9900000", body, "http://sandbox/api/v2")["callId"]
    receiver.wait_for("mediaStreamStarted", call_id)
    dying.driver.abandon()
    assert ws.wait_for(lambda c: c.closed).messages[0]["eventType"] == "start"

    survivor = make_sandbox(lease_seconds=0.5)
    survivor.start_driver()
    stopped = receiver.wait_for("mediaStreamStopped", call_id, timeout=20)[0].payload
    assert stopped["cause"] == "connection-error"
    assert "driver changed" in stopped["errorMessage"]
    assert stopped["mediaStream"]["name"] == "s"
    assert survivor.wait_for(call_id, "disconnected", timeout=10)["disconnectCause"] == "hangup"
    assert len(receiver.events("mediaStreamStarted", call_id)) == 1


def test_a_destination_that_stops_reading_cannot_hold_the_call(api, call_body, receiver):
    """A receiver that never reads: once the sandbox's sends block, StopStream drops the
    connection (connection-error) and the call goes on."""
    import threading

    from websockets.sync.server import serve

    release = threading.Event()

    def deaf(connection):
        release.wait(60)  # reads nothing: the socket buffers fill, then sends block

    with serve(deaf, "127.0.0.1", 0, max_queue=1, close_timeout=0.5) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.socket.getsockname()[1]
        receiver.reply(
            "/answer",
            f'<Response><StartStream name="s" tracks="both" destination="ws://127.0.0.1:{port}/"'
            ' streamEventUrl="/streams"/><Pause duration="600"/><StopStream name="s"/>'
            '<Redirect redirectUrl="/after"/></Response>',
        )
        receiver.reply("/after", "<Response><Hangup/></Response>")
        call_id = api.create_ok(**call_body())
        try:
            stopped = receiver.wait_for("mediaStreamStopped", call_id, timeout=60)[0].payload
            assert stopped["cause"] == "connection-error"
            assert stopped["errorMessage"] == "the destination stopped reading the stream"
            receiver.wait_for("redirect", call_id)
            receiver.wait_for("disconnect", call_id)
        finally:
            release.set()
            server.shutdown()
