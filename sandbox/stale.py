"""Calls left over from an earlier run: ended, not resumed.

A call whose driver stops (a reload, a restart, a crash) is resumed by the next driver
that finds it: at once after a clean stop or a reload (its lease is released), after
``SANDBOX_LEASE_SECONDS`` after a crash.  That is right for a reload during a live call,
and wrong for a sandbox started again hours later on the same database: its calls would
go on sending callbacks to an app that has long forgotten them.

So a call that no driver has held for more than ``SANDBOX_RESUME_SECONDS`` (counted from
its release or its lease's expiry, else its last save) is no longer claimable; the next
driver that starts (and every driver now and then) ends it: ``disconnected``, cause
``error``, with a message saying why, its transfer legs with it.  Nothing more is sent to
the app, since the call is long over for the caller; the sandbox's page and API show it
ended and the driver logs the ids it ended.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import delete, func, or_, select, update

from sandbox.db import LOG_LIMIT, SandboxDB
from sandbox.tables import calls, inputs

log = logging.getLogger(__name__)

BATCH = 100


def unheld_since() -> Any:
    """When a call was last held by a driver: its lease's end (the release, or the expiry
    of a crashed driver's lease), else its last save (a call never claimed)."""
    return func.coalesce(calls.c.lease_expires, calls.c.updated_at)


def unheld(now: float) -> Any:
    return or_(calls.c.lease_owner.is_(None), calls.c.lease_expires < now)


def end_stale_calls(db: SandboxDB, now: float, resume_seconds: float) -> list[str]:
    """End the A-legs (and their B-legs) no driver has held for ``resume_seconds``; the
    ids of the A-legs this call ended (another driver may end some first)."""
    older_than = now - resume_seconds
    found = (
        select(calls.c.call_id, calls.c.leg, calls.c.log, unheld_since())
        .where(
            calls.c.active == 1,
            calls.c.parent_call_id.is_(None),
            unheld(now),
            unheld_since() < older_than,
        )
        .limit(BATCH)
    )
    ended: list[str] = []
    with db.writing() as conn:
        for call_id, leg_text, log_text, since in conn.execute(found).all():
            message = (
                f"The sandbox did not run this call for {now - float(since):.0f} s (it was "
                f"stopped); it was ended instead of resumed (SANDBOX_RESUME_SECONDS="
                f"{resume_seconds:g}), and nothing more was sent to the app."
            )
            won = conn.execute(
                update(calls)
                .where(
                    calls.c.call_id == call_id,
                    calls.c.active == 1,
                    unheld(now),
                    unheld_since() < older_than,
                )
                .values(_ended(leg_text, log_text, float(since), now, message))
            ).rowcount
            if won != 1:
                continue
            ended.append(call_id)
            legs = select(calls.c.call_id, calls.c.leg, calls.c.log).where(
                calls.c.parent_call_id == call_id, calls.c.active == 1
            )
            for leg_id, leg_leg, leg_log in conn.execute(legs).all():
                conn.execute(
                    update(calls)
                    .where(calls.c.call_id == leg_id)
                    .values(_ended(leg_leg, leg_log, float(since), now, message))
                )
        if ended:
            conn.execute(delete(inputs).where(inputs.c.call_id.in_(ended)))
    if ended:
        log.warning(
            "sandbox: ended %d call(s) left over from an earlier run instead of resuming "
            "them (no driver for over %g s): %s",
            len(ended),
            resume_seconds,
            ", ".join(ended),
        )
    return ended


def _ended(leg_text: str, log_text: str, since: float, now: float, message: str) -> dict[str, Any]:
    leg = json.loads(leg_text) if leg_text else {}
    if isinstance(leg, dict):
        leg["state"] = "disconnected"
        leg.setdefault("end_time", None)
        leg["end_time"] = leg["end_time"] or since
    lines = json.loads(log_text) if log_text else []
    lines.append([now, f"call ended: error ({message})"])
    return {
        "state": "disconnected",
        "active": 0,
        "disconnect_cause": "error",
        "error_message": message,
        "activity": "ended",
        "lease_owner": None,
        "lease_expires": None,
        "updated_at": now,
        "leg": json.dumps(leg, separators=(",", ":")),
        "log": json.dumps(lines[-LOG_LIMIT:], separators=(",", ":")),
    }
