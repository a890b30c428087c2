"""The header of a call's page: who called whom, when, for how long, and how it ended.

Everything comes from the stored callbacks (and the create-call request when we placed
the call): the numbers and direction from the first event that has them, the times from
Bandwidth's own ``startTime``/``answerTime``/``endTime`` (ISO 8601; the time we received a
callback only when Bandwidth's is missing), the flow from the verified tag state, and the
end from the ``disconnect`` (or, for a transfer's agent leg, ``transferDisconnect``).

``category`` is the call's failure category (store.categories) when it is not just the
cause; the header shows it first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from callbacks.tags import FLOW_KEY
from store.categories import call_category

ENDING_EVENTS = ("disconnect", "transferDisconnect")


@dataclass
class Summary:
    from_number: str | None = None
    to_number: str | None = None
    direction: str | None = None
    flow: str | None = None
    start: float | None = None
    answer: float | None = None
    end: float | None = None
    cause: str | None = None
    category: str | None = None
    error_message: str | None = None
    ended: bool = False

    @property
    def duration(self) -> float | None:
        """Seconds from the start (ringing) to the end."""
        return span(self.start, self.end)

    @property
    def talk_time(self) -> float | None:
        """Seconds from the answer to the end."""
        return span(self.answer, self.end)

    @property
    def outcome(self) -> str | None:
        """What the header calls the end: the category when one is known, else the cause."""
        return self.category or self.cause


def span(start: float | None, end: float | None) -> float | None:
    """Seconds from ``start`` to ``end`` (never negative), None when either is unknown."""
    if start is None or end is None:
        return None
    return max(0.0, end - start)


def epoch(value: Any) -> float | None:
    """Bandwidth's ISO 8601 time (``2026-01-02T03:04:05.678Z``) as epoch seconds."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None  # a time without a zone says nothing reliable
    return moment.timestamp()


def _first(rows: list[dict[str, Any]], key: str) -> Any:
    return next((row[key] for row in rows if row.get(key)), None)


def _payload_time(rows: list[dict[str, Any]], key: str) -> float | None:
    for row in rows:
        payload = row.get("payload")
        if isinstance(payload, dict):
            found = epoch(payload.get(key))
            if found is not None:
                return found
    return None


def summarize(
    rows: list[dict[str, Any]],
    states: list[dict[str, Any]],
    outbound: dict[str, Any] | None,
    agent_rows: Sequence[dict[str, Any]] = (),
) -> Summary:
    """The header of one call from its rows (``events_for_call``), the verified tag states
    they carried or set, in order, its outbound attempt (``outbound_for_call``) if any, and
    the callbacks of its transfer's agent legs."""
    request = (outbound or {}).get("request")
    request = request if isinstance(request, dict) else {}
    summary = Summary(
        from_number=_first(rows, "from_number") or request.get("from"),
        to_number=_first(rows, "to_number") or request.get("to"),
        direction=_first(rows, "direction") or ("outbound" if outbound else None),
        # The stored flow column when no tag names it (a crashed handler's safe document
        # sets no tag): the list shows that column too.
        flow=next((s[FLOW_KEY] for s in states if isinstance(s.get(FLOW_KEY), str)), None)
        or _first(rows, "flow"),
    )
    summary.start = _payload_time(rows, "startTime")
    if summary.start is None:
        summary.start = (outbound or {}).get("created_at") or (
            rows[0]["received_at"] if rows else None
        )
    summary.answer = _payload_time(rows, "answerTime")
    ending = next((row for row in reversed(rows) if row.get("event_type") in ENDING_EVENTS), None)
    if ending is not None:
        summary.ended = True
        summary.cause = ending.get("cause")
        # The call's category as the store gives it (our own failures first, then the
        # cause), from the failures its callbacks kept: a crashed handler's call that
        # Bandwidth ended with a plain hangup reads "handler-error".
        flags = [row.get("category") for row in [*rows, *agent_rows]]
        category = call_category(summary.cause or "unknown", flags)
        summary.category = category if category != summary.cause else None
        summary.error_message = ending.get("error_message")
        payload = ending.get("payload")
        found = epoch(payload.get("endTime")) if isinstance(payload, dict) else None
        summary.end = found if found is not None else ending.get("received_at")
    return summary


@dataclass
class Member:
    call_id: str
    from_number: str | None = None
    to_number: str | None = None
    joined: float | None = None
    left: float | None = None


@dataclass
class ConferenceSummary:
    conference_id: str
    name: str | None = None
    created: float | None = None
    ended: float | None = None
    members: list[Member] = field(default_factory=list)

    @property
    def duration(self) -> float | None:
        return span(self.created, self.ended)

    @property
    def state(self) -> str:
        """``completed`` once its ``conferenceCompleted`` is stored, else ``active``."""
        return "completed" if self.ended is not None else "active"


def _when(row: dict[str, Any]) -> float | None:
    """Bandwidth's ``eventTime`` of a callback, else the time we received it."""
    payload = row.get("payload")
    found = epoch(payload.get("eventTime")) if isinstance(payload, dict) else None
    return found if found is not None else row.get("received_at")


def summarize_conference(conference_id: str, rows: list[dict[str, Any]]) -> ConferenceSummary:
    """The header of a conference from its rows (``events_for_conference``, in order): its
    name, when it was created and completed, and each member's join and exit."""
    summary = ConferenceSummary(conference_id)
    members: dict[str, Member] = {}
    for row in rows:
        payload = row.get("payload") if isinstance(row.get("payload"), dict) else {}
        name = payload.get("name")
        if summary.name is None and isinstance(name, str) and name:
            summary.name = name
        kind = row.get("event_type")
        if kind == "conferenceCreated" and summary.created is None:
            summary.created = _when(row)
        elif kind == "conferenceCompleted":
            summary.ended = _when(row)
        call_id = row.get("call_id")
        if kind in ("conferenceMemberJoin", "conferenceMemberExit") and call_id:
            member = members.setdefault(call_id, Member(call_id))
            member.from_number = member.from_number or row.get("from_number")
            member.to_number = member.to_number or row.get("to_number")
            if kind == "conferenceMemberJoin" and member.joined is None:  # first join
                member.joined = _when(row)
            elif kind == "conferenceMemberExit":
                member.left = _when(row)
    if summary.created is None and rows:
        summary.created = _when(rows[0])  # conferenceCreated not stored: its first event
    summary.members = list(members.values())
    return summary
