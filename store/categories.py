"""Failure categories: why a call needs attention, beyond Bandwidth's disconnect ``cause``.

A call's category is one name.  Our own failures come first, in this order, because they
are the root cause whatever Bandwidth then reported (a crashing handler ends the call with
an ordinary ``hangup`` after the safe document, or with ``callback-error``):

``credential-failure``  callbacks of the call were refused with 401: credentials wrong, or
                        none sent and never sent again (a disconnect ``callback-error``
                        whose message says our URL answered 401)
``rejected-payload``    callbacks of the call were refused as malformed (400/413/415/422)
``handler-error``       a handler raised (or no flow answered the call)
``invalid-reply``       a handler returned BXML that fails the reply check
``spooled``             a callback of the call waited in the spool while the store was down

Otherwise the category is Bandwidth's ``cause`` (``busy``, ``timeout``, ``callback-error``,
``invalid-bxml``, ...; ``unknown`` when missing).  Every category but ``hangup`` needs
attention, and the dashboard's default view shows exactly those.

The category is computed when the disconnect is stored (:func:`call_category`) and kept in
an indexed column, so counting and filtering never scan events.  Each stored callback also
keeps its own failure (:func:`event_category`), which is what a later disconnect reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

CREDENTIAL_FAILURE = "credential-failure"
REJECTED_PAYLOAD = "rejected-payload"
HANDLER_ERROR = "handler-error"
INVALID_REPLY = "invalid-reply"
SPOOLED = "spooled"
NORMAL = "hangup"

# Our own categories, strongest first.
APP_CATEGORIES = (CREDENTIAL_FAILURE, REJECTED_PAYLOAD, HANDLER_ERROR, INVALID_REPLY, SPOOLED)

# Bandwidth's documented disconnect causes; the vocabulary is open, so any other cause is a
# category of its own too.
BANDWIDTH_CAUSES = (
    "hangup",
    "busy",
    "timeout",
    "cancel",
    "rejected",
    "callback-error",
    "invalid-bxml",
    "application-error",
    "account-limit",
    "node-capacity-exceeded",
    "error",
    "unknown",
)

ALL_CATEGORIES = APP_CATEGORIES + BANDWIDTH_CAUSES

# What each category means, for people (the dashboard's counts and filter).
DESCRIPTIONS = {
    CREDENTIAL_FAILURE: "callbacks refused (401): credentials missing or wrong",
    REJECTED_PAYLOAD: "callbacks refused as malformed",
    HANDLER_ERROR: "your handler raised an error",
    INVALID_REPLY: "your handler returned invalid BXML",
    SPOOLED: "stored late: the database was down",
    "hangup": "ended normally",
    "busy": "the callee was busy",
    "timeout": "nobody answered",
    "cancel": "cancelled before it was answered",
    "rejected": "the callee rejected the call",
    "callback-error": "Bandwidth could not get BXML from the app",
    "invalid-bxml": "Bandwidth refused the BXML",
    "application-error": "Bandwidth application error",
    "account-limit": "account limit reached",
    "node-capacity-exceeded": "Bandwidth over capacity",
    "error": "Bandwidth error",
    "unknown": "no cause given",
    # Not a call's category: outbound attempts the Voice API did not accept (dashboard.placements).
    "not-placed": "outbound calls (click-to-call too) the Voice API did not accept",
}

_RANK = {name: rank for rank, name in enumerate(APP_CATEGORIES)}


def strongest(categories: Iterable[str | None]) -> str | None:
    """The strongest of our own categories among ``categories`` (others ignored), or None."""
    found = [c for c in categories if c in _RANK]
    return min(found, key=_RANK.__getitem__) if found else None


def call_category(cause: str | None, flags: Iterable[str | None] = ()) -> str:
    """A call's category: its strongest flag (see the module doc), else its cause."""
    return strongest(flags) or cause or "unknown"


def needs_attention(category: str | None) -> bool:
    return (category or "unknown") != NORMAL


def event_category(
    *, error_detail: str | None, invalid_reply: bool = False, spooled: bool = False
) -> str | None:
    """The failure of one stored callback: a handler error, an invalid reply, spooled, or None."""
    if error_detail:
        return INVALID_REPLY if invalid_reply else HANDLER_ERROR
    return SPOOLED if spooled else None


# "http://host/callbacks/gather answered HTTP 401": the route our app refused, as the
# sender's callback-error message names it (the sandbox's words; Bandwidth's are similar).
# The route name is taken whole (the lookahead): letting ``\S*`` share its letters made a
# long unbroken message quadratic (20,000 letters: 1.9 s on the callback path).
_REFUSED_401 = re.compile(
    r"/callbacks/([A-Za-z-]+)(?![A-Za-z-])\S*\s+(?:answered|returned)\s+(?:HTTP\s+)?401\b"
)


def refused_route(cause: str | None, error_message: str | None) -> str | None:
    """The route whose 401 ended a call (``callback-error``), as its disconnect says, else
    None.  A refusal of wrong credentials is logged when it happens; one of a request sent
    without them is not (it is also the first half of every 401 challenge), so this is how
    a call whose sender never sent them shows up."""
    if cause != "callback-error" or not error_message:
        return None
    found = _REFUSED_401.search(error_message)
    return found.group(1) if found else None


def category_of(row: dict) -> str:
    """The category of a stored disconnect row (``category`` column, else its cause)."""
    return str(row.get("category") or row.get("cause") or "unknown")


def describe(category: str) -> str:
    return DESCRIPTIONS.get(category, category)
