"""The other calls a call is connected to, each way, so every leg's page links to the rest.

- **Transfers**: an agent's leg (B) carries ``parentCallId`` = the caller's leg (A); A's
  page finds its B legs through the ``parent_call_id`` index.
- **Bridges**: ``<Bridge>T</Bridge>`` in one of A's replies names the target T; T's page
  finds A among the replies stored during T's lifetime (until now while T is up) that
  name T.
- **Conferences**: member events (``conferenceMemberJoin``/``Exit``) carry the conference's
  id and the member's ``callId``; a call's page lists the members of every conference its
  events name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bxml.errors import BxmlError
from bxml.safe_xml import parse_document
from dashboard.summary import ENDING_EVENTS

# How far around a call's first and last callback a <Bridge> naming it is looked for: the
# reply that bridges arrives while the target is up, so a few seconds cover clock order.
BRIDGE_SLACK_SECONDS = 5.0


@dataclass
class Conference:
    conference_id: str
    name: str | None
    members: list[str] = field(default_factory=list)


@dataclass
class Legs:
    transferred_from: str | None = None
    transferred_to: list[str] = field(default_factory=list)
    bridged_to: list[str] = field(default_factory=list)
    bridged_from: list[str] = field(default_factory=list)
    conferences: list[Conference] = field(default_factory=list)
    # The callbacks of the agent legs (drawn in the caller's sequence diagram).
    transfer_events: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def __bool__(self) -> bool:
        return bool(
            self.transferred_from
            or self.transferred_to
            or self.bridged_to
            or self.bridged_from
            or self.conferences
        )


def _unique(values: list[Any], exclude: str) -> list[str]:
    return [str(v) for v in dict.fromkeys(values) if v and v != exclude]


def bridge_targets(reply: str | None) -> list[str]:
    """The call ids ``<Bridge>`` verbs of one stored reply name."""
    if not reply or "Bridge" not in reply:
        return []
    try:
        root = parse_document(reply)
    except BxmlError:
        return []
    return [(verb.text or "").strip() for verb in root.iter("Bridge")]


def find(store: Any, call_id: str, rows: list[dict[str, Any]]) -> Legs:
    """The legs of ``call_id``, whose stored callbacks are ``rows``."""
    legs = Legs()
    legs.transferred_from = next(
        (row["parent_call_id"] for row in rows if row.get("parent_call_id")), None
    )
    children = store.events_for_parent_call(call_id)
    legs.transfer_events = children
    legs.transferred_to = _unique([row.get("call_id") for row in children], call_id)
    legs.bridged_to = _unique(
        [target for row in rows for target in bridge_targets(row.get("reply_body"))], call_id
    )
    if rows:
        since = rows[0]["received_at"] - BRIDGE_SLACK_SECONDS
        until = rows[-1]["received_at"] + BRIDGE_SLACK_SECONDS
        if not any(row.get("event_type") in ENDING_EVENTS for row in rows):
            until = max(until, time.time())  # still up: a bridge may have come in since
        naming = store.replies_naming(call_id, since, until)
        legs.bridged_from = _unique(
            [
                row.get("call_id")
                for row in naming
                if call_id in bridge_targets(row.get("reply_body"))
            ],
            call_id,
        )
    conferences: dict[str, Conference] = {}
    for row in rows:
        conference_id = row.get("conference_id")
        if conference_id and conference_id not in conferences:
            payload = row.get("payload") if isinstance(row.get("payload"), dict) else {}
            conferences[conference_id] = Conference(conference_id, payload.get("name"))
    for conference in conferences.values():
        members = store.events_for_conference(conference.conference_id)
        conference.members = _unique([row.get("call_id") for row in members], call_id)
        if conference.name is None:
            conference.name = next(
                (
                    row["payload"].get("name")
                    for row in members
                    if isinstance(row.get("payload"), dict) and row["payload"].get("name")
                ),
                None,
            )
    legs.conferences = list(conferences.values())
    return legs
