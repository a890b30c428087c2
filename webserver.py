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
- a body longer than ``MAX_BODY_BYTES`` is refused (400, connection closed) before it is
  read; the app refuses smaller ones over its own ``MAX_CONTENT_LENGTH`` with 413;
- SIGTERM stops accepting, lets the requests in the pool finish (``graceful_timeout``), then
  exits.

No access log of its own: the app logs each request without its query string, and Tornado's
lines would carry it (GET callbacks have phone numbers and the tag there).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import tornado.httpserver
import tornado.httputil
from gunicorn.sock import ssl_context
from gunicorn.workers.gtornado import TornadoWorker
from tornado.ioloop import IOLoop, PeriodicCallback
from tornado.wsgi import WSGIContainer

HEAD_TIMEOUT = 10.0
BODY_TIMEOUT = 10.0
HEADERS_ALLOWANCE = 32 * 1024
MAX_BODY_BYTES = 1024 * 1024

# Tornado's access lines carry the query string; its "malformed request" lines quote
# header values (an Authorization header among them).
logging.getLogger("tornado.access").disabled = True
logging.getLogger("tornado.general").setLevel(logging.WARNING)


class PooledWSGI(WSGIContainer):
    """Tornado's WSGI adapter, running the app in a thread pool, counting requests in flight."""

    def __init__(self, app: Any, executor: ThreadPoolExecutor, max_target: int) -> None:
        super().__init__(app, executor=executor)
        self.max_target = max_target
        self.in_flight = 0
        self.handled = 0
        self._lock = threading.Lock()

    async def handle_request(self, request: tornado.httputil.HTTPServerRequest) -> None:
        if self.max_target and len(request.uri or "") > self.max_target:
            self._refuse(request, 414, "Request-URI Too Long")
            return
        with self._lock:
            self.in_flight += 1
        try:
            await super().handle_request(request)
        finally:
            with self._lock:
                self.in_flight -= 1
                self.handled += 1

    @staticmethod
    def _refuse(request: tornado.httputil.HTTPServerRequest, status: int, reason: str) -> None:
        body = f"{status} {reason}: the request line is longer than the server allows\n".encode()
        headers = tornado.httputil.HTTPHeaders(
            {
                "Content-Type": "text/plain; charset=utf-8",
                "Content-Length": str(len(body)),
            }
        )
        assert request.connection is not None
        request.connection.write_headers(
            tornado.httputil.ResponseStartLine("HTTP/1.1", status, reason), headers, chunk=body
        )
        request.connection.finish()

    def environ(self, request: tornado.httputil.HTTPServerRequest) -> dict[str, Any]:
        environ = super().environ(request)
        # The body is complete (Tornado de-chunked it): let Werkzeug read a chunked one too.
        environ["wsgi.input_terminated"] = True
        return environ

    def _log(self, status_code: int, request: tornado.httputil.HTTPServerRequest) -> None:
        """The app logs requests itself (see the module docstring)."""


class BufferingWorker(TornadoWorker):
    """gunicorn's tornado worker with a thread pool and the bounds above."""

    def run(self) -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        self.ioloop = IOLoop.current()
        # self.alive is not set here (gunicorn's tornado worker does): a SIGTERM that came
        # while the app was loading must still stop the worker.
        self.server_alive = False
        self.stopping_since: float | None = None
        executor = ThreadPoolExecutor(max_workers=self.cfg.threads, thread_name_prefix="request")
        self.container = PooledWSGI(self.wsgi, executor, self.cfg.limit_request_line)
        self.callbacks = [
            PeriodicCallback(self.watchdog, 1000),
            PeriodicCallback(self.heartbeat, 200),
        ]
        for callback in self.callbacks:
            callback.start()
        server = tornado.httpserver.HTTPServer(
            self.container,
            ssl_options=ssl_context(self.cfg) if self.cfg.is_ssl else None,
            no_keep_alive=self.cfg.keepalive <= 0,
            idle_connection_timeout=HEAD_TIMEOUT,
            body_timeout=BODY_TIMEOUT,
            max_header_size=(self.cfg.limit_request_line or 65536) + HEADERS_ALLOWANCE,
            max_body_size=MAX_BODY_BYTES,
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
