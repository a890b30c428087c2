"""Requests a callback route must refuse however they are sent: a GET over the body limit,
and HEAD (a safe method: it must never store an event)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from tests.callbacks.helpers import Bandwidth, answer_event, basic_auth, disconnect_event
from tests.callbacks.test_routes import events, rejected

LIMIT = 64 * 1024  # MAX_CONTENT_LENGTH's default


def test_get_callback_over_the_body_limit_is_413_like_a_post(app, client):
    payload = disconnect_event(errorMessage="x" * LIMIT)
    reply = Bandwidth(client).get("disconnect", payload)
    assert reply.status_code == 413
    assert b"MAX_CONTENT_LENGTH" in reply.data
    assert events(app, payload["callId"]) == []
    [logged] = rejected(app)
    assert (logged["status"], logged["method"]) == (413, "GET")


def test_get_callback_just_under_the_body_limit_is_events(app, client):
    payload = disconnect_event(errorMessage="")
    query = urlencode(payload)
    payload["errorMessage"] = "x" * (LIMIT - len(query))
    assert len(urlencode(payload)) == LIMIT
    reply = Bandwidth(client).get("disconnect", payload)
    assert reply.status_code == 204, reply.data
    assert len(events(app, payload["callId"])) == 1


@pytest.mark.parametrize("with_body", [True, False])
def test_head_never_stores_an_event(app, client, with_body):
    payload = answer_event()
    reply = client.open(
        f"/callbacks/answer?{urlencode(payload)}",
        method="HEAD",
        data=json.dumps(payload) if with_body else None,
        content_type="application/json",
        headers=basic_auth(),
    )
    assert reply.status_code == 405
    assert set(reply.headers["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    assert events(app, payload["callId"]) == []
