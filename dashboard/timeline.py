"""One call's story from the store: a summary, the other legs, the create-call request, then
every callback in order (drawn as a sequence diagram too), with its reply pretty-printed
and coloured, and signed tag state shown as the state it verifies to, never as the token.

For a disconnect with cause ``invalid-bxml`` the timeline says what our own validator finds
in the last BXML we answered before it (``bxml.parse`` then ``bxml.check_reply`` for the
callback it answered): Bandwidth says only that the BXML was invalid, not why.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from flask import url_for
from markupsafe import Markup

import bxml
from callbacks.redact import masked, masked_row
from callbacks.tags import (
    CALL_PREFIX,
    FLOW_KEY,
    PREFIX,
    RAW_TAG_KEY,
    decode_state,
    readable_tags,
    signed_tokens,
    split_state,
)
from calls.outbound import SECRET_FIELDS
from dashboard import bxml_view, legs, recordings, sequence
from dashboard.legs import Legs
from dashboard.recordings import Recording
from dashboard.summary import ConferenceSummary, Summary, summarize, summarize_conference


@dataclass
class Finding:
    """What the validator says about the reply an ``invalid-bxml`` disconnect refers to."""

    reply_event_id: int | None
    reply_event_type: str | None
    message: str
    line: int | None = None
    valid: bool = False


@dataclass
class TagView:
    """What a callback's tag says: ``kind`` is "state" (verified signed state: the
    handler's own keys and the framework's flow), "text" (a plain tag) or "unverified"."""

    kind: str
    state: dict[str, Any] = field(default_factory=dict)
    flow: str | None = None
    text: str | None = None


@dataclass
class Entry:
    row: dict[str, Any]
    payload_json: str
    state: dict[str, Any]
    replayable: bool
    tag: TagView | None = None
    reply_html: Markup = field(default_factory=Markup)
    finding: Finding | None = None


@dataclass
class Timeline:
    call_id: str
    outbound: dict[str, Any] | None
    outbound_request_json: str | None
    entries: list[Entry] = field(default_factory=list)
    summary: Summary = field(default_factory=Summary)
    legs: Legs = field(default_factory=Legs)
    diagram: sequence.Diagram | None = None
    recordings: list[Recording] = field(default_factory=list)
    # The conferences this call was in, each with a page of all its events; on such a page
    # (kind "Conference") the calls that were its members.
    conference_ids: list[str] = field(default_factory=list)
    member_call_ids: list[str] = field(default_factory=list)
    kind: str = "Call"
    origin: float | None = None  # when the whole call began: the base of every offset shown
    conference: ConferenceSummary | None = None  # a conference's page: its header


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


def tag_view(tag: str | None, state: dict[str, Any]) -> TagView | None:
    """A callback's tag as the page shows it (``state`` is what it verified to)."""
    if not tag:
        return None
    if not tag.startswith((PREFIX, CALL_PREFIX)):
        return TagView("text", text=tag)
    if not state:
        return TagView("unverified")
    own, reserved = split_state(state)
    return TagView("state", state=own, flow=reserved.get(FLOW_KEY), text=reserved.get(RAW_TAG_KEY))


def with_readable_tag(payload: Any, state: dict[str, Any]) -> Any:
    """A payload or request whose tag verified, with that tag shown as the state it carries."""
    if isinstance(payload, dict) and state:
        return {**payload, "tag": {"signed state, verified": state}}
    return payload


