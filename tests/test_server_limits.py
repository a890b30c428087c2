"""The shipped server set-up (gunicorn.conf.py) against slow and oversized requests."""

from __future__ import annotations

import json
import runpy
import socket
import threading
import time
from urllib.parse import urlencode, urlsplit

import pytest
import requests

from tests.callbacks.helpers import answer_event, call_event, call_id, disconnect_event
from tests.conftest import CALLBACK_PASSWORD, CALLBACK_USER
from tests.servers import ROOT, app_env, gunicorn

pytestmark = pytest.mark.slow

AUTH = (CALLBACK_USER, CALLBACK_PASSWORD)
# Generous: a loaded machine answers in far less; a starved server never does.
REQUEST_TIMEOUT = 20


@pytest.fixture
def server(tmp_path):
    with gunicorn(app_env(tmp_path)) as base:
        yield base


class Tricklers:
    """Connections that send a request one header line at a time and never finish it."""

    def __init__(self, base: str, count: int) -> None:
        url = urlsplit(base)
        self.address = (url.hostname or "127.0.0.1", url.port or 80)
        self.count = count
        self.stop = threading.Event()
        self.sockets: list[socket.socket] = []
        self.thread = threading.Thread(target=self._trickle, daemon=True)

    def __enter__(self) -> Tricklers:
        for _ in range(self.count):
            sock = socket.create_connection(self.address, timeout=10)
            sock.sendall(b"POST /callbacks/answer HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            self.sockets.append(sock)
        self.thread.start()
        return self

    def _trickle(self) -> None:
        line = 0
        while not self.stop.wait(1.0):
            line += 1
            for sock in self.sockets:
                try:
                    sock.sendall(f"X-Slow-{line}: x\r\n".encode())
                except OSError:
                    pass  # the server gave up on this one: that is allowed

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        for sock in self.sockets:
            sock.close()


def events_of(base: str, call_id: str) -> list[dict]:
    reply = requests.get(
        f"{base}/api/calls/{call_id}/events", auth=("admin", "dash"), timeout=REQUEST_TIMEOUT
    )
    reply.raise_for_status()
    return reply.json()["events"]


def post_callback(base: str, payload: dict) -> requests.Response:
    return requests.post(
        f"{base}/callbacks/answer",
        data=json.dumps(payload),
        headers={"Content-Type": "application/json"},
        auth=AUTH,
        timeout=REQUEST_TIMEOUT,
    )


def test_callbacks_are_answered_and_stored_while_slow_clients_trickle_headers(server):
    with Tricklers(server, 40):
        # Several callbacks on fresh connections, so both workers get some.
        for _ in range(6):
            payload = answer_event()
            reply = post_callback(server, payload)
            assert reply.status_code == 200, reply.text
            assert [e["payload"]["callId"] for e in events_of(server, payload["callId"])] == [
                payload["callId"]
            ]


def shipped_setting(name: str) -> object:
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))[name]


def get_query(base: str, route: str, payload: dict) -> str:
    query = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in payload.items()}
    return f"{base}/callbacks/{route}?{urlencode(query)}"


def get_status(url: str) -> int | None:
    """The status of a GET, or None when the server closed the connection instead."""
    try:
        return requests.get(url, auth=AUTH, timeout=REQUEST_TIMEOUT).status_code
    except requests.ConnectionError:
        return None


def largest_documented_get_callback() -> dict:
    """transcriptionAvailable with every documented field, and a 4096-character tag whose
    every character takes 4 UTF-8 bytes (12 bytes percent-encoded)."""
    cid = call_id()
    recording = "r-fbe05094-9fd2afe9-bf5b-4c68-820a-41a01c1c5833"
    return call_event(
        "transcriptionAvailable",
        callId=cid,
        enqueuedTime="2019-06-20T15:54:20.123Z",
        endTime="2019-06-20T15:56:25.123Z",
        parentCallId=call_id(),
        recordingId=recording,
        mediaUrl=f"https://voice.bandwidth.com/api/v2/accounts/55555555/calls/{cid}/recordings/{recording}/media",
        duration="PT13.67S",
        fileFormat="wav",
        channels=1,
        transferCallerId="+15555555555",
        transferTo="+15555555556",
        transcription={"speaker": "Speaker 1", "text": "Nice talking to you!", "confidence": 0.9},
        tag="\U0001f600" * 4096,
    )


