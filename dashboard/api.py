"""The JSON API over the event store: HTTP Basic with the dashboard login (for scripts), or
the dashboard's login session (for the dashboard's own auto-refresh).  GET only.

``GET /api/calls/<callId>/events``: the call's stored callbacks in arrival order, each with
its ``eventType`` and payload (and what we answered).

``GET /api/disconnects``: disconnects newest first, with the dashboard's filters as query
parameters (see ``dashboard.filters``; ``limit`` up to 500).  The answer is
``{"disconnects": [...], "nextBeforeId": id|null, "next": url|null}``; follow ``next`` for
older rows.  Each disconnect has its ``category`` (``store.categories``), and a call whose
handler failed its ``handlerError`` (a sentence) and ``handlerErrorDetail`` (the traceback).

``GET /api/categories``: calls per failure category (the dashboard's counts, same ``since``
and ``until``), with what each means: ``{"categories": [{"category", "count",
"description", "needsAttention"}]}``; calls whose callbacks were refused are counted too, and outbound
calls the Voice API did not accept as ``not-placed`` (no disconnect: nobody was called).

``GET /api/credential-failures``: the credential-failure log (never a password) and the
calls whose callbacks were refused.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from callbacks.auth import challenge
from callbacks.redact import masked_row
from dashboard import placements
from dashboard.auth import attempts_retry_after, check_basic, logged_in
from dashboard.filters import DisconnectFilter, FilterError, disconnect_json
from dashboard.messages import with_handler_errors
from dashboard.refused import refused_calls
from store import StoreUnavailable, categories, get_store

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.before_request
def _require_dashboard_login() -> Response | None:
    if logged_in():
        return None
    header = request.headers.get("Authorization")
    verdict = check_basic(header) if header else False
    if verdict:
        return None
    if verdict is None:
        reply = jsonify(error="too many wrong passwords from your address; try again later")
        reply.status_code = 429
        reply.headers["Retry-After"] = str(attempts_retry_after())
        return reply
    reply = jsonify(error="dashboard credentials required")
    reply.status_code = 401
    # The dashboard's own scripts say who they are: no challenge, so the browser does not
    # pop up a password dialog when their session has ended.
    if request.headers.get("X-Requested-With") != "dashboard":
        reply.headers["WWW-Authenticate"] = challenge("Dashboard")
    return reply


@bp.after_request
def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(StoreUnavailable)
def _store_down(_error: StoreUnavailable) -> tuple[Response, int]:
    return jsonify(error="event store unavailable; try again shortly"), 503


def _event_json(stored: dict[str, Any]) -> dict[str, Any]:
    row = masked_row(stored)  # as the pages show it: no password a handler wrote
    return {
        "id": row["id"],
        "receivedAt": row["received_at"],
        "route": row["route"],
        "method": row["method"],
        "eventType": row["event_type"],
        "callId": row["call_id"],
        "payload": row["payload"],
        "replyStatus": row["reply_status"],
        "replyBody": row["reply_body"],
        "latencyMs": row["latency_ms"],
        "error": row["error_detail"],
    }


@bp.get("/calls/<path:call_id>/events")
def call_events(call_id: str) -> Response:
    events = get_store().events_for_call(call_id)
    return jsonify(callId=call_id, events=[_event_json(row) for row in events])


@bp.get("/disconnects")
def disconnects() -> Response | tuple[Response, int]:
    try:
        filters = DisconnectFilter.from_args(request.args, get_store())
    except FilterError as exc:
        return jsonify(error=str(exc)), 400
    store = get_store()
    rows, older = filters.page(store)
    return jsonify(
        disconnects=with_handler_errors(store, [disconnect_json(row) for row in rows]),
        nextBeforeId=older,
        next=url_for(".disconnects", **filters.query_args(before_id=older)) if older else None,
    )


@bp.get("/categories")
def category_counts() -> Response | tuple[Response, int]:
    try:
        filters = DisconnectFilter.from_args(request.args, get_store())
    except FilterError as exc:
        return jsonify(error=str(exc)), 400
    store = get_store()
    counts = store.category_counts(filters.since, filters.until)
    for name, n in store.refused_counts(filters.since, filters.until).items():
        counts[name] = counts.get(name, 0) + n
    not_placed = store.not_placed(filters.since, filters.until)
    if not_placed:
        counts[placements.NOT_PLACED] = not_placed
    return jsonify(
        categories=[
            {
                "category": name,
                "count": n,
                "description": categories.describe(name),
                "needsAttention": categories.needs_attention(name),
            }
            for name, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        ]
    )


@bp.get("/credential-failures")
def credential_failures() -> Response:
    store = get_store()
    return jsonify(
        credentialFailures=[
            {
                "route": row["route"],
                "remoteAddr": row["remote_addr"],
                "username": row["username"] or None,
                "kind": row["kind"],
                "firstSeen": row["first_seen"],
                "lastSeen": row["last_seen"],
                "count": row["count"],
                "lastCallId": row["last_call_id"],
            }
            for row in store.credential_failures()
        ],
        refusedCalls=[
            {
                "callId": row["call_id"],
                "category": row["category"],
                "route": row["route"],
                "firstSeen": row["first_seen"],
                "lastSeen": row["last_seen"],
                "count": row["count"],
                "cause": row["cause"],
                "from": row["from_number"],
                "to": row["to_number"],
            }
            for row in refused_calls(store, limit=1000)
        ],
    )
