"""Outbound calls the Voice API did not accept (click-to-call's among them), for operators.

The visitor of a click-to-call page whose call could not be placed is told "We cannot place
calls right now"; nobody was called, so no callback and no disconnect ever reaches the
dashboard.  What the store keeps of each outbound attempt (``store.outbound``: its outcome
and error) gives the operator a banner on every page while placements keep failing, and a
``not-placed`` count beside the failure categories (the dashboard's and ``/api/categories``).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from callbacks.redact import masked_row
from callbacks.tags import FLOW_KEY, decode_state
from store import StoreUnavailable

NOT_PLACED = "not-placed"
# Failures this recent keep the banner up on every page.
ALARM_SECONDS = 60 * 60

_STATUS = re.compile(r"^([1-5]\d\d)\b\s*(?:[\w-]+:)?\s*(.*)$", re.S)


@dataclass
class PlacementAlarm:
    count: int
    last_at: float
    reason: str
    detail: str | None
    flow: str | None

    @property
    def who(self) -> str:
        """Who could not place them, as the banner's sentence begins."""
        return "Click-to-call" if self.flow == "click-to-call" else "The app"


def alarm(store: Any, secret: str, now: float | None = None) -> PlacementAlarm | None:
    """The banner's facts: placements not accepted in the last hour, the latest's reason."""
    since = (time.time() if now is None else now) - ALARM_SECONDS
    try:
        last = store.last_not_placed(since)
        if last is None:
            return None
        last = masked_row(last)  # its error may quote the request (a SIP URI's password)
        count = store.not_placed(since=since)
    except StoreUnavailable:
        return None
    request = last.get("request") if isinstance(last.get("request"), dict) else {}
    tag = request.get("tag")
    state = decode_state(tag, secret, max_age=None) if isinstance(tag, str) else {}
    flow = state.get(FLOW_KEY)
    error = last.get("error") or None
    return PlacementAlarm(
        count=max(count, 1),
        last_at=float(last["created_at"]),
        reason=reason(str(last.get("outcome")), error),
        detail=error,
        flow=flow if isinstance(flow, str) else None,
    )


def reason(outcome: str, error: str | None) -> str:
    """Why the Voice API did not accept a call, for a person (``error`` is the client's
    message: "could not connect: ..." or "<status> <type>: <description>")."""
    text = (error or "").strip()
    lower = text.lower()
    if outcome == "rate_limited":
        return "the Voice API refused them as over the account's call rate (429)"
    if outcome == "unavailable":
        return "the Voice API was over capacity (503); Bandwidth asks to try again later"
    if lower.startswith("could not connect"):
        where = _host(text)
        if "refused" in lower:
            why = "the connection was refused"
        elif "name or service not known" in lower or "nodename nor servname" in lower:
            why = "its host name does not resolve"
        elif "ssl" in lower or "certificate" in lower:
            why = "the TLS handshake failed"
        elif "timed out" in lower or "timeout" in lower:
            why = "the connection timed out"
        else:
            why = "the connection failed"
        return f"the Voice API{where} could not be reached: {why} (check BW_VOICE_API_URL)"
    status = _STATUS.match(text)
    if status:
        code, said = int(status.group(1)), status.group(2).strip()
        if code in (401, 403):
            return (
                f"the Voice API refused the account's credentials ({code}): check BW_USERNAME, "
                "BW_PASSWORD and BW_ACCOUNT_ID"
            )
        return f"the Voice API refused the request ({code}){': ' + said if said else ''}"
    return f"the Voice API did not accept them{': ' + text if text else ''}"


def _host(text: str) -> str:
    """ " at host:port" when the message names where it tried, else ""."""
    found = re.search(r"host='([^']*)', port=(\d+)", text)
    if found:
        return f" at {found.group(1)}:{found.group(2)}"
    url = re.search(r"https?://[^\s'\")]+", text)
    if url:
        netloc = urlsplit(url.group(0)).netloc
        return f" at {netloc}" if netloc else ""
    return ""
