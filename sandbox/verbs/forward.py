"""Forward: an unanswered inbound call is passed to ``to`` (from ``from``, or the caller's
number); the app loses control of it.

The forwarded leg rings (its callee script decides: busy, no answer within ``callTimeout``,
reject, or answer) and, answered, talks for ``bridgeSeconds``.  Then the call ends, with one
``disconnect`` to the Call status URL carrying how the forwarded leg ended.  Forward sends
no event of its own.  On an answered or outbound call it does nothing (noted).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import bxml
from sandbox.execution import CallEnded, Interrupt
from sandbox.verbs.transfer import end_b_leg, new_b_leg, ring_and_bridge

if TYPE_CHECKING:
    from sandbox.call import Call
    from sandbox.execution import Document
    from sandbox.payloads import Leg


def forward(call: Call, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
    if not call.inbound or leg is not call.leg or leg.answer_time is not None:
        call.note("Forward works only on an unanswered inbound call; skipped")
        return None
    attrs = verb.attrs
    b = new_b_leg(
        call, leg, from_=str(attrs.get("from") or leg.from_), to=str(attrs["to"]), tag=None
    )
    call.program["transfer"] = {"bLeg": b.call_id}  # a takeover ends it like a Transfer's
    call.note(f"Forward: {b.call_id} rings {b.to}; the app no longer controls the call")
    call_timeout = float(attrs.get("callTimeout", 30))  # type: ignore[arg-type]
    try:
        end = ring_and_bridge(
            call, b, call.callee_for(b.to), call_timeout, "Forward", lambda: call.answer("Forward")
        )
    except (CallEnded, Interrupt):
        end_b_leg(call, b, CallEnded("hangup", b.call_id), None)  # the caller hung up
        raise
    end_b_leg(call, b, end, None)
    raise CallEnded(end.cause, call.call_id, end.message)


UNITS = {"Forward": forward}
