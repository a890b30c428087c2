"""A tiny app server on 127.0.0.1 that records every callback and answers scripted BXML.

``app.reply("/answer", "<Response><Hangup/></Response>")`` scripts a path;
``app.url("/answer")`` is the URL to give the sandbox; ``app.wait_for("disconnect")`` waits.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


@dataclass
class Received:
    method: str
    path: str
    payload: dict[str, Any]
    authorization: str | None
    at: float = field(default_factory=time.monotonic)

    @property
    def event_type(self) -> str:
        return str(self.payload.get("eventType"))


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.replies: dict[str, Any] = {}
        self.auth: tuple[str, str] | None = None  # when set: 401 without these credentials
        self._lock = threading.Condition()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def url(self, path: str) -> str:
        return self.base_url + path

    def reply(self, path: str, body: str | Callable[[Received], Any], status: int = 200) -> None:
        """Answer ``path`` with ``body`` (or ``body(received)`` -> str or (status, str))."""
        self.replies[path] = (status, body)

    def _app(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        if request.method == "GET":
            payload: dict[str, Any] = dict(request.args)
        else:
            try:
                payload = json.loads(request.get_data() or b"{}")
            except ValueError:
                payload = {"_raw": request.get_data(as_text=True)}
        received = Received(
            request.method, request.path, payload, request.headers.get("Authorization")
        )
        if self.auth is not None and received.authorization is None:
            reply = Response("credentials required", 401)
            reply.headers["WWW-Authenticate"] = 'Basic realm="test"'
            with self._lock:
                self.requests.append(received)
                self._lock.notify_all()
            return reply(environ, start_response)
        with self._lock:
            self.requests.append(received)
            self._lock.notify_all()
        status, body = self.replies.get(request.path, (200, ""))
        if callable(body):
            body = body(received)
            if isinstance(body, tuple):
                status, body = body
        if status == 204 or not body:
            return Response(status=204 if status == 200 else status)(environ, start_response)
        return Response(body, status, content_type="application/xml; charset=utf-8")(
            environ, start_response
        )

    def events(self, event_type: str | None = None, call_id: str | None = None) -> list[Received]:
        with self._lock:
            found = [
                r
                for r in self.requests
                if (event_type is None or r.event_type == event_type)
                and (call_id is None or r.payload.get("callId") == call_id)
                and not (self.auth is not None and r.authorization is None)
            ]
        return found

    def wait_for(
        self, event_type: str, call_id: str | None = None, *, count: int = 1, timeout: float = 10
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [
                    r
                    for r in self.requests
                    if r.event_type == event_type
                    and (call_id is None or r.payload.get("callId") == call_id)
                    and not (self.auth is not None and r.authorization is None)
                ]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(r.path, r.event_type) for r in self.requests]
                    raise AssertionError(f"no {count} x {event_type} within {timeout}s; got {seen}")
                self._lock.wait(remaining)
