"""Replay: what would the app answer now to a callback it stored earlier?

The stored payload is loaded as a callback event again and given to the handler the app has
registered *now* for its event type; the result is checked against the callback's reply
rules and rendered, exactly as the callback route would.  Nothing is stored and no call is
placed.

How side effects are kept out: the handler runs in the app context of a *shadow* app, a
bare Flask object with the same configuration, whose ``extensions["store"]`` is a read-only
proxy of the real store (reads pass, every write raises ``ReplayRefused``) and whose
``extensions["voice_client"]`` refuses every Voice API request.  ``get_store()`` and
``calls.outbound.place_call`` (which records the attempt first) both find these, so a
handler that queries the store works, and one that writes or places a call is stopped
before anything happens; the refusals are listed on the result page.  The shadow is local
to the request, so concurrent callbacks on other threads are not affected.

Limits: a handler that does its own I/O (opens its own HTTP session or database
connection, writes files, sends mail, changes module globals) is not contained; ``request``
inside the handler is the operator's POST, not Bandwidth's; the time is now, not the time
of the original callback; the reply is redacted like stored replies (no callback passwords).
"""

from __future__ import annotations

import difflib
import traceback
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app
from marshmallow import ValidationError

import bxml
from callbacks.events import load_event
from callbacks.redact import redact
from callbacks.tags import decode_state
from callbacks.views import FALLBACK_ROUTE

# Store methods that only read; everything else is refused during a replay.
STORE_READS = frozenset(
    {
        "events_for_call",
        "events_for_conference",
        "disconnects",
        "cause_counts",
        "failures_over_time",
        "rejected",
        "outbound_for_call",
        "outbound_attempt",
        "unsettled_outbound",
        "find_callback",
        "health",
    }
)


class ReplayRefused(RuntimeError):
    """A handler tried to change something during a replay."""


class ReadOnlyStore:
    """The store's reads; every other method raises ReplayRefused and is noted."""

    def __init__(self, store: Any, refused: list[str]) -> None:
        self._store = store
        self._refused = refused

    def __getattr__(self, name: str) -> Any:
        if name in STORE_READS:
            return getattr(self._store, name)
        if name.startswith("__"):
            raise AttributeError(name)

        def refuse(*_args: Any, **_kwargs: Any) -> Any:
            self._refused.append(f"store.{name}()")
            raise ReplayRefused(f"store.{name}() is not allowed during a replay")

        return refuse


class RefusedVoiceClient:
    """Stands in for the Voice API client: every request is refused and noted."""

    def __init__(self, refused: list[str]) -> None:
        self._refused = refused

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def refuse(*_args: Any, **_kwargs: Any) -> Any:
            self._refused.append(f"Voice API {name}()")
            raise ReplayRefused(f"the Voice API ({name}) is not called during a replay")

        return refuse


@dataclass
class ReplayResult:
    event: dict[str, Any]
    stored_reply: str | None
    reply: str | None = None
    error: str | None = None
    error_detail: str | None = None
    refused: list[str] = field(default_factory=list)
    diff: str = ""

    @property
    def same(self) -> bool:
        return self.error is None and (self.reply or "") == (self.event.get("reply_body") or "")


def _shadow(app: Flask, refused: list[str]) -> Flask:
    shadow = Flask(
        app.import_name,
        root_path=app.root_path,
        instance_path=app.instance_path,
        static_folder=None,
    )
    shadow.config.update(app.config)
    shadow.url_map = app.url_map
    shadow.view_functions = app.view_functions
    shadow.extensions = {
        **app.extensions,
        "store": ReadOnlyStore(app.extensions["store"], refused),
        "voice_client": RefusedVoiceClient(refused),
    }
    return shadow


def replay(row: dict[str, Any]) -> ReplayResult:
    """Run the current handler on a stored callback ``row`` (from ``events_for_call``)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    result = ReplayResult(event=row, stored_reply=row.get("reply_body"))
    payload = row.get("payload")
    if not isinstance(payload, dict):
        result.error = "The stored payload is not a JSON object."
        return result
    try:
        event = load_event(payload)
    except ValidationError as exc:
        result.error = f"The stored payload no longer loads as a callback: {exc.messages}"
        return result
    event.route = row.get("route")
    event.state = decode_state(
        event.tag,
        app.config["SECRET_KEY"],
        call_id=event.__dict__.get("call_id"),
        parent_call_id=event.__dict__.get("parent_call_id"),
        max_age=None,  # the handler's answer to this event, however old the event is
    )
    settings = app.extensions["callbacks"]
    if event.route == FALLBACK_ROUTE:  # the fallback route always answers the safe document
        result.reply = settings.safe_document
        result.diff = _diff(result.stored_reply, result.reply)
        return result
    registry = app.extensions["voice"]
    with _shadow(app, result.refused).app_context():
        try:
            document = registry.reply_document(event)
            bxml.check_reply(document, event.event_type)
            body = document.to_bxml()
        except Exception as exc:
            result.error = redact(f"{type(exc).__name__}: {exc}", settings.secret_markers)
            result.error_detail = redact(traceback.format_exc(), settings.secret_markers)
            return result
    result.reply = redact(body, settings.secret_markers)
    result.diff = _diff(result.stored_reply, result.reply)
    return result


def _diff(before: str | None, after: str | None) -> str:
    lines = difflib.unified_diff(
        (before or "").splitlines(),
        (after or "").splitlines(),
        fromfile="stored reply",
        tofile="reply now",
        lineterm="",
    )
    return "\n".join(lines)
