"""Refused callbacks: what the credential-failure log keeps of a 401, and the payload of a
refused request when it reads as one.  Never the password."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import Request, current_app
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import RequestEntityTooLarge

from callbacks.auth import CredentialError, parse_basic
from callbacks.events import CallbackEvent
from callbacks.payload import read_payload
from callbacks.redact import REDACTED
from store import get_store
from store.categories import refused_route

log = logging.getLogger(__name__)

NO_ARGS: ImmutableMultiDict[str, str] = ImmutableMultiDict()


def read_body(req: Request, limit: int | None) -> bytes:
    """The request body, refusing one over MAX_CONTENT_LENGTH however it was sent.

    With ``Transfer-Encoding: chunked`` there is no length to check first, and Werkzeug stops
    reading at the limit without saying so: whatever is left unread means "too large".
    """
    body = req.get_data()
    if limit and len(body) >= limit and req.content_length is None:
        if req.environ["wsgi.input"].read(1):
            raise RequestEntityTooLarge()
    return body


def refused_payload(req: Request, body_limit: int | None) -> dict[str, Any] | None:
    """The payload of a refused callback, when it reads as one (else None)."""
    try:
        args = req.args if req.method == "GET" else NO_ARGS
        payload = read_payload(req.method, req.mimetype, read_body(req, body_limit), args)
    except Exception:
        return None
    return payload if isinstance(payload, dict) else None


def log_refusal(route: str, req: Request, error: CredentialError, body_limit: int | None) -> None:
    """Keep a 401 in the credential-failure log (the username tried, never the password),
    and the call its payload names.  A request without credentials is also the first half
    of the 401 challenge, so only a disconnect sent without them is kept: its call's
    callbacks were all refused if it never comes back with them."""
    payload = refused_payload(req, body_limit)
    username = None
    if error.missing:
        kind = "missing"
        if payload is None or payload.get("eventType") != "disconnect":
            return
    else:
        try:
            username = _tried(parse_basic(req.headers.get("Authorization"))[0])
            kind = "wrong"
        except CredentialError:
            kind = "malformed"
    # A missing one may be the challenge's first half (it is answered by a retry): INFO.
    log.log(
        logging.INFO if kind == "missing" else logging.WARNING,
        "refused a callback to /callbacks/%s: %s credentials (username %r) from %s",
        route,
        kind,
        username,
        req.remote_addr,
    )
    store = get_store()
    store.record_refusal(
        route=route, remote_addr=req.remote_addr, username=username, kind=kind, payload=payload
    )
    if kind == "missing" and payload is not None:
        _log_route_that_ended_it(store, req, payload)


def _tried(username: bytes) -> str:
    """The username a refused request sent, unless it is one of our passwords: credentials
    entered the wrong way round must not put the password in the log and on the page."""
    settings = current_app.extensions["callbacks"]
    ours = False
    for _, password in [*settings.credentials, *settings.fallback_credentials]:
        ours |= hmac.compare_digest(username, password)  # every one: no early exit
    return REDACTED if ours else username.decode("utf-8")


def _log_route_that_ended_it(store: Any, req: Request, payload: dict[str, Any]) -> None:
    """A refused disconnect without credentials whose message says another route's 401
    ended the call (``callback-error``): that refusal, also without credentials, was not
    logged when it happened (it looked like a challenge's first half).  Log it now, so the
    credential log names the route that cost the call, not only the disconnect."""
    message = payload.get("errorMessage")
    ended_by = refused_route(
        payload.get("cause") if isinstance(payload.get("cause"), str) else None,
        message if isinstance(message, str) else None,
    )
    if ended_by is not None and ended_by != "disconnect":
        _log_missing(store, ended_by, req.remote_addr, payload.get("callId"))


def log_unanswered_refusal(store: Any, route: str, req: Request, event: CallbackEvent) -> None:
    """A call ended by a 401 on ``route`` that was not logged when it happened: a request
    without credentials that never came back with them (wrong ones are logged at once).
    Its sender, Bandwidth, is the one that sent this disconnect."""
    try:
        earlier = store.refused_call(event.call_id) if event.call_id else None
    except Exception:
        earlier = None
    if earlier is not None and earlier.get("wrong"):
        return
    _log_missing(store, route, req.remote_addr, event.call_id)


def _log_missing(store: Any, route: str, remote_addr: str | None, call_id: Any) -> None:
    """Log the 401 of a callback sent without credentials that ended call ``call_id``."""
    log.warning(
        "call %s ended: its %s callback came without credentials and was refused (401)",
        call_id,
        route,
    )
    store.record_refusal(
        route=route,
        remote_addr=remote_addr,
        username=None,
        kind="missing",
        payload={"callId": call_id},
        call_row=False,
    )
