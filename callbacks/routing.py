"""Which flow answers a callback, and the one way from a handler to the reply document.

A call belongs to one flow from its first callback to its disconnect:

1. a flow named in the call's signed tag state (``place_call(..., flow="reminders")``
   puts it there; the framework adds it to the first reply of every other call);
2. otherwise the flow that declared the call's number: the called number (``to``) of an
   inbound call, our number (``from``) of an outbound one;
3. otherwise the flow that declared the call's Bandwidth application id;
4. otherwise the default flow: ``VOICE_DEFAULT_FLOW``, a flow declared ``default=True``,
   or, when the app has exactly one flow of its own, that one.

Every reply the framework sends for a flow keeps the flow's name in each tag the reply
sets (``<Tag>`` text, ``tag`` attributes, a tag for each Transfer target, so the B-leg's
``transferAnswer``/``transferDisconnect`` come back to the same flow); the handler's own
state or plain-text tag is kept beside it, never lost.  The name sits under a reserved key
that handlers never see in ``event.state``.
"""

from __future__ import annotations

from typing import NamedTuple

from flask import g

import bxml
from callbacks.events import CONFERENCE_EVENTS, CallbackEvent
from callbacks.flow import Flow, FlowError, Handler
from callbacks.tags import (
    ATTEMPT_KEY,
    FLOW_KEY,
    MAX_AGE_SECONDS,
    RAW_TAG_KEY,
    TagTooLong,
    decode_state,
    split_state,
    with_flow,
)

# Replies to these start a call's story: with no flow or no handler, the caller would hear
# nothing and the call would end unexplained, so they get the safe document and an error.
FIRST_EVENTS = frozenset({"initiate", "answer"})
UNBOUND_TAG_VERBS = frozenset({"Conference", "Bridge"})
LEG_VERBS = frozenset({"PhoneNumber", "SipUri"})


class Reply(NamedTuple):
    """A flow's checked reply: its handler's document, and the <Tag> the framework renders
    before it (None: none)."""

    document: bxml.Response
    lead: bxml.Tag | None = None

    def to_bxml(self) -> str:
        return self.document.to_bxml(lead=self.lead)


class NoFlow(LookupError):
    """No flow answers this callback, or its flow has no handler for a first event."""


def attach_state(
    event: CallbackEvent, secret: str, *, max_age: int | None = MAX_AGE_SECONDS
) -> None:
    """Set ``event.state`` (the handler's verified state), ``event.tagged_flow`` and, for a
    plain-text tag a handler set earlier, ``event.tag`` back to that text.  State bound to
    a call verifies only on that call's callbacks (or its transfer legs'); ``max_age=None``
    reads stored history whatever its age."""
    verified = decode_state(
        event.tag,
        secret,
        call_id=event.call_id,
        parent_call_id=event.parent_call_id,
        max_age=max_age,
    )
    state, reserved = split_state(verified)
    event.state = state
    event.tagged_flow = reserved.get(FLOW_KEY)
    event.attempt = reserved.get(ATTEMPT_KEY)
    if RAW_TAG_KEY in reserved:
        event.tag = reserved[RAW_TAG_KEY]


