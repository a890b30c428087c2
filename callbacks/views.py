"""The callback routes Bandwidth calls during every call.

One callback, one way through:

    route -> credentials -> payload (POST JSON | GET query) -> event schema
          -> answered lately by this process? (answer as before)
          -> handler(event) -> bxml document -> reply-context check -> render
          -> store (committed, or spooled; a stored duplicate wins) -> HTTP reply

Duplicates: the store's unique key (route, payload hash) keeps one copy, and every copy is
answered with the reply stored first.  A copy this process answered lately is answered from
memory without calling the handler; any other copy (another worker or server answered it,
or it arrives while the first is still being handled) runs the handler, whose reply is then
replaced by the stored one.  Bandwidth retries a callback once after a connection error, so
handlers should be idempotent anyway; checking the database before every handler call cost
about a tenth of the route's throughput, for a case that memory covers on one server.

Status codes: 401 + ``WWW-Authenticate`` for missing or wrong credentials (no event stored;
the refusal is counted in the bounded credential-failure log, never the password);
400/413/415/422 for malformed requests (kept in the rejected log, never as events); 200 with
BXML for events that expect it; 204 for asynchronous events; 503 only when neither the
database nor the spool can take the event, so it is never acknowledged and lost.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from marshmallow import ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

import bxml
import config
from arrival import arrival_of
from callbacks.auth import CredentialError, challenge, encode_pairs, verify_basic
from callbacks.events import CONFERENCE_EVENTS, EVENT_SCHEMAS, CallbackEvent, load_event
from callbacks.payload import PayloadError, read_payload
from callbacks.redact import Markers, markers_for, redact, restore
from callbacks.refusals import (
    NO_ARGS,
    log_refusal,
    log_unanswered_refusal,
    read_body,
    refused_payload,
)
from callbacks.routing import FlowRegistry, NoFlow, attach_state
from store import StoreUnavailable, categories, get_store

bp = Blueprint("callbacks", __name__, url_prefix="/callbacks")
log = logging.getLogger(__name__)

XML = "application/xml; charset=utf-8"
FALLBACK_ROUTE = "answer-fallback"
FALLBACK_STORE_SECONDS = 0.5  # then the callback is spooled (fsynced) and answered

# Which event types each route accepts.  Every event type has a route of its own name;
# Bandwidth sends several event types to one URL for conferences, streams and real-time
# transcription, so those also have a shared route.
ROUTES: dict[str, frozenset[str]] = {name: frozenset({name}) for name in EVENT_SCHEMAS}
ROUTES.update(
    {
        "recordingComplete": frozenset({"recordComplete"}),
        FALLBACK_ROUTE: frozenset({"answer"}),
        "conference": CONFERENCE_EVENTS,
        "stream": frozenset(n for n in EVENT_SCHEMAS if n.startswith("mediaStream")),
        "transcription": frozenset(
            n for n in EVENT_SCHEMAS if n.startswith("realTimeTranscription")
        ),
    }
)


class RecentReplies:
    """The replies this process gave lately, by (route, payload hash): bounded, oldest out."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._replies: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> dict[str, Any] | None:
        with self._lock:
            return self._replies.get(key)

    def remember(self, key: tuple[str, str], reply: dict[str, Any]) -> None:
        with self._lock:
            self._replies[key] = reply
            if len(self._replies) > self.capacity:
                del self._replies[next(iter(self._replies))]

    def clear(self) -> None:
        with self._lock:
            self._replies.clear()


