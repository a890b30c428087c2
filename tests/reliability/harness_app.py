"""The real app (``app.create_app()``) with test-only knobs, for gunicorn in fault tests.

    gunicorn ... 'tests.reliability.harness_app:create_app()'

Everything is the shipped app; only these are added, each off unless its variable is set:

- ``RELIABILITY_FAULTY_ANSWER=1``: the answer handler raises for callIds starting with
  ``c-fail-`` (F12) and sleeps 1.5 s for those starting with ``c-slow-`` (an in-flight
  request during a graceful restart, F6); every other call gets the app's own handler.
- ``RELIABILITY_VOICE_TIMEOUT="connect,read"``: the outbound client's timeouts (the shipped
  read timeout is 10 s; F10 provokes a read timeout without waiting that long).
- ``RELIABILITY_CONFIG='{"KEY": value}'``: config keys that have no environment variable
  (click-to-call rates).
- ``STORE_TEST_CRASH_FILE=path``: the worker kills itself once at the point that file names,
  "<point> <callId>" with point ``before-commit`` (inside the transaction) or
  ``after-commit`` (before the reply); the file is removed first, so the redelivery after
  the crash goes through (F2/F3).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask

import app as application
import config
from callbacks import CallbackEvent, Flow
from calls import VoiceClient
from store import Store, get_store

SLOW_SECONDS = 1.5


def create_app() -> Flask:
    flask_app = application.create_app()
    extra = os.environ.get("RELIABILITY_CONFIG")
    if extra:
        flask_app.config.update(json.loads(extra))
    timeout = os.environ.get("RELIABILITY_VOICE_TIMEOUT")
    if timeout:
        connect, read = (float(part) for part in timeout.split(","))
        api = config.voice_api(flask_app.config)
        flask_app.extensions["voice_client"] = VoiceClient(
            account_id=api["account_id"],
            username=api["username"],
            password=api["password"],
            base_url=api["base_url"],
            timeout=(connect, read),
        )
    if os.environ.get("RELIABILITY_FAULTY_ANSWER"):
        flask_app.extensions["flows"].register(_faulty_flow(flask_app), default=True)
    crash_file = os.environ.get("STORE_TEST_CRASH_FILE")
    if crash_file:
        install_crash_file(get_store(flask_app), crash_file)
    return flask_app


def install_crash_file(store: Store, path: str) -> None:
    """Kill the worker once where ``path`` says (see the module docstring)."""

    def crash_if_armed(point: str, row: Mapping[str, Any]) -> None:
        try:
            with open(path) as armed:
                want_point, want_call = armed.read().split()
        except (OSError, ValueError):
            return
        if want_point == point and want_call == row.get("call_id"):
            os.unlink(path)
            os._exit(86)

    def after_commit(rows: list[dict[str, Any]]) -> None:
        for row in rows:
            crash_if_armed("after-commit", row)

    store.hooks.in_transaction = lambda row: crash_if_armed("before-commit", row)
    store.hooks.after_commit = after_commit


def _faulty_flow(flask_app: Flask) -> Flow:
    """The app's default flow, with an answer handler that fails or stalls on demand."""
    shipped = flask_app.extensions["flows"].default
    faulty = Flow("reliability-faulty")
    shipped_answer = shipped.handler_for("answer")

    @faulty.on("answer")
    def answer(event: CallbackEvent) -> Any:
        call_id = getattr(event, "call_id", None) or ""
        if call_id.startswith("c-fail-"):
            raise RuntimeError("the answer handler failed (reliability F12)")
        if call_id.startswith("c-slow-"):
            time.sleep(SLOW_SECONDS)
        return shipped_answer(event) if shipped_answer is not None else None

    for event_type, handler in shipped.handlers.items():
        if event_type != "answer":
            faulty.on(event_type)(handler)
    return faulty
