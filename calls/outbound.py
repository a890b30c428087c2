"""Placing calls from inside the app: defaults from configuration, every attempt recorded.

``place_call(to=..., flow="name", state={...})`` fills what the app knows (application id, the from
number, answerUrl/answerFallbackUrl/disconnectUrl built from PUBLIC_BASE_URL and our own
routes, the callback credentials), signs ``state`` into the tag together with an attempt
id, records the attempt (without secrets) before sending, and settles it with the outcome.
An attempt whose outcome is unknown (read timeout, 5xx after sending) is settled as created
when a callback carrying its attempt id arrives (see callbacks.views).
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Flask, current_app

import config
from callbacks.tags import FLOW_KEY, encode_state
from calls.client import VoiceClient
from calls.errors import (
    CallRejected,
    ConnectionFailed,
    OutcomeUnknown,
    RateLimited,
    ServiceUnavailable,
    VoiceApiError,
)
from calls.schemas import create_call_payload
from store import get_store

SECRET_FIELDS = frozenset({"username", "password", "fallbackUsername", "fallbackPassword"})
ATTEMPT_KEY = "_attempt"  # the framework's own: handlers never see it in event.state


def client_for(app: Flask) -> VoiceClient:
    """The app's pooled client (one per process), pointed at the configured backend."""
    client = app.extensions.get("voice_client")
    if client is None:
        api = config.voice_api(app.config)
        client = VoiceClient(
            account_id=api["account_id"],
            username=api["username"],
            password=api["password"],
            base_url=api["base_url"],
        )
        app.extensions["voice_client"] = client
    return client  # type: ignore[no-any-return]


def callback_url(app: Flask, route: str) -> str:
    return f"{app.config['PUBLIC_BASE_URL'].rstrip('/')}/callbacks/{route}"


def _outcome(error: VoiceApiError) -> str:
    if isinstance(error, OutcomeUnknown):
        return "unknown"
    if isinstance(error, RateLimited):
        return "rate_limited"
    if isinstance(error, ServiceUnavailable):
        return "unavailable"
    if isinstance(error, ConnectionFailed):
        return "failed"
    if isinstance(error, CallRejected):
        return "rejected"
    return "failed"


def place_call(
    *,
    to: str,
    flow: str | None = None,
    state: dict[str, Any] | None = None,
    **optional: Any,
) -> dict[str, Any]:
    """Create a call with the app's defaults; returns Bandwidth's body plus ``attemptId``.

    ``flow`` names the flow that answers every callback of the call (without one, the call
    is routed by its from number, its application or the default flow); ``state`` is the
    handlers' starting ``event.state``.  Raises ValueError for a flow the app does not
    have and marshmallow ``ValidationError`` (nothing sent, nothing recorded for either), or
    a ``calls.VoiceApiError`` (recorded with its outcome; its ``attempt_id`` names it).
    """
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    cfg = app.config
    if flow is not None and flow not in app.extensions.get("flows", ()):
        known = ", ".join(sorted(getattr(app.extensions.get("flows"), "flows", ()))) or "none"
        raise ValueError(f"place_call: no flow named {flow!r} (flows: {known})")
    api = config.voice_api(cfg)
    attempt_id = uuid.uuid4().hex
    fields: dict[str, Any] = {
        "from_": api["from_number"],
        "application_id": api["application_id"],
        "answer_url": callback_url(app, "answer"),
        "answer_fallback_url": callback_url(app, "answer-fallback"),
        "disconnect_url": callback_url(app, "disconnect"),
    }
    credentials = config.parse_credentials(cfg)
    if credentials:
        fields["username"], fields["password"] = credentials[0]
    fallback = config.parse_credentials(cfg, fallback=True)
    if fallback:
        fields["fallback_username"], fields["fallback_password"] = fallback[0]
    fields.update(optional)
    signed = {**(state or {}), ATTEMPT_KEY: attempt_id}
    if flow is not None:
        signed[FLOW_KEY] = flow
    fields["tag"] = encode_state(signed, cfg["SECRET_KEY"])
    fields["to"] = to

    wire = create_call_payload(**fields)  # raises ValidationError before anything is recorded
    store = get_store(app)
    store.record_outbound_attempt(
        attempt_id, {k: v for k, v in wire.items() if k not in SECRET_FIELDS}
    )
    try:
        body = client_for(app).send_create_call(wire)
    except VoiceApiError as error:
        store.settle_outbound(attempt_id, _outcome(error), error=str(error))
        # Callers can follow an unknown outcome: a callback with this id settles it.
        error.attempt_id = attempt_id  # type: ignore[attr-defined]
        raise
    store.settle_outbound(attempt_id, "created", call_id=body.get("callId"))
    return {**body, "attemptId": attempt_id}
