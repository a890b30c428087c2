"""Bridge: join this call (A) with another answered call (T, the text of the verb); T's
document is cancelled.  The bridge ends when either leaves (hangs up, or is redirected by
Update Call); exactly one callback follows:

- T left first: ``bridgeComplete`` (A) to ``bridgeCompleteUrl``; its reply runs on A.
  Without ``bridgeCompleteUrl`` A goes on with the verbs after ``<Bridge>``.
- A left first: ``bridgeTargetComplete`` (T) to ``bridgeTargetCompleteUrl``; its reply runs
  on T.  Without ``bridgeTargetCompleteUrl`` T is hung up.

A target that cannot be bridged (unknown: ``unknown``; ended, unanswered, a B-leg or
forwarded: ``rejected``; already bridged: ``busy``) fails at once: ``bridgeComplete`` with
``cause``, ``errorMessage`` and ``errorId`` (its reply runs), or without
``bridgeCompleteUrl`` A goes on.  The two calls may run in different drivers: they tell
each other through inputs (``bridge``, ``unbridged``), and A also watches T's row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bxml
from sandbox.execution import CallEnded, Interrupt, PeerLeft
from sandbox.payloads import new_error_id

if TYPE_CHECKING:
    from sandbox.call import Call
    from sandbox.execution import Document
    from sandbox.payloads import Leg

CHECK_PEER_SECONDS = 1.0  # real seconds between looks at the other call's row
KEPT = (
    "bridgeTargetCompleteUrl",
    "bridgeTargetCompleteMethod",
    "bridgeTargetCompleteFallbackUrl",
    "bridgeTargetCompleteFallbackMethod",
    "username",
    "password",
    "fallbackUsername",
    "fallbackPassword",
)


def _problem(call: Call, target_id: str) -> tuple[str, str] | None:
    """(cause, errorMessage) when ``target_id`` cannot be bridged now."""
    row = call.db.get_call(target_id) if target_id and len(target_id) <= 128 else None
    if row is None or row["account_id"] != call.leg.account_id or target_id == call.call_id:
        return "unknown", f"Call {target_id} was not found"
    if not row["active"] or row["state"] == "disconnected":
        return "rejected", f"Call {target_id} has already ended"
    if row["parent_call_id"] or row["state"] != "answered":
        return "rejected", f"Call {target_id} cannot be bridged (not an answered call)"
    activity = str(row["activity"] or "")
    if activity.startswith("Bridge"):
        return "busy", f"Call {target_id} is already bridged with another call"
    if activity.startswith("Forward"):
        return "rejected", f"Call {target_id} is being forwarded"
    return None


def bridge(call: Call, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
    attrs = verb.attrs
    target_id = (verb.text or "").strip()
    if leg is not call.leg:
        call.note("Bridge on a transfer's B-leg is not simulated; skipped")
        return None
    problem = _problem(call, target_id)
    if problem is not None:
        cause, message = problem
        call.note(f"Bridge to {target_id} failed: {cause} ({message})")
        if "bridgeCompleteUrl" not in attrs:
            return None
        fields = {"cause": cause, "errorMessage": message, "errorId": new_error_id()}
        return call.bxml_callback(
            leg, call.hook(attrs, base, "bridgeComplete"), "bridgeComplete", fields
        )
    call.program["bridge"] = {"peer": target_id}
    call.note(f"Bridge: bridged with {target_id}")
    call.save("Bridge")
    kept = {key: str(attrs[key]) for key in KEPT if key in attrs}
    call.db.add_input(target_id, "bridge", {"peer": call.call_id, "attrs": kept, "base": base})
    stay_bridged(call, target_id)  # returns when the target left first
    if "bridgeCompleteUrl" not in attrs:
        return None
    return call.bxml_callback(leg, call.hook(attrs, base, "bridgeComplete"), "bridgeComplete", {})


def stay_bridged(call: Call, peer: str) -> None:
    """Wait while bridged with ``peer``: return when it leaves (its ``unbridged`` input, or
    its row shows it ended); when this call leaves (CallEnded, Interrupt), tell ``peer``."""
    try:
        while True:
            call.wait_until(call.poll_deadline(CHECK_PEER_SECONDS))
            row = call.db.get_call(peer)
            if row is None or not row["active"]:
                raise PeerLeft(peer)
    except PeerLeft:
        call.program.pop("bridge", None)
        call.note(f"Bridge: {peer} left the bridge")
    except (CallEnded, Interrupt):
        call.program.pop("bridge", None)
        call.db.add_input(peer, "unbridged", {"peer": call.call_id})
        raise


def bridged_target(call: Call, data: dict[str, Any]) -> Document | None:
    """T's side: its document was cancelled by A's Bridge.  Returns the document T goes on
    with (``bridgeTargetComplete``'s reply) or raises how T ends."""
    peer = str(data["peer"])
    attrs, base = data.get("attrs") or {}, str(data.get("base") or "")
    call.program["bridge"] = {"peer": peer}
    call.note(f"Bridge: bridged with {peer} (this call's document was cancelled)")
    call.save("Bridge (target)")
    stay_bridged(call, peer)  # returns when the bridging call left first
    if "bridgeTargetCompleteUrl" not in attrs:
        raise CallEnded("hangup", call.call_id)  # the target is hung up
    return call.bxml_callback(
        call.leg, call.hook(attrs, base, "bridgeTargetComplete"), "bridgeTargetComplete", {}
    )


UNITS = {"Bridge": bridge}
