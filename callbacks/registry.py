"""Where call logic is registered: plain functions, one per event type.

    from callbacks import voice
    from bxml import Response, SpeakSentence

    @voice.on("answer")
    def greet(event):
        return Response(SpeakSentence(f"Hello {event.to}"))

A handler receives a ``CallbackEvent`` (``event.state`` is the verified tag state) and
returns a ``bxml.Response`` for events that expect BXML (or None for an empty one, which
Bandwidth treats as a hangup).  For asynchronous events (disconnect, recordingAvailable,
...) the return value is ignored and the route answers 204.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app

import bxml
from callbacks.events import EVENT_TYPES, CallbackEvent, canonical_event_type
from callbacks.tags import VERB_TAG_LIMIT, encode_state

Handler = Callable[[CallbackEvent], Any]


class Voice:
    """A registry of handlers by event type."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def on(self, event_type: str) -> Callable[[Handler], Handler]:
        """Register the decorated function for ``event_type`` (replacing an earlier one)."""
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown Bandwidth event type {event_type!r}")

        def register(func: Handler) -> Handler:
            self._handlers[canonical_event_type(event_type)] = func
            return func

        return register

    def handler_for(self, event_type: str) -> Handler | None:
        return self._handlers.get(event_type)

    def reply_document(self, event: CallbackEvent) -> bxml.Response:
        """The registered handler's reply to a BXML event, as a Response document.

        No handler, or a handler returning None, gives an empty Response (a hangup); any
        other return value raises TypeError.  The caller checks the reply-context rules.
        """
        handler = self._handlers.get(event.event_type)
        document = handler(event) if handler is not None else None
        if document is None:
            return bxml.Response()
        if not isinstance(document, bxml.Response):
            raise TypeError(
                f"{event.event_type} handler must return a bxml.Response, "
                f"got {type(document).__name__}"
            )
        return document

    def remove(self, event_type: str) -> None:
        self._handlers.pop(canonical_event_type(event_type), None)

    @staticmethod
    def url(route: str) -> str:
        """The absolute URL of one of our callback routes, built from PUBLIC_BASE_URL only."""
        return f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}/callbacks/{route}"

    @staticmethod
    def credentials() -> dict[str, str]:
        """``username``/``password`` attributes for verbs whose callbacks come back to us.

        Bandwidth sends Basic credentials to a verb's URL only when the verb carries them.
        Empty when no callback credentials are configured.
        """
        cfg = current_app.config
        if cfg.get("CALLBACK_USERNAME") and cfg.get("CALLBACK_PASSWORD"):
            return {"username": cfg["CALLBACK_USERNAME"], "password": cfg["CALLBACK_PASSWORD"]}
        return {}

    @staticmethod
    def tag(state: dict[str, Any]) -> bxml.Tag:
        """A ``<Tag>`` verb carrying ``state``, signed, for every later callback of the call."""
        return bxml.Tag(encode_state(state, current_app.config["SECRET_KEY"], limit=VERB_TAG_LIMIT))


# The default registry; the app's flows register on it.  An app may use another one by
# putting it at app.extensions["voice"] (tests do).
voice = Voice()