@dataclass(frozen=True)
class CallbackSettings:
    """Per-app settings the hot path needs, computed once at registration."""

    credentials: list[tuple[bytes, bytes]]
    fallback_credentials: list[tuple[bytes, bytes]]
    realm: str
    secret: str
    safe_document: str
    failure_mode: str
    secret_markers: Markers
    recent: RecentReplies
    body_limit: int | None
    # Taken once, never released: whoever takes it logs the open-routes warning.
    open_warning: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_app(cls, app: Flask) -> CallbackSettings:
        cfg = app.config
        safe = bxml.Response(bxml.SpeakSentence(cfg["SAFE_SPEECH"]), bxml.Hangup()).to_bxml()
        mode = cfg["ANSWER_FAILURE_MODE"]
        return cls(
            credentials=encode_pairs(config.parse_credentials(cfg)),
            fallback_credentials=encode_pairs(config.parse_credentials(cfg, fallback=True)),
            realm=cfg["CALLBACK_REALM"],
            secret=cfg["SECRET_KEY"],
            safe_document=safe,
            failure_mode=mode,
            secret_markers=markers_for(
                password for _, password in config.parse_credentials(cfg, fallback=True)
            ),
            recent=RecentReplies(),
            body_limit=cfg.get("MAX_CONTENT_LENGTH"),
        )


@bp.record_once
def _setup(state: Any) -> None:
    # Registering the blueprint alone (without callbacks.init_app) works too: every setting
    # gets its default, and the store and an empty set of flows are created.
    from callbacks.setup import apply_defaults, registry_for

    app: Flask = state.app
    apply_defaults(app)
    config.check(app.config)
    if "store" not in app.extensions:
        import store as store_package

        store_package.init_app(app)
    registry_for(app)
    settings = CallbackSettings.from_app(app)
    app.extensions["callbacks"] = settings


def _warn_open_routes(settings: CallbackSettings) -> None:
    """Once per process, on the first callback: the routes take anyone's events.  (Not at
    start-up: every ``flask`` command would print it; the server's banner says it once.)"""
    if not settings.open_warning.acquire(blocking=False):
        return
    log.warning(
        "NO CALLBACK CREDENTIALS CONFIGURED: anyone who finds /callbacks/* can post events. "
        "Set CALLBACK_USERNAME and CALLBACK_PASSWORD (and the same on the call)."
    )


def _plain(status: int, message: str) -> Response:
    return Response(message + "\n", status, mimetype="text/plain")


