"""Running a flow's handler on a callback without side effects.

Replay on the dashboard, ``flask voice render`` and the testing helpers ask: what would
the app's flows answer now to this callback?  The payload is loaded as a callback event,
routed to its flow and answered exactly as the callback route would, with the reply rules
checked; nothing is stored and no call is placed.

How side effects are kept out: the handler runs in the app context of a *shadow* app, a
bare Flask object with the same configuration, whose ``extensions["store"]`` is a read-only
proxy of the real store (reads pass, every write raises ``DryRunRefused``) and whose
``extensions["voice_client"]`` refuses every Voice API request.  ``get_store()`` and
``calls.outbound.place_call`` (which records the attempt first) both find these, so a
handler that queries the store works, and one that writes or places a call is stopped
before anything happens; the refusals are listed in the result.  The shadow is local to
the caller, so concurrent callbacks on other threads are not affected.

Limits: a handler that does its own I/O (opens its own HTTP session or database
connection, writes files, sends mail, changes module globals) is not contained; the time
is now, not the time of the original callback; the reply is redacted like stored replies
(no callback passwords).
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from marshmallow import ValidationError

import bxml
from callbacks.events import CallbackEvent, load_event
from callbacks.redact import redact
from callbacks.routing import NoFlow, attach_state
from callbacks.views import FALLBACK_ROUTE

# Store methods that only read; everything else is refused in a dry run.
STORE_READS = frozenset(
    {
        "events_for_call",
        "events_for_conference",
        "replies_naming",
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


class DryRunRefused(RuntimeError):
    """A handler tried to change something in a dry run."""


class ReadOnlyStore:
    """The store's reads; every other method raises DryRunRefused and is noted."""

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
            raise DryRunRefused(f"store.{name}() is not allowed in a dry run")

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
            raise DryRunRefused(f"the Voice API ({name}) is not called in a dry run")

        return refuse


def shadow_app(app: Flask, refused: list[str]) -> Flask:
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


@dataclass
class DryRun:
    """What the app's flows answer to one callback: ``reply`` (BXML, or None for an
    asynchronous event), or ``error`` (one line) and ``error_detail`` (the traceback)."""

    reply: str | None = None
    error: str | None = None
    error_detail: str | None = None
    flow: str | None = None
    event_type: str | None = None
    refused: list[str] = field(default_factory=list)


def answer(app: Flask, event: CallbackEvent, refused: list[str]) -> str | None:
    """The BXML ``app``'s flows answer to ``event`` (None for an asynchronous event), run
    side-effect free; what was refused is added to ``refused``.  Raises what they raise."""
    registry = app.extensions["flows"]
    with shadow_app(app, refused).app_context():
        if bxml.reply_expected(event.event_type):
            return registry.document_for(event).to_bxml()  # type: ignore[no-any-return]
        handler = registry.handler_for(event)
        if handler is not None:
            handler(event)
        return None


def dry_run(app: Flask, payload: Any, route: str | None = None) -> DryRun:
    """Answer ``payload`` (a callback's JSON object) with ``app``'s flows, side-effect free.

    ``route`` is the callback route it was received on (the fallback route always answers
    the safe document); by default the route named after its event type.
    """
    result = DryRun()
    if not isinstance(payload, dict):
        result.error = "The payload is not a JSON object."
        return result
    try:
        event = load_event(payload)
    except ValidationError as exc:
        result.error = f"The payload does not load as a callback: {exc.messages}"
        return result
    result.event_type = event.event_type
    event.route = route or event.event_type
    settings = app.extensions["callbacks"]
    attach_state(event, settings.secret, max_age=None)  # stored history, however old
    if event.route == FALLBACK_ROUTE:
        result.reply = settings.safe_document
        return result
    try:
        result.reply = answer(app, event, result.refused)
    except Exception as exc:
        result.error = redact(f"{type(exc).__name__}: {exc}", settings.secret_markers)
        if not isinstance(exc, NoFlow):
            result.error_detail = redact(traceback.format_exc(), settings.secret_markers)
    finally:
        result.flow = event.flow
    if result.reply is not None:
        result.reply = redact(result.reply, settings.secret_markers)
    return result
