"""The gunicorn worker class of the shipped set-up (gunicorn.conf.py): requests are read
whole by an event loop, then handled by a pool of threads.

gunicorn's gthread worker gives a connection a thread as soon as its first byte arrives, and
the thread then blocks reading the rest: sixteen clients trickling their headers held every
thread of two workers, and real callbacks waited past Bandwidth's timeout.  Here Tornado's
HTTP server (gunicorn's ``tornado`` worker) reads the request line, the headers and the body
in one event loop per worker, where a slow client costs a socket and a buffer, not a thread;
only a complete request goes to the thread pool (``threads`` of gunicorn.conf.py) that runs
the Flask app.  Several threads per worker are still needed: the app calls its own sandbox
over HTTP while the sandbox's callbacks come back in.

Bounds, each from gunicorn.conf.py where gunicorn has the setting:

- the request head (line and headers) must arrive within ``HEAD_TIMEOUT`` seconds of the
  connection (or of the previous response on a kept-alive one), the body within
  ``BODY_TIMEOUT``; then the connection is closed;
- a request target longer than ``limit_request_line`` gets 414; a head longer than
  ``limit_request_line`` + ``HEADERS_ALLOWANCE`` is refused (400 or closed) while it is read;
- a body longer than ``MAX_BODY_BYTES`` (or twice the app's ``MAX_CONTENT_LENGTH`` if that
  is more) is refused (400, connection closed) before it is read; the app refuses smaller
  ones over its ``MAX_CONTENT_LENGTH`` with 413, naming the setting;
- SIGTERM stops accepting, lets the requests in the pool finish (``graceful_timeout``), then
  exits.

No access log of its own: the app logs each request without its query string, and Tornado's
lines would carry it (GET callbacks have phone numbers and the tag there).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import tornado.httpserver
from gunicorn.sock import ssl_context
from gunicorn.workers.gtornado import TornadoWorker
from tornado.httputil import HTTPHeaders, HTTPServerRequest, ResponseStartLine
from tornado.ioloop import IOLoop, PeriodicCallback
from tornado.wsgi import WSGIContainer

from arrival import ARRIVED, ARRIVED_AT, stamp

log = logging.getLogger(__name__)

HEAD_TIMEOUT = 10.0
BODY_TIMEOUT = 10.0
HEADERS_ALLOWANCE = 32 * 1024
MAX_BODY_BYTES = 1024 * 1024

# Tornado's access lines carry the query string; its "malformed request" lines quote
# header values (an Authorization header among them).
logging.getLogger("tornado.access").disabled = True
logging.getLogger("tornado.general").setLevel(logging.WARNING)


class PooledWSGI(WSGIContainer):
    """Tornado's WSGI adapter, running the app and collecting its response in one pool
    thread (Tornado's own takes one hop to the pool per response chunk), counting requests
    in flight for the graceful stop."""

    def __init__(self, app: Any, executor: ThreadPoolExecutor, max_target: int) -> None:
        super().__init__(app, executor=executor)
        self.max_target = max_target
        self.in_flight = 0
        self.handled = 0
        self._lock = threading.Lock()

    async def handle_request(self, request: HTTPServerRequest) -> None:
        if self.max_target and len(request.uri or "") > self.max_target:
            body = b"request line too long: the server allows %d bytes\n" % self.max_target
            _respond(request, 414, "Request-URI Too Long", [_TEXT], body)
            return
        # Stamped before the request waits for a thread: the app's latency and receipt
        # time count from here, not from when a thread got to it.
        arrival = stamp()
        with self._lock:
            self.in_flight += 1
        try:
            loop = IOLoop.current()
            status, reason, headers, body = await loop.run_in_executor(
                self.executor, self._call_app, request, arrival
            )
        except Exception:
            log.exception("the WSGI app failed outside its own error handling")
            status, reason, headers, body = 500, "Internal Server Error", [_TEXT], b"error\n"
        finally:
            with self._lock:
                self.in_flight -= 1
                self.handled += 1
        _respond(request, status, reason, headers, body)

    def _call_app(
        self, request: HTTPServerRequest, arrival: tuple[float, float]
    ) -> tuple[int, str, list[Header], bytes]:
        started: dict[str, Any] = {}
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[Header], exc_info: Any = None) -> Any:
            started["status"], started["headers"] = status, headers
            return chunks.append

        environ = self.environ(request)
        environ[ARRIVED], environ[ARRIVED_AT] = arrival
        result = self.wsgi_application(environ, start_response)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        code, reason = started["status"].split(" ", 1)
        return int(code), reason, started["headers"], b"".join(chunks)

    def environ(self, request: HTTPServerRequest) -> dict[str, Any]:
        environ = super().environ(request)
        # The body is complete (Tornado de-chunked it): let Werkzeug read a chunked one too.
        environ["wsgi.input_terminated"] = True
        return environ


Header = tuple[str, str]
_TEXT: Header = ("Content-Type", "text/plain; charset=utf-8")


def _respond(
    request: HTTPServerRequest, status: int, reason: str, headers: list[Header], body: bytes
) -> None:
    fields = HTTPHeaders()
    for name, value in headers:
        fields.add(name, value)
    # 1xx, 204 and 304 have no body and no Content-Length; HEAD keeps the GET's length.
    if status >= 200 and status not in (204, 304) and "Content-Length" not in fields:
        fields["Content-Length"] = str(len(body))
    assert request.connection is not None
    request.connection.write_headers(ResponseStartLine("HTTP/1.1", status, reason), fields, body)
    request.connection.finish()


class FairHTTPServer(tornado.httpserver.HTTPServer):
    """Tornado's HTTP server accepting one connection per wake-up of its event loop.

    Every worker's loop watches the one listening socket.  Tornado accepts up to 128
    connections per wake-up, so the first worker to wake took every connection of a burst
    (16 kept-alive clients all went to one worker, the other stayed idle: one GIL served
    the whole server).  Taking one at a time leaves the rest of the burst to the loops that
    are free, and a worker busy running the app wakes later, so it takes fewer.
    """

    def add_sockets(self, sockets: Any) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = _accept_one_at_a_time(sock, self._handle_connection)


def _accept_one_at_a_time(
    sock: socket.socket, callback: Callable[[socket.socket, Any], None]
) -> Callable[[], None]:
    """tornado.netutil.add_accept_handler, one ``accept`` per readiness event."""
    io_loop = IOLoop.current()
    removed = False

    def on_readable(fd: Any, events: int) -> None:
        if not removed:
            accept_one(sock, callback)

    def remove() -> None:
        nonlocal removed
        io_loop.remove_handler(sock)
        removed = True

    io_loop.add_handler(sock, on_readable, IOLoop.READ)
    return remove


def accept_one(sock: socket.socket, callback: Callable[[socket.socket, Any], None]) -> bool:
    """Accept one queued connection and hand it to ``callback``; False when there was none
    (another worker took it, or the client gave up while it queued)."""
    try:
        connection, address = sock.accept()
    except (BlockingIOError, ConnectionAbortedError):
        return False
    callback(connection, address)
    return True


class BufferingWorker(TornadoWorker):
    """gunicorn's tornado worker with a thread pool and the bounds above."""

    def run(self) -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        self.ioloop = IOLoop.current()
        # self.alive is not set here (gunicorn's tornado worker does): a SIGTERM that came
        # while the app was loading must still stop the worker.
        self.server_alive = False
        self.stopping_since: float | None = None
        app_body_limit = int(getattr(self.wsgi, "config", {}).get("MAX_CONTENT_LENGTH") or 0)
        executor = ThreadPoolExecutor(max_workers=self.cfg.threads, thread_name_prefix="request")
        self.container = PooledWSGI(self.wsgi, executor, self.cfg.limit_request_line)
        self.callbacks = [
            PeriodicCallback(self.watchdog, 1000),
            PeriodicCallback(self.heartbeat, 200),
        ]
        for callback in self.callbacks:
            callback.start()
        server = FairHTTPServer(
            self.container,
            ssl_options=ssl_context(self.cfg) if self.cfg.is_ssl else None,
            no_keep_alive=self.cfg.keepalive <= 0,
            idle_connection_timeout=HEAD_TIMEOUT,
            body_timeout=BODY_TIMEOUT,
            max_header_size=(self.cfg.limit_request_line or 65536) + HEADERS_ALLOWANCE,
            max_body_size=max(MAX_BODY_BYTES, 2 * app_body_limit),
        )
        self.server = server
        self.server_alive = True
        for sock in self.sockets:
            sock.setblocking(False)
            server.add_socket(sock)
        self.ioloop.start()
        executor.shutdown(wait=False)

    def heartbeat(self) -> None:
        container = self.container
        if self.alive and container.handled >= self.max_requests:
            self.log.info("Autorestarting worker after %s requests.", container.handled)
            self.alive = False
        if self.alive:
            return
        if self.server_alive:
            self.server.stop()  # no new connections; those open may finish their request
            self.server_alive = False
            self.stopping_since = time.monotonic()
            return
        waited = time.monotonic() - (self.stopping_since or 0.0)
        if (container.in_flight or self._still_writing()) and waited < self.cfg.graceful_timeout:
            return
        for callback in self.callbacks:
            callback.stop()
        self.ioloop.stop()

    def _still_writing(self) -> bool:
        """Whether a finished response is still being sent (the loop must run to send it)."""
        connections = getattr(self.server, "_connections", ())
        return any(conn.stream is not None and conn.stream.writing() for conn in list(connections))
