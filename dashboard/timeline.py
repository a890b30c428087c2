"""One call's story from the store: the create-call request, then every callback in order.

For a disconnect with cause ``invalid-bxml`` the timeline says what our own validator finds
in the last BXML we answered before it (``bxml.parse`` then ``bxml.check_reply`` for the
callback it answered): Bandwidth says only that the BXML was invalid, not why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import bxml
from callbacks.tags import decode_state
from calls.outbound import SECRET_FIELDS


@dataclass
class Finding:
    """What the validator says about the reply an ``invalid-bxml`` disconnect refers to."""

    reply_event_id: int | None
    reply_event_type: str | None
    message: str
    line: int | None = None
    valid: bool = False


@dataclass
class Entry:
    row: dict[str, Any]
    payload_json: str
    state: dict[str, Any]
    replayable: bool
    finding: Finding | None = None


@dataclass
class Timeline:
    call_id: str
    outbound: dict[str, Any] | None
    outbound_request_json: str | None
    entries: list[Entry] = field(default_factory=list)
    # The legs of the same call: the call that transferred this one (its parent), and the
    # calls this one's <Transfer> created (the agents' legs), each with its own page.
    parent_call_id: str | None = None
    child_call_ids: list[str] = field(default_factory=list)
    # The conferences this call was in, each with a page of all its events; on such a page
    # (kind "Conference") the calls that were its members.
    conference_ids: list[str] = field(default_factory=list)
    member_call_ids: list[str] = field(default_factory=list)
    kind: str = "Call"


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def replayable(row: dict[str, Any]) -> bool:
    """A stored callback whose reply Bandwidth runs (so "what would we answer now" means something)."""
    event_type = row.get("event_type")
    try:
        return bool(event_type) and bxml.reply_expected(str(event_type))
    except bxml.BxmlError:
        return False


def check_stored_reply(body: str, event_type: str) -> Finding:
    """Run the validator on one stored reply."""
    try:
        bxml.check_reply(bxml.parse(body), event_type)
    except bxml.BxmlError as exc:
        return Finding(None, event_type, str(exc), getattr(exc, "line", None))
    return Finding(
        None,
        event_type,
        "Our validator finds no problem in this reply; Bandwidth refused it for a reason "
        "the validator does not check (e.g. a URL it could not use).",
        valid=True,
    )


def invalid_bxml_finding(previous: list[dict[str, Any]]) -> Finding:
    """The finding for an ``invalid-bxml`` disconnect, given the callbacks before it."""
    for row in reversed(previous):
        body = row.get("reply_body")
        if body and body.strip():
            finding = check_stored_reply(body, str(row.get("event_type")))
            finding.reply_event_id = row["id"]
            return finding
    return Finding(None, None, "No stored BXML reply precedes this disconnect.")


def build(store: Any, call_id: str, secret: str) -> Timeline:
    outbound = store.outbound_for_call(call_id)
    request_json = None
    if outbound is not None:
        request = outbound.get("request")
        if isinstance(request, dict):
            request = {k: v for k, v in request.items() if k not in SECRET_FIELDS}
        request_json = pretty(request)
    rows = store.events_for_call(call_id)
    timeline = Timeline(call_id, outbound, request_json)
    timeline.parent_call_id = next(
        (row["parent_call_id"] for row in rows if row.get("parent_call_id")), None
    )
    legs = store.events_for_parent_call(call_id)
    timeline.child_call_ids = list(
        dict.fromkeys(row["call_id"] for row in legs if row.get("call_id"))
    )
    timeline.conference_ids = list(
        dict.fromkeys(row["conference_id"] for row in rows if row.get("conference_id"))
    )
    for index, row in enumerate(rows):
        entry = Entry(
            row=row,
            payload_json=pretty(row.get("payload")),
            state=decode_state(
                row.get("tag"),
                secret,
                call_id=row.get("call_id"),
                parent_call_id=row.get("parent_call_id"),
                max_age=None,  # what the call carried at the time
            ),
            replayable=replayable(row),
        )
        if row.get("event_type") == "disconnect" and row.get("cause") == "invalid-bxml":
            entry.finding = invalid_bxml_finding(rows[:index])
        timeline.entries.append(entry)
    return timeline


def build_conference(store: Any, conference_id: str, secret: str) -> Timeline:
    """Every stored event of one conference (its own and its members' joins and exits)."""
    rows = store.events_for_conference(conference_id)
    timeline = Timeline(conference_id, None, None, kind="Conference")
    timeline.member_call_ids = list(
        dict.fromkeys(row["call_id"] for row in rows if row.get("call_id"))
    )
    for row in rows:
        state = decode_state(row.get("tag"), secret, max_age=None)
        # Replay works on a call's page; here the events are only shown.
        timeline.entries.append(Entry(row, pretty(row.get("payload")), state, replayable=False))
    return timeline