class FlowRegistry:
    """The flows of one app, by name, number and application id."""

    def __init__(self, secret: str, *, default_name: str | None = None) -> None:
        self.secret = secret
        self.default_name = default_name or None
        self.flows: dict[str, Flow] = {}
        self.builtin: set[str] = set()
        self.by_number: dict[str, Flow] = {}
        self.by_application: dict[str, Flow] = {}

    def __contains__(self, name: object) -> bool:
        return name in self.flows

    def register(self, flow: Flow, *, builtin: bool = False, default: bool = False) -> Flow:
        """Add ``flow``; a second flow with its name, number or application id, or a second
        default, raises FlowError naming both places.  Registering the same flow again is
        a no-op.  ``default=True`` makes it the default flow, as VOICE_DEFAULT_FLOW does."""
        if not isinstance(flow, Flow):
            raise FlowError(f"expected a callbacks.Flow, got {type(flow).__name__}")
        earlier = self.flows.get(flow.name)
        if earlier is flow:
            if default:
                self.default_name = flow.name
            return flow
        if earlier is not None:
            raise FlowError(f"two flows are named {flow.name!r}: {earlier.place} and {flow.place}")
        claims = [(self.by_number, n, n) for n in flow.numbers] + [
            (self.by_application, a, f"application {a}") for a in flow.application_ids
        ]
        for index, key, what in claims:
            claimed = index.get(key)
            if claimed is not None:
                raise FlowError(
                    f"flows {claimed.name!r} ({claimed.place}) and {flow.name!r} "
                    f"({flow.place}) both answer {what}"
                )
        if flow.default:
            other = next((f for f in self.flows.values() if f.default), None)
            if other is not None:
                raise FlowError(
                    f"flows {other.name!r} ({other.place}) and {flow.name!r} ({flow.place}) "
                    "are both declared default=True"
                )
        self.flows[flow.name] = flow
        self.by_number.update(dict.fromkeys(flow.numbers, flow))
        self.by_application.update(dict.fromkeys(flow.application_ids, flow))
        if builtin:
            self.builtin.add(flow.name)
        if default:
            self.default_name = flow.name
        return flow

    def check(self) -> None:
        """Raise FlowError when VOICE_DEFAULT_FLOW names no registered flow."""
        if self.default_name and self.default_name not in self.flows:
            raise FlowError(
                f"VOICE_DEFAULT_FLOW={self.default_name!r} names no flow; "
                f"registered: {', '.join(sorted(self.flows)) or 'none'}"
            )

    @property
    def default(self) -> Flow | None:
        if self.default_name:
            return self.flows.get(self.default_name)
        declared = next((f for f in self.flows.values() if f.default), None)
        if declared is not None:
            return declared
        own = [f for name, f in self.flows.items() if name not in self.builtin]
        return own[0] if len(own) == 1 else None

    # --- routing ---------------------------------------------------------------------

    def route(self, event: CallbackEvent) -> Flow | None:
        """The flow that answers ``event`` (after ``attach_state``); sets ``event.flow``."""
        flow = self.flows.get(event.tagged_flow) if event.tagged_flow else None
        if flow is None and event.event_type not in CONFERENCE_EVENTS:
            number = _our_number(event)
            flow = self.by_number.get(number) if number else None
            if flow is None and event.application_id:
                flow = self.by_application.get(event.application_id)
        if flow is None:
            flow = self.default
        event.flow = flow.name if flow is not None else None
        return flow

    def handler_for(self, event: CallbackEvent) -> Handler | None:
        """The handler of an asynchronous event (None: answered 204 all the same)."""
        flow = self.route(event)
        return flow.handler_for(event.event_type) if flow is not None else None

    def document_for(self, event: CallbackEvent) -> Reply:
        """The checked reply to a BXML event: the flow's handler's document, with the flow
        kept in every tag it sets (and in a first <Tag> when the call's tag does not name
        it yet).  Raises what the handler raises, BxmlError for an invalid reply, TypeError
        for a non-document, NoFlow when nobody answers a first event."""
        flow = self.route(event)
        handler = flow.handler_for(event.event_type) if flow is not None else None
        if handler is None:
            if event.event_type in FIRST_EVENTS:
                raise NoFlow(self._no_handler_message(event, flow))
            return Reply(bxml.Response())  # nothing more to do: Bandwidth goes on (or ends it)
        assert flow is not None
        g.voice_tag_call_id = event.call_id  # what Flow.tag binds the state it signs to
        try:
            document = handler(event)
        finally:
            g.pop("voice_tag_call_id", None)
        if document is None:
            document = bxml.Response()
        if not isinstance(document, bxml.Response):
            raise TypeError(
                f"{event.event_type} handler must return a bxml.Response, "
                f"got {type(document).__name__}"
            )
        try:
            bxml.check_reply(document, event.event_type)
            if len(document):
                return self._keep_flow(document, event, flow.name)
        except bxml.BxmlError as error:
            error.document = document  # type: ignore[attr-defined]  # for the dashboard
            raise
        return Reply(document)

    def _keep_flow(self, document: bxml.Response, event: CallbackEvent, name: str) -> Reply:
        secret = self.secret
        call_id, parent = event.call_id, event.parent_call_id
        raw_tag = event.raw.get("tag")
        incoming = raw_tag if isinstance(raw_tag, str) else None
        current = incoming  # the call's tag so far, as the reply runs

        def sign(tag: str | None, bind: str | None) -> str:
            return with_flow(
                tag, name, secret, bind_to=bind, call_id=call_id, parent_call_id=parent
            )

        def keep(tag: str | None, verb: str) -> str:
            nonlocal current
            # State is bound to the call it is set on (a Transfer target's tag to this call,
            # its parent), except where Bandwidth echoes it on other calls' events: a
            # Conference's tag on every member's (and on conferenceCreated, which names no
            # call), a Bridge's on the target's.
            bind = None if verb in UNBOUND_TAG_VERBS else call_id
            if tag is not None:
                kept = sign(tag, bind)
            else:
                # A Conference without a tag would echo the call's own; a Transfer target
                # gets the caller's state too, so the agent's leg knows the call.  State too
                # big for a verb's 256 characters leaves only the flow there.
                try:
                    kept = sign(current, bind)
                except TagTooLong:
                    kept = sign(None, bind)
            if verb not in LEG_VERBS:  # a Transfer target's tag is the other call's
                current = kept
            return kept

        if bxml.holds_tags(document):
            # The tags are rewritten in place, and a handler may return one document for
            # every call (a module constant): each call's state goes into a copy of its own.
            document = document.copy()
        bxml.rewrite_tags(document, keep)
        if (
            event.tagged_flow != name
            and event.event_type not in CONFERENCE_EVENTS
            and not isinstance(document[0], bxml.Tag)  # the handler's own, now with the flow
        ):
            # The call's tag does not name the flow yet: set it before anything else runs.
            # When its state cannot fit a <Tag> (Create Call allows 4096 characters, a verb
            # 256), it is left alone: routing by number or default finds the flow again.
            try:
                lead = bxml.Tag(sign(incoming, call_id))
            except TagTooLong:
                return Reply(document)
            # Rendered first, not inserted: the handler's document (perhaps one for every
            # call) stays as it is, and no copy of it is made.
            return Reply(document, lead)
        return Reply(document)

    def _no_handler_message(self, event: CallbackEvent, flow: Flow | None) -> str:
        if flow is not None:
            return (
                f"flow {flow.name!r} has no {event.event_type!r} handler "
                f"(add @{flow.name}.on({event.event_type!r}) or route the call elsewhere)"
            )
        return (
            f"no flow answers this {event.event_type} (number {_our_number(event)}, application "
            f"{event.application_id}): declare the number on a Flow(numbers=[...]) or set "
            f"VOICE_DEFAULT_FLOW; flows: {', '.join(sorted(self.flows)) or 'none'}"
        )


def _our_number(event: CallbackEvent) -> str | None:
    """The number of ours the call is on: the called one inbound, the calling one outbound."""
    return event.to if _inbound(event) else event.from_


def _inbound(event: CallbackEvent) -> bool:
    if event.direction:
        return event.direction == "inbound"
    return event.event_type == "initiate"
