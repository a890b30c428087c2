"""Payload builders with keyword overrides, and a client that speaks like Bandwidth."""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any
from urllib.parse import urlencode

from tests.conftest import CALLBACK_PASSWORD, CALLBACK_USER

_ids = itertools.count(1)
ABSENT = object()


def call_id() -> str:
    return f"c-95ac8d6e-1a31c52e-b38f-4198-93c1-{next(_ids):012x}"


def _build(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    payload = dict(base)
    for key, value in overrides.items():
        if value is ABSENT:
            payload.pop(key, None)
        else:
            payload[key] = value
    return payload


def call_event(event_type: str, **overrides: Any) -> dict[str, Any]:
    """A call event as Bandwidth's docs show it; ``key=ABSENT`` drops a field."""
    cid = overrides.get("callId")
    if cid is None or cid is ABSENT:
        cid = call_id()
        overrides.setdefault("callId", cid)
    base = {
        "eventType": event_type,
        "eventTime": "2019-06-20T15:54:25.435Z",
        "accountId": "55555555",
        "applicationId": "7fc9698a-b04a-468b-9e8f-91238c0d0086",
        "from": "+12025550100",
        "to": "+12025550123",
        "direction": "outbound",
        "callId": cid,
        "callUrl": f"https://voice.bandwidth.com/api/v2/accounts/55555555/calls/{cid}",
        "startTime": "2019-06-20T15:54:22.234Z",
        "answerTime": "2019-06-20T15:54:25.432Z",
    }
    return _build(base, overrides)


def answer_event(**overrides: Any) -> dict[str, Any]:
    return call_event("answer", **overrides)


def disconnect_event(**overrides: Any) -> dict[str, Any]:
    defaults = {
        "endTime": "2019-06-20T15:55:54.123Z",
        "cause": "busy",
        "errorMessage": "Callee is busy",
        "errorId": "4642074b-7b58-478b-96e4-3a60955c6765",
        "sipResponseCode": 486,
    }
    return call_event("disconnect", **{**defaults, **overrides})


def conference_event(event_type: str, **overrides: Any) -> dict[str, Any]:
    base = {
        "eventType": event_type,
        "eventTime": "2019-06-20T15:54:25.435Z",
        "conferenceId": "conf-fe23a767-a75a5b77-20c5-4cca-b581-cbbf0776eca9",
        "name": "my-conference",
    }
    return _build(base, overrides)


def basic_auth(user: str = CALLBACK_USER, password: str = CALLBACK_PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class Bandwidth:
    """Sends callbacks to the app the way Bandwidth does (POST JSON or GET query)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def post(self, route: str, payload: Any, *, auth: dict[str, str] | None = None, **kwargs: Any):
        headers = basic_auth() if auth is None else auth
        return self.client.post(
            f"/callbacks/{route}",
            data=json.dumps(payload),
            content_type="application/json",
            headers=headers,
            **kwargs,
        )

    def get(self, route: str, payload: dict[str, Any], *, auth: dict[str, str] | None = None):
        headers = basic_auth() if auth is None else auth
        query = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in payload.items()}
        return self.client.get(f"/callbacks/{route}?{urlencode(query)}", headers=headers)
