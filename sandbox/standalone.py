"""The standalone sandbox: its own Flask app and a threaded werkzeug server on 127.0.0.1.

``python -m sandbox --port 8010`` serves the Voice API at ``http://127.0.0.1:8010/api/v2``
and the callee's controls at ``http://127.0.0.1:8010/sandbox-control/``, and drives any
callback URL.  The account and credentials come from ``BW_ACCOUNT_ID``, ``BW_USERNAME`` and
``BW_PASSWORD`` (a password is generated and printed when none is set).
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask, Response
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, make_server

from sandbox.core import Sandbox
from sandbox.payloads import new_error_id
from sandbox.settings import SANDBOX_ACCOUNT_ID, SANDBOX_USERNAME, Settings, env_settings

ROOT = Path(__file__).resolve().parent.parent
API_PREFIX = "/api/v2"
CONTROL_PREFIX = "/sandbox-control"


def create_app(sandbox: Sandbox) -> Flask:
    """A Flask app serving ``sandbox`` at ``/api/v2`` and ``/sandbox-control``."""
    from sandbox import web_conferences  # noqa: F401  (adds the Conferences API's routes)
    from sandbox.web import api_bp, control_bp

    app = Flask(
        "sandbox",
        root_path=str(ROOT),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.extensions["sandbox"] = sandbox
    app.register_blueprint(api_bp, url_prefix=API_PREFIX)
    app.register_blueprint(control_bp, url_prefix=CONTROL_PREFIX)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        body = {"type": "validation", "description": error.name, "id": new_error_id()}
        return Response(
            json.dumps(body), error.code or 500, content_type="application/json;charset=UTF-8"
        )

    return app


def standalone_settings(
    *, database_url: str | None = None, environ: dict[str, str] | None = None, **changes: object
) -> tuple[Settings, str | None]:
    """Settings from BW_* and SANDBOX_* variables; (settings, generated password or None)."""
    env = dict(os.environ if environ is None else environ)
    generated = None
    password = env.get("BW_PASSWORD") or ""
    if not password:
        password = generated = secrets.token_urlsafe(18)
    if database_url is None:
        database_url = "sqlite:///" + str(Path(tempfile.mkdtemp(prefix="sandbox-")) / "sandbox.db")
    settings = env_settings(
        env,
        database_url=database_url,
        account_id=env.get("BW_ACCOUNT_ID") or SANDBOX_ACCOUNT_ID,
        username=env.get("BW_USERNAME") or SANDBOX_USERNAME,
        password=password,
        allowed_origins=None,
    )
    if changes:
        settings = settings.with_(**changes)
    return settings, generated


class Server:
    """A running standalone sandbox: ``base_url``, ``api_url``, ``sandbox``; ``stop()``."""

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = sandbox
        self.app = create_app(sandbox)
        self._server: BaseWSGIServer = make_server(host, port, self.app, threaded=True)
        self.port = self._server.server_port
        self.base_url = f"http://{host}:{self.port}"
        self.api_url = self.base_url + API_PREFIX
        self.control_url = self.base_url + CONTROL_PREFIX
        self._thread: threading.Thread | None = None

    def start(self) -> Server:
        self.sandbox.start_driver()
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="sandbox-http", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.sandbox.start_driver()
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)
        self.sandbox.close()


@contextmanager
def running(settings: Settings, host: str = "127.0.0.1", port: int = 0) -> Iterator[Server]:
    """A standalone sandbox on ``host:port`` (0: a free port) for the ``with`` block."""
    server = Server(Sandbox(settings), host, port).start()
    try:
        yield server
    finally:
        server.stop()
