"""listCalls: the account's calls as Get Call State shows them, filtered and paged; and
``summary``, a call as the control API and page show it.

Pages follow ``(created_at, call_id)`` order; the opaque ``pageToken`` is where the last
page ended.  ``startTime`` bounds are compared in whole milliseconds, the precision the API
shows times with.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import Any

from sandbox.catalog import Catalog
from sandbox.errors import ApiError
from sandbox.payloads import Leg, iso
from sandbox.recordings import parse_time


def list_calls(
    catalog: Catalog, account_id: str, args: dict[str, str]
) -> tuple[list[dict[str, Any]], str | None]:
    """listCalls: the account's calls, oldest first, filtered by ``to``, ``from``,
    ``minStartTime``/``maxStartTime`` (both inclusive) and ``disconnectCause``;
    ``pageSize`` (1-10000, default 1000) of them and the next page's token, if any."""
    raw_size = args.get("pageSize") or "1000"
    if not raw_size.isdigit() or not 1 <= int(raw_size) <= 10_000:
        raise ApiError(400, "validation", "Invalid pageSize: an integer from 1 to 10000")
    size = int(raw_size)
    after = decode_page_token(args.get("pageToken"))
    # Compared in whole milliseconds, the precision the API shows startTime with.
    low = _millis(parse_time("minStartTime", args.get("minStartTime")), round)
    high = _millis(parse_time("maxStartTime", args.get("maxStartTime")), round)
    found: list[dict[str, Any]] = []
    while len(found) <= size:
        rows = catalog.calls_after(
            account_id,
            after,
            to=args.get("to") or None,
            from_=args.get("from") or None,
            cause=args.get("disconnectCause") or None,
            limit=500,
        )
        for row in rows:
            after = (row["created_at"], row["call_id"])
            start = _millis(row["leg"].get("start_time"), math.floor)
            if (low is not None or high is not None) and start is None:
                continue
            if (low is None or start >= low) and (high is None or start <= high):
                found.append(row)
                if len(found) > size:
                    break
        if len(rows) < 500:
            break
    more = len(found) > size
    page = found[:size]
    token = encode_page_token(page[-1]["created_at"], page[-1]["call_id"]) if more else None
    return [call_state(row) for row in page], token


def call_state(row: dict[str, Any]) -> dict[str, Any]:
    """A call row as Get Call State answers it (``callState``)."""
    leg = Leg.from_dict(row["leg"])
    state = {
        "applicationId": leg.application_id,
        "accountId": row["account_id"],
        "callId": row["call_id"],
        "parentCallId": row["parent_call_id"],
        "to": leg.to,
        "from": leg.from_,
        "direction": leg.direction,
        "state": row["state"],
        "enqueuedTime": iso(leg.enqueued_time),
        "startTime": iso(leg.start_time),
        "answerTime": iso(leg.answer_time),
        "endTime": iso(leg.end_time) if row["state"] == "disconnected" else None,
        "disconnectCause": row["disconnect_cause"],
        "errorMessage": row["error_message"],
        "errorId": row["error_id"],
        "lastUpdate": iso(row["updated_at"]),
    }
    if not row["parent_call_id"]:
        del state["parentCallId"]
    return state


def _millis(epoch: float | None, to_int: Callable[[float], int]) -> int | None:
    return None if epoch is None else to_int(epoch * 1000)


def encode_page_token(created_at: float, call_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at!r} {call_id}".encode()).decode()


def decode_page_token(token: str | None) -> tuple[float, str] | None:
    if not token:
        return None
    try:
        created_at, call_id = base64.urlsafe_b64decode(token.encode()).decode().split(" ", 1)
        return float(created_at), call_id
    except (ValueError, UnicodeError):
        raise ApiError(400, "validation", "Invalid pageToken") from None


def summary(
    row: dict[str, Any], transcript: list[dict[str, Any]], *, log: bool = True
) -> dict[str, Any]:
    leg = row["leg"]
    return {
        "callId": row["call_id"],
        "parentCallId": row["parent_call_id"],
        "from": row["from_number"],
        "to": row["to_number"],
        "direction": leg.get("direction", "outbound"),
        "state": row["state"],
        "active": bool(row["active"]),
        "activity": row["activity"],
        "tag": leg.get("tag"),
        "disconnectCause": row["disconnect_cause"],
        "errorMessage": row["error_message"],
        "createdAt": iso(row["created_at"]),
        "log": [{"at": iso(at), "text": text} for at, text in row["log"]] if log else [],
        "transcript": transcript,
    }
