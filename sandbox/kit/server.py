"""The app under test, in this process: built with the kit's settings over the user's, and
served on a free 127.0.0.1 port so the in-app sandbox can send it real HTTP callbacks."""

from __future__ import annotations

import importlib
import io
import secrets
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.test import EnvironBuilder, run_wsgi_app

AppFactory = Callable[[dict[str, Any]], Flask]

# Settings the kit needs whatever the user's configuration says.
FORCED = {"VOICE_BACKEND": "sandbox", "SANDBOX_CLOCK": "manual", "TESTING": True}


def kit_config(directory: Path, base_url: str, user: Mapping[str, Any]) -> dict[str, Any]:
    """The app's configuration: a private SQLite store in ``directory``, generated secrets,
    the manual clock, then the user's settings (which may not change what is in FORCED)."""
    for key, value in FORCED.items():
        if key in user and user[key] != value:
            raise ValueError(f"voice_call: {key} must be {value!r} in the kit, got {user[key]!r}")
    settings: dict[str, Any] = {
        "SECRET_KEY": secrets.token_hex(16),
        "DATABASE_URL": f"sqlite:///{directory / 'events.db'}",
        "SPOOL_PATH": str(directory / "spool.jsonl"),
        # Test data: no fsync per callback (an OS crash loses a test run, nothing else).
        "STORE_SQLITE_SYNCHRONOUS": "NORMAL",
        "CALLBACK_USERNAME": "voice-kit",
        "CALLBACK_PASSWORD": secrets.token_urlsafe(16),
        "DASHBOARD_USERNAME": "voice-kit",
        "DASHBOARD_PASSWORD": secrets.token_urlsafe(16),
        "SANDBOX_POLL_INTERVAL": 0.02,
        "SANDBOX_IDLE_POLL": 0.5,
        # Bandwidth's account limits count real seconds, which mean nothing on the manual
        # clock (a suite places calls far faster than any caller): off unless a test sets
        # them in voice_app_config to see its app handle a 429.
        "SANDBOX_CALLS_PER_SECOND": 0,
        "SANDBOX_CONCURRENT_CALLS": 0,
    }
    settings.update(user)
    settings.update(FORCED)
    settings["PUBLIC_BASE_URL"] = base_url
    return settings


def default_factory(settings: dict[str, Any]) -> Flask:
    """The project's own factory, ``app.create_app``."""
    module = importlib.import_module("app")
    return module.create_app(settings)  # type: ignore[no-any-return]


class InProcess(BaseAdapter):
    """A ``requests`` transport that hands each request to a WSGI app in this thread: the
    sandbox's callbacks reach the app through its whole WSGI stack (routes, credentials,
    payload, store) without a socket or a server thread in between."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.app = app

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = urlsplit(request.url or "")
        body = request.body.encode() if isinstance(request.body, str) else request.body
        environ = EnvironBuilder(
            path=url.path,
            query_string=url.query,
            method=request.method,
            headers=dict(request.headers),
            data=body or b"",
            base_url=f"{url.scheme}://{url.netloc}",
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        ).get_environ()
        chunks, status, headers = run_wsgi_app(self.app, environ, buffered=True)
        response = requests.Response()
        response.status_code = int(status.split(" ", 1)[0])
        response.reason = status.partition(" ")[2]
        response.headers = CaseInsensitiveDict(dict(headers))
        response.raw = io.BytesIO(b"".join(chunks))
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


class _QuietHandler(WSGIRequestHandler):
    """No access log line per callback on the test's output."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@contextmanager
def serving(
    directory: Path, user_config: Mapping[str, Any], factory: AppFactory | None = None
) -> Iterator[tuple[Flask, str]]:
    """Build the app and serve it threaded on 127.0.0.1; yields (app, base URL).  On exit
    the server, the in-app sandbox and the store are closed."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    host, port = sock.getsockname()[:2]
    base_url = f"http://{host}:{port}"
    try:
        app = (factory or default_factory)(kit_config(directory, base_url, user_config))
    except BaseException:
        sock.close()
        raise
    server = make_server(
        host, port, app, threaded=True, fd=sock.fileno(), request_handler=_QuietHandler
    )
    sock.close()  # the server holds its own copy
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield app, base_url
    finally:
        in_app = app.extensions.get("sandbox")
        if in_app is not None:
            in_app.close(timeout=5.0)
        server.shutdown()
        server.server_close()
        thread.join(5)
        store = app.extensions.get("store")
        if store is not None and hasattr(store, "dispose"):
            store.dispose()
