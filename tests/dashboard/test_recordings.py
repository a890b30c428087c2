"""Recordings played in the call page: media fetched through the app, with the Voice API's
credentials, in byte-range windows, only from the configured Voice API."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dashboard import recordings
from tests.callbacks.helpers import call_id
from tests.calls.fake_bandwidth import ACCOUNT_ID, API_PASSWORD, API_USER
from tests.dashboard.conftest import FROM_NUMBER, login, stored_event

MEDIA = bytes(range(256)) * 6000  # 1.5 MB: more than one window


class MediaServer:
    """A Voice API that serves one recording's media, with or without Range support."""

    def __init__(self, *, ranges: bool = True, status: int = 200) -> None:
        self.ranges, self.status = ranges, status
        self.requests: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append({"path": self.path, **dict(self.headers)})
                if owner.status != 200:
                    self.send_response(owner.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body, status = MEDIA, 200
                wanted = self.headers.get("Range")
                headers = {"Content-Type": "audio/vnd.wave"}
                if owner.ranges and wanted:
                    first, _, last = wanted.removeprefix("bytes=").partition("-")
                    start = int(first) if first else len(MEDIA) - int(last)
                    end = min(int(last), len(MEDIA) - 1) if first and last else len(MEDIA) - 1
                    body, status = MEDIA[start : end + 1], 206
                    headers["Content-Range"] = f"bytes {start}-{end}/{len(MEDIA)}"
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v2"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(params=[True, False], ids=["api-ranges", "api-whole-file"])
def media_server(request) -> Iterator[MediaServer]:
    server = MediaServer(ranges=request.param)
    yield server
    server.stop()


def api_config(app_config: dict[str, Any], base_url: str) -> dict[str, Any]:
    return {
        **app_config,
        "VOICE_BACKEND": "bandwidth",
        "BW_VOICE_API_URL": base_url,
        "BW_ACCOUNT_ID": ACCOUNT_ID,
        "BW_USERNAME": API_USER,
        "BW_PASSWORD": API_PASSWORD,
        "BW_APPLICATION_ID": "app-123",
        "BW_FROM_NUMBER": FROM_NUMBER,
    }


@pytest.fixture
def api_app(app_config, media_server):
    from app import create_app

    return create_app(api_config(app_config, media_server.base_url))


@pytest.fixture
def operator_of(api_app):
    client = api_app.test_client()
    assert login(client).status_code == 303
    return client


def recorded_call(app: Any, cid: str, media_url: str, recording_id: str = "r-1") -> str:
    payload = {
        "eventType": "recordingAvailable",
        "callId": cid,
        "recordingId": recording_id,
        "mediaUrl": media_url,
        "duration": "PT1M34.0S",
        "fileFormat": "wav",
        "channels": 1,
        "status": "complete",
    }
    stored_event(app, "recordingAvailable", call_id=cid, payload=payload)
    return cid


def media_url(base_url: str, cid: str, recording_id: str = "r-1") -> str:
    return f"{base_url}/accounts/{ACCOUNT_ID}/calls/{cid}/recordings/{recording_id}/media"


def get_media(client: Any, cid: str, recording_id: str = "r-1", **headers: str) -> Any:
    return client.get(f"/dashboard/calls/{cid}/recordings/{recording_id}/media", headers=headers)


def test_the_page_has_an_audio_element_served_through_the_app(operator_of, api_app, media_server):
    cid = call_id()
    recorded_call(api_app, cid, media_url(media_server.base_url, cid))
    html = operator_of.get(f"/dashboard/calls/{cid}").get_data(as_text=True)
    route = f"/dashboard/calls/{cid}/recordings/r-1/media"
    assert f'<audio controls preload="metadata" src="{route}">' in html
    section = html.split('id="recordings"')[1].split("</section>")[0]
    assert media_server.base_url not in section
    assert " · 1 min 34 s" in section and "PT1M34" not in section  # not the ISO duration


def test_a_range_comes_back_as_a_window_with_the_api_credentials(
    operator_of, api_app, media_server
):
    cid = call_id()
    recorded_call(api_app, cid, media_url(media_server.base_url, cid))
    reply = get_media(operator_of, cid, Range="bytes=0-")
    assert reply.status_code == 206
    assert reply.headers["Content-Range"] == f"bytes 0-{recordings.MEDIA_WINDOW - 1}/{len(MEDIA)}"
    assert reply.headers["Content-Type"] == "audio/wav"
    assert reply.headers["Accept-Ranges"] == "bytes"
    assert reply.get_data() == MEDIA[: recordings.MEDIA_WINDOW]
    sent = media_server.requests[-1]
    assert sent["path"] == f"/api/v2/accounts/{ACCOUNT_ID}/calls/{cid}/recordings/r-1/media"
    token = base64.b64encode(f"{API_USER}:{API_PASSWORD}".encode()).decode()
    assert sent["Authorization"] == f"Basic {token}"

    rest = get_media(operator_of, cid, Range=f"bytes={recordings.MEDIA_WINDOW}-")
    assert rest.status_code == 206
    assert rest.get_data() == MEDIA[recordings.MEDIA_WINDOW :]
    assert rest.headers["Content-Range"].endswith(f"-{len(MEDIA) - 1}/{len(MEDIA)}")

    middle = get_media(operator_of, cid, Range="bytes=1000-1999")
    assert (middle.status_code, middle.get_data()) == (206, MEDIA[1000:2000])
    tail = get_media(operator_of, cid, Range="bytes=-100")
    assert (tail.status_code, tail.get_data()) == (206, MEDIA[-100:])


def test_without_a_range_the_whole_file(operator_of, api_app, media_server):
    cid = call_id()
    recorded_call(api_app, cid, media_url(media_server.base_url, cid))
    reply = get_media(operator_of, cid)
    assert reply.status_code == 200
    assert reply.headers["Content-Length"] == str(len(MEDIA))
    assert reply.get_data() == MEDIA


def test_a_range_past_the_end(app_config):
    from app import create_app

    server = MediaServer(ranges=False)  # the app cuts the range itself
    try:
        app = create_app(api_config(app_config, server.base_url))
        client = app.test_client()
        login(client)
        cid = call_id()
        recorded_call(app, cid, media_url(server.base_url, cid))
        reply = get_media(client, cid, Range=f"bytes={len(MEDIA) + 10}-")
        assert reply.status_code == 416
        assert reply.headers["Content-Range"] == f"bytes */{len(MEDIA)}"
    finally:
        server.stop()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{other}/api/v2/accounts/x/calls/c/recordings/r-1/media",  # another port
        "http://localhost:{port}/api/v2/accounts/x/calls/c/recordings/r-1/media",  # another host
        "https://127.0.0.1:{port}/api/v2/accounts/x/recordings/r-1/media",  # another scheme
        "http://127.0.0.1:{port}/api/v2/../admin/media",  # out of the base path
        "http://127.0.0.1:{port}/api/v2/%2e%2e/admin/media",
        "http://127.0.0.1:{port}/other/accounts/x/calls/c/recordings/r-1/media",
        "http://user:pw@127.0.0.1:{port}/api/v2/accounts/x/calls/c/recordings/r-1/media",
        "file:///etc/passwd",
        "http://127.0.0.1:{port}/api/v2x/accounts/media",
    ],
)
def test_media_only_from_the_voice_api(operator_of, api_app, media_server, url):
    other = MediaServer()
    try:
        port = media_server.server.server_address[1]
        target = url.format(port=port, other=other.server.server_address[1])
        cid = recorded_call(api_app, call_id(), target)
        reply = get_media(operator_of, cid, Range="bytes=0-")
        assert reply.status_code == 403
        assert "not on the configured Voice API" in reply.get_data(as_text=True)
        assert other.requests == [] and media_server.requests == []
        html = operator_of.get(f"/dashboard/calls/{cid}").get_data(as_text=True)
        assert "<audio" not in html and "not on the configured Voice API" in html
    finally:
        other.stop()