def test_largest_documented_get_callback_fits_with_a_margin(server):
    payload = largest_documented_get_callback()
    url = get_query(server, "transcriptionAvailable", payload)
    request_line = len(f"GET {url.removeprefix(server)} HTTP/1.1")
    limit = shipped_setting("limit_request_line")
    assert isinstance(limit, int) and 0 < limit
    assert request_line * 1.25 < limit
    assert get_status(url) == 204
    [event] = events_of(server, payload["callId"])
    assert event["payload"]["tag"] == payload["tag"]


def test_get_callback_over_the_body_limit_is_413_under_gunicorn(server):
    payload = disconnect_event(errorMessage="x" * (66 * 1024))
    assert get_status(get_query(server, "disconnect", payload)) == 413
    assert events_of(server, payload["callId"]) == []


@pytest.mark.parametrize("size", [80 * 1024, 1024 * 1024], ids=["80KiB", "1MiB"])
def test_request_line_over_the_limit_is_refused_before_the_app(server, size):
    payload = disconnect_event(errorMessage="x" * size)
    status = get_status(get_query(server, "disconnect", payload))
    assert status in (414, 400, None)  # None: the server closed the connection
    if size < 2 * shipped_setting("limit_request_line"):  # type: ignore[operator]
        assert status == 414
    assert events_of(server, payload["callId"]) == []
    # ...and the server still answers callbacks.
    assert post_callback(server, answer_event()).status_code == 200


def worker_of(sock: socket.socket) -> str:
    """Ask for /pid on a kept-alive connection: the pid of the worker that has it."""
    sock.sendall(b"GET /pid HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    reply = b""
    while b"\r\n\r\n" not in reply or not reply.split(b"\r\n\r\n", 1)[1].strip():
        chunk = sock.recv(4096)
        assert chunk, f"connection closed after {reply!r}"
        reply += chunk
    head, body = reply.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200"), head
    return body.decode().strip()


def both_up(address: tuple[str, int], timeout: float = 30.0) -> None:
    """Wait until both workers have answered (a worker still loading its app takes no
    connection), one connection at a time."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < 2:
        assert time.monotonic() < deadline, f"only workers {seen} answered"
        with socket.create_connection(address, timeout=REQUEST_TIMEOUT) as sock:
            seen.add(worker_of(sock))


def test_a_burst_of_connections_is_shared_by_both_workers(tmp_path):
    # A client opening its kept-alive connections at once (wrk, a proxy's pool, Bandwidth's
    # senders) must not land them all on the first worker to wake, leaving the other idle.
    # Which worker wakes first is the scheduler's choice, so a burst is tried a few times.
    with gunicorn(app_env(tmp_path), app="tests.pid_app:create_app()") as base:
        url = urlsplit(base)
        address = (url.hostname or "127.0.0.1", url.port or 80)
        both_up(address)
        bursts = []
        for _ in range(5):
            sockets = [
                socket.create_connection(address, timeout=REQUEST_TIMEOUT) for _ in range(16)
            ]
            try:
                bursts.append([worker_of(sock) for sock in sockets])
            finally:
                for sock in sockets:
                    sock.close()
            if len(set(bursts[-1])) == 2:
                break
    assert len(set(bursts[-1])) == 2, bursts


def test_a_wake_up_accepts_one_connection_and_leaves_the_rest_queued():
    from webserver import accept_one

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.setblocking(False)
        clients = [socket.create_connection(listener.getsockname()) for _ in range(3)]
        accepted: list[socket.socket] = []
        try:
            assert accept_one(listener, lambda conn, _: accepted.append(conn))
            assert len(accepted) == 1
            # The other two are still queued for whichever worker wakes next.
            for _ in range(2):
                accepted.append(listener.accept()[0])
            assert not accept_one(listener, lambda conn, _: accepted.append(conn))
            assert len(accepted) == 3
        finally:
            for sock in clients + accepted:
                sock.close()
