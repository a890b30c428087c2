"""The JSON API over the event store: HTTP Basic with the dashboard login (for scripts), or
the dashboard's login session (for the dashboard's own auto-refresh).  GET only.

``GET /api/calls/<callId>/events``: the call's stored callbacks in arrival order, each with
its ``eventType`` and payload (and what we answered).

``GET /api/disconnects``: disconnects newest first, with the dashboard's filters as query
parameters (see ``dashboard.filters``; ``limit`` up to 500).  The answer is
``{"disconnects": [...], "nextBeforeId": id|null, "next": url|null}``; follow ``next`` for
older rows.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from callbacks.auth import challenge
from dashboard.auth import attempts_retry_after, check_basic, logged_in
from dashboard.filters import DisconnectFilter, FilterError, disconnect_json
from store import StoreUnavailable, get_store

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


def _event_json(row: dict[str, Any]) -> dict[str, Any]:
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
        filters = DisconnectFilter.from_args(request.args)
    except FilterError as exc:
        return jsonify(error=str(exc)), 400
    rows, older = filters.page(get_store())
    return jsonify(
        disconnects=[disconnect_json(row) for row in rows],
        nextBeforeId=older,
        next=url_for(".disconnects", **filters.query_args(before_id=older)) if older else None,
    )