def test_unknown_recording_is_404(operator_of, api_app, media_server):
    cid = call_id()
    recorded_call(api_app, cid, media_url(media_server.base_url, cid))
    assert get_media(operator_of, cid, "r-other").status_code == 404
    assert get_media(operator_of, call_id()).status_code == 404


@pytest.mark.parametrize(
    ("status", "shown", "text"),
    [(404, 404, "no media for this recording"), (401, 502, "refused the app")],
)
def test_voice_api_errors_are_explained(app_config, status, shown, text):
    from app import create_app

    server = MediaServer(status=status)
    try:
        app = create_app(api_config(app_config, server.base_url))
        client = app.test_client()
        login(client)
        cid = call_id()
        recorded_call(app, cid, media_url(server.base_url, cid))
        reply = get_media(client, cid, Range="bytes=0-")
        assert reply.status_code == shown
        assert text in reply.get_data(as_text=True)
    finally:
        server.stop()


def test_an_unreachable_voice_api_is_a_502(app_config):
    from app import create_app
    from tests.servers import closed_port

    base = f"http://127.0.0.1:{closed_port()}/api/v2"
    app = create_app(api_config(app_config, base))
    client = app.test_client()
    login(client)
    cid = call_id()
    recorded_call(app, cid, media_url(base, cid))
    reply = get_media(client, cid, Range="bytes=0-")
    assert reply.status_code == 502
    assert "did not answer" in reply.get_data(as_text=True)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-", (0, None)),
        ("bytes=10-20", (10, 20)),
        ("bytes=-5", (None, 5)),
        ("bytes=20-10", None),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=-", None),
        (None, None),
    ],
)
def test_requested_range(header, expected):
    assert recordings.requested_range(header) == expected


def test_a_conference_recording_plays_on_the_conference_page(operator_of, api_app, media_server):
    conference = "conf-11111111-22222222-3333-4444-5555-666666666666"
    url = f"{media_server.base_url}/accounts/{ACCOUNT_ID}/conferences/{conference}/recordings/r-9/media"
    payload = {
        "eventType": "conferenceRecordingAvailable",
        "conferenceId": conference,
        "recordingId": "r-9",
        "mediaUrl": url,
        "duration": "PT14.3S",
        "fileFormat": "wav",
        "channels": 1,
        "status": "complete",
    }
    stored_event(api_app, "conferenceRecordingAvailable", conference_id=conference, payload=payload)
    html = operator_of.get(f"/dashboard/conferences/{conference}").get_data(as_text=True)
    route = f"/dashboard/conferences/{conference}/recordings/r-9/media"
    assert f'<audio controls preload="metadata" src="{route}">' in html
    head = html[html.index('id="conference-summary"') :]
    assert '<dd id="summary-recording"><a href="#recording-1">r-9</a></dd>' in head
    reply = operator_of.get(route, headers={"Range": "bytes=0-99"})
    assert (reply.status_code, reply.get_data()) == (206, MEDIA[:100])
    assert media_server.requests[-1]["path"].endswith(
        f"/conferences/{conference}/recordings/r-9/media"
    )
    assert operator_of.get(route.replace("r-9", "r-0")).status_code == 404
    assert api_app.test_client().get(route).status_code in (302, 303, 401)  # a login first