def canonical_payload(payload: dict[str, Any]) -> tuple[str, str]:
    """The payload's canonical JSON (stored as is) and its hash, the identity of a delivery
    (the same for GET and POST)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return canonical, hashlib.sha256(canonical.encode("ascii")).hexdigest()


@bp.route("/<route>", methods=["GET", "POST"])
def receive(route: str) -> Response:
    accepted = ROUTES.get(route)
    if accepted is None:
        return _plain(404, f"unknown callback route /callbacks/{route}")
    if request.method == "HEAD":  # Flask adds HEAD to GET routes; a safe method stores nothing
        reply = _plain(405, "callbacks are delivered with GET or POST")
        reply.headers["Allow"] = "GET, POST"
        return reply
    settings: CallbackSettings = current_app.extensions["callbacks"]
    req = request._get_current_object()  # type: ignore[attr-defined]  # once, not per use
    started, received_at = arrival_of(req.environ)  # waits for a thread count too

    pairs = settings.fallback_credentials if route == FALLBACK_ROUTE else settings.credentials
    if not pairs and not settings.open_warning.locked():
        _warn_open_routes(settings)
    if pairs:
        try:
            verify_basic(req.headers.get("Authorization"), pairs)
        except CredentialError as exc:
            g.callback_credentials_missing = exc.missing  # Bandwidth's first try, or wrong
            log_refusal(route, req, exc, settings.body_limit)
            reply = _plain(401, "credentials required" if exc.missing else "wrong credentials")
            reply.headers["WWW-Authenticate"] = challenge(settings.realm)
            return reply

    store = get_store()
    try:
        method = req.method
        if method == "GET" and settings.body_limit and len(req.query_string) > settings.body_limit:
            # A GET callback carries its payload in the query string: the same limit applies.
            return _rejected(store, route, 413, "query string is larger than MAX_CONTENT_LENGTH")
        args = req.args if method == "GET" else NO_ARGS  # a POST's query string is not read
        payload = read_payload(method, req.mimetype, read_body(req, settings.body_limit), args)
        event = load_event(payload)
        if event.event_type not in accepted:
            raise PayloadError(
                422, f"eventType {event.event_type!r} is not accepted at /callbacks/{route}"
            )
    except RequestEntityTooLarge:
        return _rejected(store, route, 413, "body is larger than MAX_CONTENT_LENGTH")
    except PayloadError as exc:
        return _rejected(store, route, exc.status, exc.message)
    except ValidationError as exc:
        return _rejected(store, route, 422, f"invalid callback: {json.dumps(exc.messages)}")

    canonical, digest = canonical_payload(payload)
    key = (route, digest)
    prior = settings.recent.get(key)
    if prior is not None:
        return _stored_reply(prior, settings)

    event.route = route
    attach_state(event, settings.secret)
    g.callback_event = event  # for metrics and alerts (monitoring), as the timings below
    handler_started = time.perf_counter()
    status, body, error_detail, category = _answer(route, event, settings)
    g.callback_handler_seconds = time.perf_counter() - handler_started
    stored_body = redact(body, settings.secret_markers)
    record = _record(
        route,
        method,
        event,
        canonical,
        digest,
        status,
        stored_body,
        redact(error_detail, settings.secret_markers),
        started,
        received_at,
    )
    refused_route = None
    if category is None and event.event_type == "disconnect":
        refused_route = categories.refused_route(event.cause, event.error_message)
        if refused_route is not None:
            category = categories.CREDENTIAL_FAILURE
    record["category"] = category
    store_started = time.perf_counter()
    try:
        # The fallback answers even with the store down: it waits for it briefly.
        wait = FALLBACK_STORE_SECONDS if route == FALLBACK_ROUTE else None
        outcome, stored = store.record_callback(record, timeout=wait)
        g.callback_stored = (outcome, time.perf_counter() - store_started)
    except StoreUnavailable:
        log.error("store and spool both unavailable; refusing %s for %s", route, event.call_id)
        if route == FALLBACK_ROUTE:
            return _reply(status, body)  # the fallback must answer even then
        return _plain(503, "event store unavailable; please retry")
    if outcome == "duplicate" and stored is not None:
        settings.recent.remember(key, stored)
        return _stored_reply(stored, settings)
    if outcome != "spooled":
        # A spooled reply is not remembered: the database may come to hold another copy's
        # (another worker's, answered meanwhile), and from then on that one is every
        # copy's answer, this worker's too.
        settings.recent.remember(
            key,
            {
                "reply_status": status,
                "reply_body": stored_body,
                "reply_content_type": record["reply_content_type"],
            },
        )
    if event.attempt and event.event_type in SETTLING_EVENTS:
        _settle_attempt(store, event)
    if refused_route is not None and outcome == "inserted":
        log_unanswered_refusal(store, refused_route, req, event)
    return _reply(status, body)


# The first callback of a call we placed proves the call exists.
SETTLING_EVENTS = frozenset({"answer", "disconnect"})


def _settle_attempt(store: Any, event: CallbackEvent) -> None:
    """Settle an outbound attempt whose outcome was unknown (or never recorded as done)."""
    attempt = str(event.attempt)
    try:
        row = store.outbound_attempt(attempt)
        if row is not None and row["outcome"] in ("unknown", "pending") and event.call_id:
            store.settle_outbound(attempt, "created", call_id=event.call_id)
    except Exception:
        log.warning("could not settle outbound attempt %s", attempt)


def _answer(
    route: str, event: CallbackEvent, settings: CallbackSettings
) -> tuple[int, str | None, str | None, str | None]:
    """Run the event's flow's handler: (status, body, error_detail, failure category).
    Never raises."""
    registry: FlowRegistry = current_app.extensions["flows"]
    if not bxml.reply_expected(event.event_type):
        handler = registry.handler_for(event)
        if handler is not None:
            try:
                handler(event)
            except Exception as exc:
                log.exception("%s handler failed for %s", event.event_type, event.call_id)
                g.callback_error = exc
                return 204, None, traceback.format_exc(), categories.HANDLER_ERROR
        return 204, None, None, None
    if route == FALLBACK_ROUTE:
        return 200, settings.safe_document, None, None
    try:
        return 200, registry.document_for(event).to_bxml(), None, None
    except Exception as exc:
        g.callback_error = exc
        detail = error_detail(exc)
        invalid = isinstance(exc, bxml.BxmlError)
        category = categories.INVALID_REPLY if invalid else categories.HANDLER_ERROR
        # With the traceback: a crashing handler must be findable from the log alone.
        log.error(
            "%s handler failed for %s: %s",
            event.event_type,
            event.call_id,
            exc,
            exc_info=not invalid and not isinstance(exc, NoFlow),
        )
        if settings.failure_mode == "fallback":
            return 503, None, detail, category
        return 200, settings.safe_document, detail, category


def error_detail(exc: Exception) -> str:
    """What the dashboard shows for a failed reply: the traceback (or, when no flow answers,
    the reason alone), and the handler's document when it could be rendered."""
    if isinstance(exc, NoFlow):
        return f"NoFlow: {exc}"
    detail = traceback.format_exc()
    document = getattr(exc, "document", None)
    if isinstance(document, bxml.Response):
        try:
            detail += "\nThe handler's document:\n" + document.to_bxml()
        except Exception as render_exc:
            detail += f"\nThe handler's document could not be rendered: {render_exc}"
    return detail


