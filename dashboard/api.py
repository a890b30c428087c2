"""The JSON API over the event store, for scripts: HTTP Basic with the dashboard login.

``GET /api/calls/<callId>/events``: the call's stored callbacks in arrival order, each with
its ``eventType`` and payload (and what we answered).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from callbacks.auth import CredentialError, challenge, encode_pairs, verify_basic
from store import get_store

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.before_request
def _require_dashboard_login() -> Response | None:
    cfg = current_app.config
    pairs = encode_pairs([(cfg["DASHBOARD_USERNAME"], cfg["DASHBOARD_PASSWORD"])])
    try:
        verify_basic(request.headers.get("Authorization"), pairs)
    except CredentialError:
        reply = jsonify(error="dashboard credentials required")
        reply.status_code = 401
        reply.headers["WWW-Authenticate"] = challenge("Dashboard")
        return reply
    return None


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


@bp.get("/calls/<call_id>/events")
def call_events(call_id: str) -> Response:
    events = get_store().events_for_call(call_id)
    return jsonify(callId=call_id, events=[_event_json(row) for row in events])
