"""Ids, times and the exact callback payloads of reference section 2.2.

Field order follows the spec's schema order; ``tag`` is present only when set (never null),
and fields with no value are left out, as Bandwidth does.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def new_call_id() -> str:
    """``c-`` + 8 hex + ``-`` + a UUID: 47 characters, like Bandwidth's call ids."""
    return f"c-{secrets.token_hex(4)}-{uuid.uuid4()}"


def new_recording_id() -> str:
    return f"r-{secrets.token_hex(4)}-{uuid.uuid4()}"


def new_error_id() -> str:
    return str(uuid.uuid4())


def iso(epoch: float | None) -> str | None:
    """``2019-06-20T15:54:25.435Z`` (UTC, milliseconds)."""
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_duration(seconds: float) -> str:
    """``PT13.67S``: the ISO-8601 duration recordings carry."""
    return f"PT{round(max(0.0, seconds), 3):g}S"


@dataclass
class Leg:
    """One call leg as the callbacks describe it (A-leg, or the B-leg of a Transfer)."""

    call_id: str
    account_id: str
    application_id: str
    from_: str
    to: str
    call_url: str
    enqueued_time: float | None = None
    start_time: float | None = None
    answer_time: float | None = None
    end_time: float | None = None
    tag: str | None = None
    parent_call_id: str | None = None
    transfer_caller_id: str | None = None
    transfer_to: str | None = None
    state: str = "queued"
    direction: str = "outbound"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "account_id": self.account_id,
            "application_id": self.application_id,
            "from_": self.from_,
            "to": self.to,
            "call_url": self.call_url,
            "enqueued_time": self.enqueued_time,
            "start_time": self.start_time,
            "answer_time": self.answer_time,
            "end_time": self.end_time,
            "tag": self.tag,
            "parent_call_id": self.parent_call_id,
            "transfer_caller_id": self.transfer_caller_id,
            "transfer_to": self.transfer_to,
            "state": self.state,
            "direction": self.direction,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Leg:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


# Which optional groups each event carries (section 2.2).
_TRANSFER_EVENTS = frozenset(
    {"gather", "redirect", "transferAnswer", "transferComplete", "transferDisconnect", "dtmf"}
)
_END_TIME_EVENTS = frozenset(
    {"disconnect", "transferDisconnect", "recordComplete", "recordingAvailable"}
)


def event(event_type: str, leg: Leg, **fields: Any) -> dict[str, Any]:
    """The payload of ``event_type`` for ``leg``; ``fields`` adds event-specific keys.

    None values are dropped; ``tag`` comes from the leg and is absent when unset.
    """
    payload: dict[str, Any] = {
        "eventType": event_type,
        "eventTime": iso(time.time()),
        "accountId": leg.account_id,
        "applicationId": leg.application_id,
        "from": leg.from_,
        "to": leg.to,
        "direction": leg.direction,
        "callId": leg.call_id,
        "callUrl": leg.call_url,
    }
    if event_type == "initiate":  # no enqueuedTime, answerTime or tag (the call is new)
        payload["startTime"] = iso(leg.start_time)
        payload.update(fields)
        return {key: value for key, value in payload.items() if value is not None}
    if leg.parent_call_id and (
        event_type in _TRANSFER_EVENTS or event_type.startswith(("record", "transcription"))
    ):
        payload["parentCallId"] = leg.parent_call_id
    payload["enqueuedTime"] = iso(leg.enqueued_time)
    payload["startTime"] = iso(leg.start_time)
    if event_type not in ("recordingAvailable", "transcriptionAvailable"):
        payload["answerTime"] = iso(leg.answer_time)
    if event_type in _END_TIME_EVENTS:
        payload["endTime"] = iso(leg.end_time if leg.end_time is not None else time.time())
    payload.update(fields)
    if leg.tag:
        payload["tag"] = leg.tag
    if leg.parent_call_id and event_type in _TRANSFER_EVENTS:
        payload["transferCallerId"] = leg.transfer_caller_id
        payload["transferTo"] = leg.transfer_to
    return {key: value for key, value in payload.items() if value is not None}