def _record(
    route: str,
    method: str,
    event: CallbackEvent,
    payload: str,
    digest: str,
    status: int,
    body: str | None,
    error_detail: str | None,
    started: float,
    received_at: float,
) -> dict[str, Any]:
    raw = event.raw
    return {
        "route": route,
        "method": method,
        "event_type": event.event_type,
        "call_id": event.__dict__.get("call_id"),
        "conference_id": event.__dict__.get("conference_id"),
        "parent_call_id": event.__dict__.get("parent_call_id"),
        "event_time": raw.get("eventTime"),
        "from_number": event.__dict__.get("from_"),
        "to_number": event.__dict__.get("to"),
        "direction": event.__dict__.get("direction"),
        "tag": raw.get("tag"),
        "cause": event.__dict__.get("cause"),
        "error_message": event.__dict__.get("error_message"),
        "error_id": event.__dict__.get("error_id"),
        "sip_response_code": event.__dict__.get("sip_response_code"),
        "payload": payload,
        "payload_hash": digest,
        "reply_status": status,
        "reply_body": body,
        "reply_content_type": XML if body is not None else None,
        "latency_ms": (time.perf_counter() - started) * 1000.0,
        "error_detail": error_detail,
        "flow": event.__dict__.get("flow"),  # the flow that handled it (set by routing)
        "received_at": received_at,
    }


def _reply(status: int, body: str | None) -> Response:
    if body is None:
        return _empty(status)
    return Response(body, status, content_type=XML)


def _empty(status: int) -> Response:
    """A reply without a body, and so without a Content-Type (Werkzeug adds text/html)."""
    reply = Response(status=status)
    del reply.headers["Content-Type"]
    return reply


def _stored_reply(prior: dict[str, Any], settings: CallbackSettings) -> Response:
    body = restore(prior.get("reply_body"), settings.secret_markers)
    if body is None:
        return _empty(prior["reply_status"])
    return Response(
        body, prior["reply_status"], content_type=prior.get("reply_content_type") or XML
    )


def _rejected(store: Any, route: str, status: int, reason: str) -> Response:
    if status == 413:
        body = b""  # not read: it is over the limit
    elif request.method == "GET":
        body = request.query_string
    else:
        body = request.get_data()
    try:
        store.record_rejected(route, request.method, status, reason, body, request.remote_addr)
        if status != 413:
            payload = refused_payload(request, current_app.extensions["callbacks"].body_limit)
            if payload is not None and isinstance(payload.get("callId"), str):
                store.record_refusal(
                    route=route,
                    remote_addr=request.remote_addr,
                    username=None,
                    kind=None,
                    payload=payload,
                    category=categories.REJECTED_PAYLOAD,
                )
    except Exception:
        log.warning("could not keep the rejected request in the log")
    return _plain(status, reason)
