"""A call flow: a named group of handlers, declared like a Flask Blueprint.

    from bxml import Gather, Response, SpeakSentence
    from callbacks import Flow

    ivr = Flow("ivr", numbers=["+12025550123"])

    @ivr.on("initiate")
    def greet(event):
        return Response(
            ivr.tag({"step": "menu"}),
            Gather(SpeakSentence("Press 1 for sales."), gather_url=ivr.url("gather"),
                   max_digits=1, **ivr.credentials()),
        )

A ``Flow`` only records declarations; an app gets the flow's handlers when the flow is
registered on it (``VOICE_FLOWS`` names the modules, or ``FlowRegistry.register``), so two
apps in one process see only the flows registered on each.  Once a call is routed to a
flow, every later callback of that call (the B-leg of a Transfer and conference events
included) reaches the same flow: the framework keeps the flow's name in the call's signed
tag state (see callbacks.routing).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

import bxml
from callbacks.events import EVENT_TYPES, CallbackEvent, canonical_event_type
from callbacks.helpers import credentials, tag, transfer, url
from callbacks.tags import FLOW_KEY

Handler = Callable[[CallbackEvent], Any]


class FlowError(ValueError):
    """A flow declaration that cannot work; the message names both places of a conflict."""


def place_of(func: Callable[..., Any]) -> str:
    """``module.py:12 (name)``: where a handler is defined, for conflict messages."""
    code = getattr(func, "__code__", None)
    if code is None:
        return repr(func)
    return f"{code.co_filename}:{code.co_firstlineno} ({getattr(func, '__qualname__', '?')})"


def _caller_place(depth: int = 2) -> str:
    frame = sys._getframe(depth)
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _number(flow: str, place: str, number: str) -> str:
    """A declared number in E.164 as Bandwidth sends it (``+1 (202) 555-0123`` ->
    ``+12025550123``), or a SIP URI as written; anything else is a FlowError."""
    import phonenumbers

    text = str(number).strip()
    if text.lower().startswith(("sip:", "sips:")):
        return text
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_possible_number(parsed):
        raise FlowError(
            f"flow {flow!r} ({place}): {number!r} is not a phone number in international "
            "form (+12025550123) or a sip: URI"
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class Flow:
    """A named group of handlers for one kind of call (an IVR, click-to-call, reminders).

    ``numbers``: the numbers (E.164, or SIP URIs) whose inbound calls this flow answers;
    ``application_ids``: Bandwidth application ids whose calls it answers;
    ``default``: it takes the calls no other flow claims (see ``VOICE_DEFAULT_FLOW``).
    """

    def __init__(
        self,
        name: str,
        *,
        numbers: Iterable[str] = (),
        application_ids: Iterable[str] = (),
        default: bool = False,
    ) -> None:
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise FlowError(f"a flow needs a non-empty name without surrounding spaces: {name!r}")
        if isinstance(numbers, str) or isinstance(application_ids, str):
            raise FlowError(f"flow {name!r}: numbers and application_ids are lists of strings")
        self.name = name
        self.place = _caller_place()
        self.numbers = tuple(_number(name, self.place, n) for n in numbers)
        self.application_ids = tuple(a.strip() for a in application_ids)
        self.default = default
        self.handlers: dict[str, Handler] = {}

    def __repr__(self) -> str:
        return f"<Flow {self.name!r}>"

    def on(self, event_type: str) -> Callable[[Handler], Handler]:
        """Register the decorated function for ``event_type`` in this flow.

        A second handler for the same event type is an error naming both functions.
        """
        if event_type not in EVENT_TYPES:
            raise FlowError(
                f"flow {self.name!r}: unknown Bandwidth event type {event_type!r} "
                f"(known: {', '.join(sorted(EVENT_TYPES))})"
            )
        canonical = canonical_event_type(event_type)

        def register(func: Handler) -> Handler:
            earlier = self.handlers.get(canonical)
            if earlier is not None and earlier is not func:
                raise FlowError(
                    f"flow {self.name!r} has two handlers for {canonical!r}: "
                    f"{place_of(earlier)} and {place_of(func)}"
                )
            self.handlers[canonical] = func
            return func

        return register

    def handler_for(self, event_type: str) -> Handler | None:
        return self.handlers.get(event_type)

    # The helpers handlers use, here too so a flow module needs one import.
    @staticmethod
    def url(route: str) -> str:
        """The absolute URL of one of our callback routes, built from PUBLIC_BASE_URL only."""
        return url(route)

    @staticmethod
    def credentials() -> dict[str, str]:
        """``username``/``password`` attributes for verbs whose callbacks come back to us."""
        return credentials()

    def tag(self, state: dict[str, Any]) -> bxml.Tag:
        """A ``<Tag>`` carrying ``state``, signed, for every later callback of the call.

        It names this flow already, so the reply needs no re-signing on its way out."""
        return tag({**state, FLOW_KEY: self.name})

    @staticmethod
    def transfer(number: str, **attributes: Any) -> bxml.Transfer:
        """A ``<Transfer>`` to ``number`` whose callbacks (the agent's leg included) come
        back to us with our credentials."""
        return transfer(number, **attributes)
