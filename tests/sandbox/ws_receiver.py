"""A WebSocket server on 127.0.0.1 standing in for an app's stream (or transcription)
destination: it records every connection's handshake and JSON messages.

``ws.url("/stream")`` is the ``destination``; ``ws.wait_for(lambda c: ...)`` waits until a
connection satisfies a condition; ``ws.on_start = callback(connection)`` runs after the
``start`` message (send playAudio, close, ...); ``ws.refuse = 403`` refuses handshakes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve


@dataclass
class Connection:
    path: str
    authorization: str | None
    socket: ServerConnection
    messages: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False
    abnormal: bool = False

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("eventType") == event_type]

    def send(self, message: dict[str, Any]) -> None:
        self.socket.send(json.dumps(message))


class WebSocketReceiver:
    def __init__(self) -> None:
        self.connections: list[Connection] = []
        self.refuse: int | None = None
        self.on_start: Callable[[Connection], None] | None = None
        self._changed = threading.Condition()
        self._server = serve(
            self._handle, "127.0.0.1", 0, process_request=self._check, compression=None
        )
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebSocketReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(5)

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def _check(self, connection: ServerConnection, request: Any) -> Any:
        if self.refuse is not None:
            return connection.respond(self.refuse, "refused by the test\n")
        return None

    def _handle(self, socket: ServerConnection) -> None:
        request = socket.request
        assert request is not None
        conn = Connection(request.path, request.headers.get("Authorization"), socket)
        with self._changed:
            self.connections.append(conn)
            self._changed.notify_all()
        try:
            for raw in socket:
                message = json.loads(raw)
                with self._changed:
                    conn.messages.append(message)
                    self._changed.notify_all()
                if message.get("eventType") == "start" and self.on_start is not None:
                    self.on_start(conn)
        except ConnectionClosed:  # the client went away abnormally: recorded as closed below
            conn.abnormal = True
        with self._changed:
            conn.closed = True
            self._changed.notify_all()

    def wait_for(self, ready: Callable[[Connection], bool], timeout: float = 15.0) -> Connection:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for conn in self.connections:
                    if ready(conn):
                        return conn
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no matching WebSocket connection: {[c.messages[:2] for c in self.connections]}"
                    )
                self._changed.wait(left)
