"""Transfer: ring a B-leg (its callee script decides busy/no-answer/reject/answer), run the
``transferAnswerUrl`` reply on it, bridge for ``bridgeSeconds``, then end it.

Callbacks: ``transferAnswer`` (B-leg, BXML reply), ``transferDisconnect`` (B-leg, when it
ends), ``transferComplete`` (A-leg, BXML reply: the A-leg continues with it).  When the
A-leg ends or is redirected the B-leg ends with it.  When the account is at a limit
(``SANDBOX_CALLS_PER_SECOND``, ``SANDBOX_CONCURRENT_CALLS``) no B-leg is placed:
``transferComplete`` carries ``cause: account-limit`` and the limit's ``errorMessage``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import bxml
from sandbox import callee as callees
from sandbox import heard
from sandbox.delivery import Hook
from sandbox.errors import RateLimited
from sandbox.execution import CallEnded, Interrupt, LeaseLost, Stopped
from sandbox.payloads import Leg, new_call_id, new_error_id

if TYPE_CHECKING:
    from sandbox.call import Call
    from sandbox.execution import Document


def transfer(call: Call, a_leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
    attrs = verb.attrs
    target = verb.children[0]
    t_attrs = target.attrs
    settings = call.settings
    limited = call.db.limit_hit(
        a_leg.account_id,
        time.time(),
        per_second=settings.calls_per_second,
        concurrent=settings.concurrent_calls,
    )
    if limited is not None:
        message = RateLimited.CPS if limited == "per-second" else RateLimited.CONCURRENT
        call.note(f"Transfer to {target.text}: not placed ({message})")
        if "transferCompleteUrl" not in attrs:
            return None
        fields = {
            "transferCallerId": str(attrs.get("transferCallerId") or a_leg.to),
            "transferTo": str(target.text),
            "cause": "account-limit",
            "errorMessage": message,
            "errorId": new_error_id(),
        }
        hook = call.hook(attrs, base, "transferComplete")
        return call.bxml_callback(a_leg, hook, "transferComplete", fields)
    b = new_b_leg(
        call,
        a_leg,
        from_=str(attrs.get("transferCallerId") or a_leg.to),
        to=str(target.text),
        tag=(str(t_attrs["tag"]) or None) if "tag" in t_attrs else a_leg.tag,
    )
    b.transfer_caller_id = b.from_
    b.transfer_to = b.to
    call.program["transfer"] = {"bLeg": b.call_id}
    call.note(f"Transfer: B-leg {b.call_id} rings {b.to}")
    script = call.callee_for(b.to)
    disconnect_hook = None
    if "transferDisconnectUrl" in t_attrs:
        disconnect_hook = call.hook(t_attrs, base, "transferDisconnect")
    try:
        end = _run_b_leg(call, b, target, base, script, float(attrs.get("callTimeout", 30)))  # type: ignore[arg-type]
    except (CallEnded, Interrupt):
        # The A-leg ends or is redirected: the B-leg goes with it.
        end_b_leg(call, b, CallEnded("hangup", b.call_id), disconnect_hook)
        raise
    end_b_leg(call, b, end, disconnect_hook)
    call.current = call.call_id
    fields: dict[str, Any] = {
        "transferCallerId": b.transfer_caller_id,
        "transferTo": b.transfer_to,
        **end.fields(),
    }
    if "transferCompleteUrl" not in attrs:
        return None
    return call.bxml_callback(
        a_leg, call.hook(attrs, base, "transferComplete"), "transferComplete", fields
    )


def _run_b_leg(
    call: Call, b: Leg, target: bxml.Verb, base: str, script: callees.Callee, call_timeout: float
) -> CallEnded:
    """Ring, answer and bridge the B-leg; return how it ended (A-leg ends raise)."""

    def answered() -> None:
        t_attrs = target.attrs
        if "transferAnswerUrl" in t_attrs:
            call.current = b.call_id
            doc = call.bxml_callback(
                b, call.hook(t_attrs, base, "transferAnswer"), "transferAnswer", {}
            )
            call.interpreter.run(b, doc)
            call.current = call.call_id

    return ring_and_bridge(call, b, script, call_timeout, "Transfer", answered)


def ring_and_bridge(
    call: Call,
    b: Leg,
    script: callees.Callee,
    call_timeout: float,
    label: str,
    answered: Callable[[], None],
) -> CallEnded:
    """Ring a second leg (its callee script decides), call ``answered()`` when it picks up,
    bridge it for ``bridgeSeconds``; how it ended (an end of the A-leg raises)."""
    settings = call.settings
    ring = settings.ring_seconds if script.ring_seconds is None else script.ring_seconds
    try:
        if script.answer == "busy":
            return CallEnded("busy", b.call_id)
        if script.answer == "no-answer" or ring > call_timeout:
            call.wait(call_timeout)
            return CallEnded("timeout", b.call_id)
        call.wait(ring)
        if script.answer == "reject":
            return CallEnded("rejected", b.call_id)
        b.answer_time = time.time()
        b.state = "answered"
        call.driver.save_leg(b)
        heard.add(call, b, "answered", f"{b.to} answered")
        answered()
        call.activity = f"{label} (bridged)"
        call.note(f"{label}: bridged with {b.call_id}")
        bridge = settings.bridge_seconds if script.bridge_seconds is None else script.bridge_seconds
        call.wait(bridge)
        call.note(f"{label}: {b.to} hung up")
        return CallEnded("hangup", b.call_id)
    except CallEnded as end:
        if end.call_id != b.call_id:
            raise
        if end.cause == "hangup" and b.answer_time is None:
            return CallEnded("rejected", b.call_id)
        return end
    finally:
        call.current = call.call_id


def new_b_leg(call: Call, a_leg: Leg, *, from_: str, to: str, tag: str | None) -> Leg:
    """A second leg of ``a_leg`` (ringing now), stored for the API and the page."""
    now = time.time()
    b = Leg(
        call_id=new_call_id(),
        account_id=a_leg.account_id,
        application_id=a_leg.application_id,
        from_=from_,
        to=to,
        call_url="",
        enqueued_time=now,
        start_time=now,
        tag=tag,
        parent_call_id=a_leg.call_id,
        state="initiated",
    )
    b.call_url = a_leg.call_url.rsplit("/", 1)[0] + "/" + b.call_id
    call.b_leg = b
    call.driver.add_leg(call, b, dict(call.request, to=b.to, **{"from": b.from_}))
    return b


def end_b_leg(call: Call, b: Leg, end: CallEnded, hook: Hook | None) -> None:
    b.end_time = time.time()
    b.state = "disconnected"
    fields = end.fields()
    heard.add(call, b, "ended", end.cause)
    call.driver.finish_leg(b, fields)
    call.start_gather.pop(b.call_id, None)
    call.b_leg = None
    call.program.pop("transfer", None)
    if hook is not None:
        try:
            call.async_callback(b, hook, "transferDisconnect", **fields)
        except (Stopped, LeaseLost):
            pass


def end_abandoned_transfer(call: Call) -> None:
    """Resumed in the middle of a Transfer whose driver died: that B-leg is gone."""
    b_id = call.program["transfer"].get("bLeg")
    row = call.db.get_call(b_id) if b_id else None
    if row is not None and row["active"]:
        b = Leg.from_dict(row["leg"])
        b.end_time = time.time()
        b.state = "disconnected"
        call.driver.finish_leg(b, {"cause": "hangup"})
        call.note(f"Transfer: B-leg {b_id} ended when its driver stopped")
    call.program.pop("transfer", None)


UNITS = {"Transfer": transfer}