def build(
    store: Any, call_id: str, secret: str, heard: Callable[[str], Sequence[float]] = lambda _: ()
) -> Timeline:
    """One call's story; ``heard(call_id)``: the other times a leg's page shows (what its
    caller heard, in the sandbox), so that the base every offset counts from is not after
    any of them."""
    outbound = store.outbound_for_call(call_id)
    outbound = masked_row(outbound) if outbound is not None else None  # its `to` may be SIP
    request_json = None
    if outbound is not None:
        request = outbound.get("request")
        if isinstance(request, dict):
            request = {k: v for k, v in request.items() if k not in SECRET_FIELDS}
            state = decode_state(request.get("tag"), secret, max_age=None)
            request = with_readable_tag(request, state)
        request_json = pretty(masked(request))
    # Shown, never stored back: every password a handler wrote is masked (callbacks.redact).
    rows = [masked_row(row) for row in store.events_for_call(call_id)]
    timeline = Timeline(call_id, outbound, request_json)
    states = []  # every verified state, the tags' then our replies': where the flow is named
    timeline.conference_ids = list(
        dict.fromkeys(row["conference_id"] for row in rows if row.get("conference_id"))
    )
    for index, row in enumerate(rows):
        ids = {"call_id": row.get("call_id"), "parent_call_id": row.get("parent_call_id")}
        readable = partial(readable_tags, secret=secret, **ids)
        # max_age=None: what the call carried at the time
        state = decode_state(row.get("tag"), secret, max_age=None, **ids)
        states.append(state)
        for token in signed_tokens(row.get("reply_body")):
            states.append(decode_state(token, secret, max_age=None, **ids))
        entry = Entry(
            row=row,
            payload_json=pretty(with_readable_tag(row.get("payload"), state)),
            state=state,
            replayable=replayable(row),
            tag=tag_view(row.get("tag"), state),
            reply_html=bxml_view.highlight(bxml_view.pretty(row.get("reply_body"), readable)),
        )
        if row.get("event_type") == "disconnect" and row.get("cause") == "invalid-bxml":
            entry.finding = invalid_bxml_finding(rows[:index])
        timeline.entries.append(entry)
    timeline.legs = legs.find(store, call_id, rows)
    timeline.legs.transfer_events = [masked_row(row) for row in timeline.legs.transfer_events]
    # An agent leg's failures are its caller's call's too, as in the list (store.inserts).
    timeline.summary = summarize(rows, states, outbound, timeline.legs.transfer_events)
    timeline.origin = call_origin(store, call_id, rows, outbound, timeline.legs, heard)
    timeline.diagram = sequence.build(
        rows,
        outbound,
        timeline.summary.flow or "App",
        agent_rows=timeline.legs.transfer_events,
        page_of=lambda leg: url_for("dashboard.call", call_id=leg),
        origin=timeline.origin,
    )
    timeline.recordings = recordings.of_call(rows)
    return timeline


def call_origin(
    store: Any,
    call_id: str,
    rows: list[dict[str, Any]],
    outbound: dict[str, Any] | None,
    found: Legs,
    heard: Callable[[str], Sequence[float]],
) -> float | None:
    """When the whole call began: an agent leg's times count from its caller's start (as
    the caller's page finds it), so one moment has one offset on every leg's page (the
    diagram and the transcript)."""
    times = [*heard(call_id), sequence.origin_of(rows + found.transfer_events, outbound)]
    parent = found.transferred_from
    if parent:
        parent_rows = store.events_for_call(parent) + store.events_for_parent_call(parent)
        times += [*heard(parent), sequence.origin_of(parent_rows, store.outbound_for_call(parent))]
    known = [t for t in times if t is not None]
    return min(known) if known else None


def build_conference(store: Any, conference_id: str, secret: str) -> Timeline:
    """Every stored event of one conference (its own and its members' joins and exits)."""
    rows = [masked_row(row) for row in store.events_for_conference(conference_id)]
    timeline = Timeline(conference_id, None, None, kind="Conference")
    timeline.member_call_ids = list(
        dict.fromkeys(row["call_id"] for row in rows if row.get("call_id"))
    )
    timeline.recordings = recordings.of_call(rows)  # conferenceRecordingAvailable
    timeline.conference = summarize_conference(conference_id, rows)
    for row in rows:
        state = decode_state(row.get("tag"), secret, max_age=None)
        # Replay works on a call's page; here the events are only shown.
        timeline.entries.append(
            Entry(
                row,
                pretty(with_readable_tag(row.get("payload"), state)),
                state,
                replayable=False,
                tag=tag_view(row.get("tag"), state),
                reply_html=bxml_view.highlight(bxml_view.pretty(row.get("reply_body"))),
            )
        )
    return timeline
