"""A local stand-in for Bandwidth's Voice API that drives real HTTP callbacks at an app.

Three ways to run it (see sandbox/README.md):

- inside the app (``VOICE_BACKEND=sandbox``, the default): ``init_app(app)`` serves the API
  at ``/sandbox/api/v2`` and the callee's controls at ``/sandbox/sandbox-control/``;
- standalone: ``python -m sandbox --port 8010`` (API at ``/api/v2``), driving any URL;
- in tests: the ``voice_call`` (scripted calls on a test clock, ``sandbox.kit``) and
  ``bandwidth_sandbox`` fixtures of ``sandbox.pytest_plugin``.

Public names: ``init_app``, ``credentials``, ``transcript``, ``Sandbox``, ``Settings``,
``ApiError``.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections.abc import Mapping
from typing import Any

from flask import Flask

from sandbox.core import ApiError, Sandbox
from sandbox.inbound import DEFAULT_APPLICATION_ID, default_application
from sandbox.settings import Settings, credentials

__all__ = [
    "API_PREFIX",
    "CONTROL_PREFIX",
    "ApiError",
    "Sandbox",
    "Settings",
    "credentials",
    "init_app",
    "transcript",
]

API_PREFIX = "/sandbox/api/v2"
CONTROL_PREFIX = "/sandbox/sandbox-control"


def settings_for_app(app: Flask) -> Settings:
    """The in-app sandbox's settings: the app's database, credentials and public origin."""
    cfg = app.config
    account, username, password = credentials(cfg)
    url = cfg.get("DATABASE_URL") or "sqlite:///" + os.path.join(app.instance_path, "events.db")
    public = str(cfg.get("PUBLIC_BASE_URL") or "http://127.0.0.1:8000").rstrip("/")
    return Settings.from_mapping(
        cfg,
        environ=None if app.testing else os.environ,
        database_url=url,
        account_id=account,
        username=username,
        password=password,
        public_api_url=public + API_PREFIX,
        allowed_origins=(public,),
        default_application_id=str(cfg.get("BW_APPLICATION_ID") or DEFAULT_APPLICATION_ID),
        default_application=default_application(public, *_callback_credentials(cfg)),
    )


def _callback_credentials(cfg: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The first pair the app's callback routes accept (the default application sends it)."""
    from config import parse_credentials

    pairs = parse_credentials(cfg)
    return pairs[0] if pairs else (None, None)


def init_app(app: Flask) -> Sandbox | None:
    """Serve the sandbox inside ``app`` when VOICE_BACKEND is ``sandbox``; else do nothing.

    The driver (background threads that execute calls) starts with the first request this
    process serves, or, when testing, with the first call created here.  It stops, saving
    and releasing its calls, when the process exits.
    """
    if (app.config.get("VOICE_BACKEND") or "sandbox") != "sandbox":
        return None
    from sandbox import web_conferences  # noqa: F401  (adds the Conferences API's routes)
    from sandbox.web import api_bp, control_bp

    sandbox = Sandbox(settings_for_app(app))
    app.extensions["sandbox"] = sandbox
    app.register_blueprint(api_bp, url_prefix=API_PREFIX)
    app.register_blueprint(control_bp, url_prefix=CONTROL_PREFIX)
    if sandbox.settings.driver == "auto" and not app.testing:
        started = threading.Event()
        if os.environ.get("WERKZEUG_RUN_MAIN") == "true":
            # The server process of `flask run`'s reloader: after a reload, resume the calls
            # at once rather than at the first request.
            started.set()
            sandbox.start_driver()

        @app.before_request
        def _start_sandbox_driver() -> None:
            if not started.is_set():
                started.set()
                sandbox.start_driver()

    atexit.register(_close_quietly, weakref.ref(sandbox))
    return sandbox


def transcript(source: Flask | Sandbox, call_id: str) -> list[dict[str, Any]]:
    """What the far end of call ``call_id`` heard, pressed and said, in order, from an app's
    in-app sandbox (or a ``Sandbox``): entries ``{"at": simulated seconds, "callId",
    "kind", "text"}`` (kinds in ``sandbox.heard``).  ``[]`` for a call the sandbox does not
    know or an app without one (VOICE_BACKEND=bandwidth)."""
    found = source.extensions.get("sandbox") if isinstance(source, Flask) else source
    if found is None:
        return []
    try:
        return found.transcript(call_id)
    except ApiError:
        return []


def _close_quietly(ref: weakref.ref[Sandbox]) -> None:
    sandbox = ref()
    if sandbox is None:
        return
    try:
        sandbox.close(timeout=5.0)
    except Exception:  # the process is exiting: say so, nothing else to do
        logging.getLogger(__name__).warning("sandbox: could not stop cleanly", exc_info=True)
