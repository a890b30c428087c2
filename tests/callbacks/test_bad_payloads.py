"""Malformed callbacks: refused with a 4xx naming the problem, kept in the rejected log, never stored as events."""

from __future__ import annotations

import json

import pytest

from tests.callbacks.conftest import post_raw, rejected
from tests.callbacks.helpers import (
    ABSENT,
    disconnect_event,
)

# --- bad input (reliability.md B1-B10, B19) --------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"{not json", "application/json", 400, b"malformed JSON"),
        (b"", "application/json", 400, b"empty body"),
        (json.dumps(disconnect_event()).encode(), "text/plain", 415, b"Content-Type"),
        (
            b"eventType=disconnect&callId=c-1",
            "application/x-www-form-urlencoded",
            415,
            b"Content-Type",
        ),
        (b"[" * 7000 + b"]" * 7000, "application/json", 400, b"nested too deeply"),
        (
            b'[{"eventType": "disconnect"}]',
            "application/json",
            400,
            b"expected a JSON object, got list",
        ),
        (b'"disconnect"', "application/json", 400, b"got str"),
        (b"42", "application/json", 400, b"got int"),
        (b"null", "application/json", 400, b"got NoneType"),
        (
            b'{"eventType": "disconnect", "callId": "c-\xff"}',
            "application/json",
            400,
            b"not valid UTF-8",
        ),
        (
            b'{"eventType": "disconnect", "callId": "c-1", "x": NaN}',
            "application/json",
            400,
            b"NaN",
        ),
        (
            b'{"eventType": "disconnect", "callId": "c-1", "x": ' + b"9" * 5000 + b"}",
            "application/json",
            400,
            b"malformed JSON",
        ),
        (b'{"eventType": "disconnect", "callId": "c-\\u0000"}', "application/json", 400, b"NUL"),
        (
            b'{"eventType": "disconnect", "callId": "c-\\ud800"}',
            "application/json",
            400,
            b"surrogate",
        ),
        (
            b'{"eventType": "disconnect", "callId": "c-1", "tag": "\\ude00\\ud83d"}',
            "application/json",
            400,
            b"surrogate",
        ),
        (
            b'{"eventType": "disconnect", "callId": "c-1", "x": {"\\udbff": 1}}',
            "application/json",
            400,
            b"surrogate",
        ),
        (
            b'{"eventType": "disconnect", "callId": "c-1", "x": [1, 1e999]}',
            "application/json",
            400,
            b"number 1e999 is out of range",
        ),
        (
            b'{"eventType": "disconnect", "callId": "c-1", "x": -1E400}',
            "application/json",
            400,
            b"out of range",
        ),
        (
            json.dumps(disconnect_event(endTime="2016-12-31T12:59:60Z")).encode(),
            "application/json",
            422,
            b"endTime",
        ),
        (json.dumps(disconnect_event(callId=ABSENT)).encode(), "application/json", 422, b"callId"),
        (
            json.dumps(disconnect_event(eventType=ABSENT)).encode(),
            "application/json",
            422,
            b"eventType",
        ),
        (
            json.dumps(disconnect_event(eventType="party")).encode(),
            "application/json",
            422,
            b"Unknown event type",
        ),
        (json.dumps(disconnect_event(callId=42)).encode(), "application/json", 422, b"callId"),
        (
            json.dumps(disconnect_event(sipResponseCode="x")).encode(),
            "application/json",
            422,
            b"sipResponseCode",
        ),
        (
            json.dumps(disconnect_event(endTime="yesterday")).encode(),
            "application/json",
            422,
            b"endTime",
        ),
    ],
    ids=lambda v: v if isinstance(v, int) else None,
)
def test_bad_input_gets_a_clear_4xx_and_is_only_logged(
    app, client, body, content_type, status, message
):
    reply = post_raw(client, body, content_type)
    assert reply.status_code == status
    assert message in reply.data
    [logged] = rejected(app)
    assert logged["status"] == status
    assert logged["route"] == "disconnect"


def test_body_over_the_limit_is_413(app, client):
    body = json.dumps(disconnect_event(errorMessage="x" * (64 * 1024))).encode()
    reply = post_raw(client, body)
    assert reply.status_code == 413
    assert rejected(app)[0]["status"] == 413


def test_bom_is_tolerated(app, client):
    payload = disconnect_event()
    reply = post_raw(client, b"\xef\xbb\xbf" + json.dumps(payload).encode())
    assert reply.status_code == 204
