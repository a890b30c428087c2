"""Refer: a SIP REFER of an inbound SIP call (one whose ``to`` is a ``sip:`` URI) to its one
``SipUri``.

The REFER is accepted (``202``); the target's callee script then decides the NOTIFY after
it rings: ``200`` when it answers (success: the call leaves Bandwidth and ends with cause
``hangup``), ``486`` busy, ``603`` reject, ``408`` no answer within 30 s (failure: the call
goes on).  ``referComplete`` goes to ``referCompleteUrl`` with ``referCallStatus``,
``referSipResponseCode`` and ``notifySipResponseCode``; on failure its BXML reply runs, on
success the reply is ignored.  On any other call Refer does nothing (noted).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import bxml
from sandbox.execution import CallEnded

if TYPE_CHECKING:
    from sandbox.call import Call
    from sandbox.execution import Document
    from sandbox.payloads import Leg

NOTIFY_TIMEOUT = 30.0
NOTIFY_CODES = {"busy": 486, "reject": 603, "no-answer": 408}


def refer(call: Call, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
    if not call.inbound or leg is not call.leg or not leg.to.startswith("sip:"):
        call.note("Refer works only on an inbound SIP call; skipped")
        return None
    target = str(verb.children[0].text or "").strip()
    script = call.callee_for(target)
    ring = call.settings.ring_seconds if script.ring_seconds is None else script.ring_seconds
    if script.answer == "no-answer" or ring > NOTIFY_TIMEOUT:
        call.wait(NOTIFY_TIMEOUT)
        notify = NOTIFY_CODES["no-answer"]
    elif script.answer in NOTIFY_CODES:
        notify = NOTIFY_CODES[script.answer]
    else:
        call.wait(ring)
        notify = 200
    success = notify == 200
    call.note(f"Refer to {target}: NOTIFY {notify} ({'success' if success else 'failure'})")
    fields = {
        "referCallStatus": "success" if success else "failure",
        "referSipResponseCode": 202,
        "notifySipResponseCode": notify,
    }
    attrs = verb.attrs
    if "referCompleteUrl" not in attrs:
        if success:
            raise CallEnded("hangup", leg.call_id)
        return None
    hook = call.hook(attrs, base, "referComplete")
    if success:
        call.async_callback(leg, hook, "referComplete", **fields)  # the reply is ignored
        raise CallEnded("hangup", leg.call_id)
    return call.bxml_callback(leg, hook, "referComplete", fields)


UNITS = {"Refer": refer}
