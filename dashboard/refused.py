"""What a call page says about a call whose callbacks the app refused (store.refusals).

Such a call may have nothing else stored: its callbacks were refused, its disconnect too.
The refused-call row keeps its numbers, when its callbacks were refused, the last route
refused, whether credentials were sent (and did not match) and what its refused disconnect
said (cause and error message).  The disconnect's message names the route whose refusal
ended the call (a ``callback-error`` "…/callbacks/answer answered HTTP 401"): usually not
the disconnect itself, which only came too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from callbacks.redact import masked_row
from dashboard.messages import Explained, explain
from store.categories import CREDENTIAL_FAILURE, describe, refused_route


@dataclass
class Refusal:
    route: str
    why: str


@dataclass
class RefusedStory:
    category: str
    count: int
    first_seen: float | None
    last_seen: float | None
    from_number: str | None
    to_number: str | None
    cause: str | None
    message: Explained
    refusals: list[Refusal] = field(default_factory=list)
    ended_by: str | None = None


def refused_calls(store: Any, **filters: Any) -> list[dict[str, Any]]:
    """``store.refused_calls(**filters)`` as every page and the API show them: the numbers
    and the message their payloads carried, passwords masked (a SIP URI's)."""
    return [masked_row(row) for row in store.refused_calls(**filters)]


def why(row: dict[str, Any]) -> str:
    """Why the app refused the call's callbacks, for a person."""
    if row.get("category") != CREDENTIAL_FAILURE:
        return describe(str(row.get("category")))
    if row.get("wrong"):
        return "401: the credentials sent do not match CALLBACK_USERNAME/CALLBACK_PASSWORD"
    return (
        "401: sent without credentials (the call was created without the username and "
        "password of CALLBACK_USERNAME/CALLBACK_PASSWORD), never sent again with them"
    )


def story(row: dict[str, Any]) -> RefusedStory:
    """The refused-call row (``refused_call``) as the call page tells it."""
    row = masked_row(row)
    reason = why(row)
    ended_by = refused_route(row.get("cause"), row.get("error_message"))
    routes = [ended_by] if ended_by else []
    if row.get("route") and row["route"] not in routes:
        routes.append(row["route"])
    return RefusedStory(
        category=str(row.get("category")),
        # The refusal that ended the call was not counted when it came: it looked like the
        # first half of a 401 challenge.
        count=max(int(row.get("count") or 0), len(routes)),
        first_seen=row.get("first_seen"),
        last_seen=row.get("last_seen"),
        from_number=row.get("from_number"),
        to_number=row.get("to_number"),
        cause=row.get("cause"),
        message=explain(row.get("error_message")),
        refusals=[Refusal(route, reason) for route in routes],
        ended_by=ended_by,
    )
