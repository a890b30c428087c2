"""``GET /healthz``: for load balancers; 200 when the store answers, 503 when it does not.

Public (no credentials) and says nothing but the state, so it leaks nothing.  A spool
waiting to be replayed is reported: the app still acknowledges callbacks then.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from .core import Store

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    from . import get_store

    store: Store = get_store()
    healthy = store.health()
    # The spool, or a batch of it whose replay failed (it waits beside it for the next try).
    reply = jsonify(status="ok" if healthy else "store unavailable", spooled=store.spool.pending())
    reply.status_code = 200 if healthy else 503
    reply.headers["Cache-Control"] = "no-store"
    return reply
