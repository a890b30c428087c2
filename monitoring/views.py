"""``GET /metrics``: Prometheus' scrape endpoint, registered only when METRICS_TOKEN is set.

The scraper sends ``Authorization: Bearer <METRICS_TOKEN>`` (Prometheus:
``authorization: {credentials: ...}`` in the scrape config).  The token is compared in
constant time on bytes; wrong tokens count against the dashboard's per-address limit of
wrong credentials (DASHBOARD_LOGIN_RATE; 429 with ``Retry-After`` once over it).
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request

bp = Blueprint("metrics", __name__)

CHALLENGE = 'Bearer realm="metrics"'


def _token_ok(header: str, token: bytes) -> bool:
    scheme, _, value = header.strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode("utf-8"), token)


def _refused(status: int, message: str) -> Response:
    reply = Response(message + "\n", status, mimetype="text/plain")
    if status == 401:
        reply.headers["WWW-Authenticate"] = CHALLENGE
    return reply


@bp.get("/metrics")
def metrics() -> Response:
    token = str(current_app.config["METRICS_TOKEN"]).encode("utf-8")
    header = request.headers.get("Authorization", "")
    if not header:
        return _refused(401, "a bearer token is required (METRICS_TOKEN)")
    limit = current_app.extensions.get("attempt_limit")
    ok = (
        _token_ok(header, token)
        if limit is None
        else limit("metrics", lambda: _token_ok(header, token))
    )
    if ok is None:
        reply = _refused(429, "too many wrong tokens from your address")
        retry_after = current_app.extensions.get("attempt_retry_after")
        if retry_after is not None:
            reply.headers["Retry-After"] = str(retry_after())
        return reply
    if not ok:
        return _refused(401, "wrong bearer token")
    body, content_type = current_app.extensions["metrics"].exposition(request.headers.get("Accept"))
    reply = Response(body, 200, content_type=content_type)
    reply.headers["Cache-Control"] = "no-store"
    return reply
