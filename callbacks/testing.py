"""Unit-testing call flows without a server.

    from callbacks.testing import example_payload, make_event, reply

    def test_menu_asks_for_a_department(app):
        xml = reply(app, "initiate", to="+12025550123")
        assert "Press 1 for sales" in xml

    def test_sales_is_transferred(app):
        xml = reply(app, "gather", digits="1", state={"step": "department"}, flow="my-ivr")
        assert "<Transfer" in xml

``example_payload(event_type, **overrides)`` is a documented example of that callback (the
fields Bandwidth sends, with example values); keyword overrides are snake_case (``from_``,
``call_id``) or camelCase names, and None removes a field.  ``state={...}`` signs that tag
state into ``tag`` as the app would, and ``flow="name"`` names the flow the call belongs to
(as the framework's own tag would).  ``make_event`` gives the typed ``CallbackEvent``;
``reply`` routes the callback to its flow exactly as the callback route does, runs the
handler without side effects (no call placed, nothing stored) and returns the checked BXML
(None for an asynchronous event).  A handler's exception or an invalid reply is raised.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from callbacks.dryrun import answer
from callbacks.events import (
    CONFERENCE_EVENTS,
    EVENT_FIELDS,
    CallbackEvent,
    camel_case,
    canonical_event_type,
    load_event,
)
from callbacks.routing import attach_state
from callbacks.tags import FLOW_KEY, encode_state

ACCOUNT_ID = "9900000"
APPLICATION_ID = "04e88489-df02-4e34-a0ee-27a91849555f"
CALL_ID = "c-15ac29a2-1331029c-2cb0-4a07-b215-b22865662d85"
TIME = "2026-12-02T13:45:16.128Z"

# An example value for each field; fields not listed here are left out.
_VALUES: dict[str, Any] = {
    "eventTime": TIME,
    "accountId": ACCOUNT_ID,
    "applicationId": APPLICATION_ID,
    "from": "+12025550199",
    "to": "+12025550123",
    "direction": "outbound",
    "callId": CALL_ID,
    "callUrl": f"https://voice.bandwidth.com/api/v2/accounts/{ACCOUNT_ID}/calls/{CALL_ID}",
    "startTime": "2026-12-02T13:45:10.000Z",
    "answerTime": "2026-12-02T13:45:12.000Z",
    "endTime": "2026-12-02T13:46:02.000Z",
    "cause": "hangup",
    "digits": "1",
    "terminatingDigit": "#",
    "digit": "1",
    "parentCallId": "c-2a913f94-7fa91773-a426-4118-b6cb-79ab8d6bb0bd",
    "recordingId": "r-fbe05094-9fd2afe9-bf5b-4c68-820a-41a01c1c5833",
    "mediaUrl": f"https://voice.bandwidth.com/api/v2/accounts/{ACCOUNT_ID}/calls/{CALL_ID}"
    "/recordings/r-fbe05094-9fd2afe9-bf5b-4c68-820a-41a01c1c5833/media",
    "duration": "PT13.67S",
    "fileFormat": "wav",
    "channels": 1,
    "status": "complete",
    "transcription": {"text": "Hello, I would like to talk to sales.", "confidence": 0.92},
    "machineDetectionResult": {"value": "human", "duration": "PT1.5S"},
    "conferenceId": "conf-fe23a767-a75a5b77-20c5-4cca-b581-cbbf0776eca9",
    "name": "my-conference",
    "transferTo": "+12025550142",
    "transferCallerId": "+12025550199",
    "referCallStatus": "success",
    "referSipResponseCode": 202,
    "notifySipResponseCode": 200,
    "streamId": "s-8d5b8e1e-3a7b-4c2f-9f8f-1d2e3c4b5a69",
    "transcriptionId": "t-8d5b8e1e-3a7b-4c2f-9f8f-1d2e3c4b5a69",
    "sipResponseCode": 200,
}
_LEG_EVENTS = frozenset({"transferAnswer", "transferDisconnect"})


def example_payload(
    event_type: str,
    *,
    state: dict[str, Any] | None = None,
    flow: str | None = None,
    secret: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A documented example payload of ``event_type`` with ``overrides`` applied.

    ``state``/``flow`` need ``secret`` (the app's SECRET_KEY; ``reply`` passes it).
    """
    canonical = canonical_event_type(event_type)
    if canonical not in EVENT_FIELDS:
        raise ValueError(f"unknown Bandwidth event type {event_type!r}")
    payload: dict[str, Any] = {"eventType": event_type}
    for wire in EVENT_FIELDS[canonical]:
        if wire in _VALUES and wire != "eventType":
            payload[wire] = _VALUES[wire]
    if canonical == "initiate":
        payload["direction"] = "inbound"
        payload.pop("answerTime", None)
    if canonical in _LEG_EVENTS:
        payload["callId"] = "c-d45a41e5-bcb12581-b18e-4bdc-9874-6e3d1e2c4b8a"
    if canonical != "disconnect" and canonical not in ("transferComplete",):
        payload.pop("cause", None)
    if canonical in CONFERENCE_EVENTS and "callId" not in EVENT_FIELDS[canonical]:
        payload.pop("callId", None)
    if state is not None or flow is not None:
        if not secret:
            raise ValueError("state= and flow= need secret= (the app's SECRET_KEY)")
        signed = dict(state or {})
        if flow is not None:
            signed[FLOW_KEY] = flow
        payload["tag"] = encode_state(signed, secret)
    for name, value in overrides.items():
        wire = name if name in payload or name in _VALUES else camel_case(name)
        if value is None:
            payload.pop(wire, None)
        else:
            payload[wire] = value
    return payload


def make_event(event_type: str, *, secret: str | None = None, **overrides: Any) -> CallbackEvent:
    """The typed event of ``example_payload(event_type, **overrides)``, with its state."""
    event = load_event(example_payload(event_type, secret=secret, **overrides))
    event.route = event.event_type
    if secret:
        attach_state(event, secret)
    return event


def reply(app: Flask, event_type: str, **overrides: Any) -> str | None:
    """The checked BXML ``app``'s flows answer to this callback (None if asynchronous).

    Routed as the callback route routes it; run without side effects (a write to the store
    or a Voice API request raises ``callbacks.dryrun.DryRunRefused``).  Raises the handler's
    exception, or ``bxml.BxmlError`` for a reply that breaks the callback's rules.
    """
    event = make_event(event_type, secret=app.config["SECRET_KEY"], **overrides)
    return answer(app, event, [])
