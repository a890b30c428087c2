"""Structured logging: one JSON object per line on stdout, for the app when not testing.

``init_app(app)`` (called by ``create_app`` unless testing) sends every log record of the
process to stdout as a JSON line (unless the process configured logging already, e.g. with
gunicorn's ``--log-config``: like ``logging.basicConfig``, it then changes nothing)::

    {"timestamp": "2025-01-31T12:00:00.123Z", "level": "INFO", "logger": "http.request",
     "message": "POST /callbacks/answer 200", "pid": 4242, "method": "POST",
     "path": "/callbacks/answer", "status": 200, "duration_ms": 3.1}

and logs one such ``http.request`` line per request with the method, the path and the
status (accepted callbacks excepted: each is a stored event with its status and latency;
refused ones, 4xx/5xx, are logged).  What is never written:

- the query string (a GET callback carries phone numbers and the tag there), request
  bodies, and request headers (``Authorization`` among them): the request log takes
  ``request.path`` only, and nothing here reads headers or bodies;
- the configured secrets (callback, fallback, dashboard and API passwords, SECRET_KEY):
  any that appears in a message, an argument or a traceback is replaced by ``[redacted]``.

Werkzeug's development-server request lines (which carry the query string) are turned off;
gunicorn's own access log (gunicorn.conf.py) already leaves query strings and headers out.
Stdout, not stderr: the twelve-factor convention, and the test runner's gunicorn keeps
stderr in an undrained pipe.  A ``flask`` command other than ``run`` logs to stderr
instead: its stdout is its output, for a person or a pipe.  ``LOG_LEVEL`` (environment)
sets the level, INFO by default.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, request

REQUEST_LOGGER = "http.request"
REDACTED = "[redacted]"
SECRET_SETTINGS = (
    "CALLBACK_PASSWORD",
    "FALLBACK_PASSWORD",
    "DASHBOARD_PASSWORD",
    "BW_PASSWORD",
    "SECRET_KEY",
    "METRICS_TOKEN",
    "ALERT_WEBHOOK_URL",
)
MIN_SECRET_CHARS = 4  # shorter values would redact ordinary words
REQUEST_FIELDS = ("method", "path", "status", "duration_ms")

_secrets: tuple[str, ...] = ()  # replaced whole, never changed in place
_secrets_lock = threading.Lock()


def _redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class JsonFormatter(logging.Formatter):
    """timestamp (UTC, ms), level, logger, message, pid; request fields; exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": _redact(record.getMessage()),
            "pid": record.process,
        }
        for name in REQUEST_FIELDS:
            if name in record.__dict__:
                entry[name] = record.__dict__[name]
        if record.exc_info:
            entry["exception"] = _redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = _redact(record.exc_text)
        return json.dumps(entry, ensure_ascii=False, default=str)


class StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` (``sys.stderr`` with ``to_stderr``) is at the time
    of each record."""

    def __init__(self, to_stderr: bool = False) -> None:
        self.to_stderr = to_stderr
        super().__init__(sys.stdout)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr if self.to_stderr else sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure(level: str | int | None = None, *, to_stderr: bool = False) -> bool:
    """Install the JSON handler on the root logger, once per process; ``to_stderr`` for a
    command whose stdout is its output.

    Like ``logging.basicConfig``, this leaves a logging setup that already exists alone
    (gunicorn ``--log-config``, an embedding program, pytest's capture) and returns False.
    """
    root = logging.getLogger()
    for installed in root.handlers:
        if isinstance(installed, StdoutHandler):
            installed.to_stderr = to_stderr
            return True
    if root.handlers:
        return False
    handler = StdoutHandler(to_stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level or os.environ.get("LOG_LEVEL") or logging.INFO)
    # The development server's request lines carry the query string; ours do not.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    return True


def configured_secrets(config: Mapping[str, Any]) -> list[str]:
    """The secrets among ``config``'s settings (passwords, SECRET_KEY, the passwords of
    CALLBACK_CREDENTIALS), those long enough to replace in text without hitting words."""
    found = [config.get(name) for name in SECRET_SETTINGS]
    for item in str(config.get("CALLBACK_CREDENTIALS") or "").split(","):
        found.append(item.partition(":")[2].strip())
    return [s for s in found if isinstance(s, str) and len(s) >= MIN_SECRET_CHARS]


def init_app(app: Flask, *, to_stderr: bool = False) -> None:
    """JSON logging for the process, the app's secrets redacted, one line per request;
    ``to_stderr`` for a ``flask`` command (``flask store status | grep``: its stdout is
    its output)."""
    global _secrets
    configure(to_stderr=to_stderr)
    with _secrets_lock:
        known = set(_secrets)
        known.update(configured_secrets(app.config))
        # Longest first, so a secret containing another is redacted whole.
        _secrets = tuple(sorted(known, key=len, reverse=True))
    if "logsetup" in app.extensions:
        return
    app.extensions["logsetup"] = True
    log = logging.getLogger(REQUEST_LOGGER)

    @app.before_request
    def _started() -> None:
        g.logsetup_started = time.perf_counter()

    @app.after_request
    def _log_request(response: Response) -> Response:
        if request.blueprint == "callbacks" and response.status_code < 400:
            # Every accepted callback is a stored event (status, latency, reply): the store
            # is its log, and the callback hot path stays free of a second write.
            return response
        started = g.get("logsetup_started")
        took = None if started is None else round((time.perf_counter() - started) * 1000, 2)
        # request.path: never the query string.
        log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": took,
            },
        )
        return response
