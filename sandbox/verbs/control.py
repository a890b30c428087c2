"""Tag, Hangup, Redirect, StartGather, StopGather: instant verbs that steer the document.

- Tag sets (or with no text clears) the tag later callbacks carry.
- Hangup ends the call (``disconnect`` with cause ``hangup``).
- Redirect sends ``redirect`` to ``redirectUrl``; its reply replaces the document.
- StartGather sends each digit pressed afterwards as a ``dtmf`` event to ``dtmfUrl``,
  until StopGather.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import bxml
from sandbox.execution import CallEnded

if TYPE_CHECKING:
    from sandbox.call import Call
    from sandbox.execution import Document
    from sandbox.payloads import Leg


def tag(call: Call, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
    leg.tag = (verb.text or "").strip() or None
    call.note(f"Tag: {'cleared' if leg.tag is None else repr(leg.tag)}")
    return None


def hangup(call: Call, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
    raise CallEnded("hangup", leg.call_id)


def redirect(call: Call, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
    return call.bxml_callback(leg, call.hook(verb.attrs, base, "redirect"), "redirect", {})


def start_gather(call: Call, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
    call.start_gather[leg.call_id] = call.hook(verb.attrs, base, "dtmf").__dict__
    call.program["startGather"] = call.start_gather
    call.note("StartGather: each digit pressed is sent as dtmf")
    return None


def stop_gather(call: Call, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
    call.start_gather.pop(leg.call_id, None)
    return None


UNITS = {
    "Tag": tag,
    "Hangup": hangup,
    "Redirect": redirect,
    "StartGather": start_gather,
    "StopGather": stop_gather,
}
