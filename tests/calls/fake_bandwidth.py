"""A fake Bandwidth Voice API on a real socket (127.0.0.1), scripted per test.

Each test queues the replies it wants (``bandwidth.script(Reply(429, ...), Reply(201))``);
the server answers them in order and keeps every request it received, so a test can say
"exactly 2 requests" about real urllib3 behaviour rather than about a mock.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ACCOUNT_ID = "9900000"
API_USER = "api-user"
API_PASSWORD = "api-pass"
CALL_ID = "c-15ac29a2-1331029c-2cb0-4a07-b215-b22865662d85"


def created_call(**overrides: Any) -> dict[str, Any]:
    """A Create Call 201 body like the spec's example."""
    body = {
        "applicationId": "04e88489-df02-4e34-a0ee-27a91849555f",
        "accountId": ACCOUNT_ID,
        "callId": CALL_ID,
        "to": "+12025550123",
        "from": "+12025550199",
        "callUrl": f"https://voice.bandwidth.com/api/v2/accounts/{ACCOUNT_ID}/calls/{CALL_ID}",
        "answerMethod": "POST",
        "answerUrl": "https://cb.example.com/callbacks/answer",
        "disconnectMethod": "POST",
    }
    body.update(overrides)
    return body


@dataclass
class Reply:
    """One scripted answer: status, body (dict -> JSON, str -> text), headers, and an
    optional delay before answering (to provoke read timeouts) or a dropped connection."""

    status: int = 201
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakeBandwidth:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/api/v2"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def _next(self, request: Received) -> Reply:
        with self.lock:
            self.received.append(request)
            if self.replies:
                return self.replies.popleft()
        return Reply(500, {"type": "test", "description": "unscripted request"})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._answer()

            do_POST = do_PUT = do_GET

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Received(self.command, self.path, dict(self.headers.items()), body)
                reply = fake._next(request)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(reply.body, (dict, list)):
                    payload = json.dumps(reply.body).encode()
                    content_type = "application/json;charset=UTF-8"
                else:
                    payload = (reply.body or "").encode()
                    content_type = "text/plain"
                try:
                    self.send_response(reply.status)
                    if payload:
                        self.send_header("Content-Type", content_type)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (read timeout)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
