"""What went wrong with a callback, in one word: the category metrics and alert rules count.

``callback_category(status, error_kind, spooled)`` is the one place that decides; the
callback route only reports what it knows (the status it answered, the kind of error its
handler had, whether the event was spooled).  Disconnects are counted by their ``cause``
too, so a rule can name either (``handler-error>5/10m``, ``callback-error>3/5m``).
"""

from __future__ import annotations

# The dashboard's categories (the store keeps each call's), and Bandwidth's causes.
from store.categories import (
    BANDWIDTH_CAUSES,
    CREDENTIAL_FAILURE,
    HANDLER_ERROR,
    INVALID_REPLY,
    REJECTED_PAYLOAD,
    SPOOLED,
)

# A callback that went well.
OK = "ok"
# Callback outcomes the dashboard has no call category for.
UNAVAILABLE = "unavailable"  # 503: neither the database nor the spool could keep it
UNKNOWN_ROUTE = "unknown-route"  # 404: a callback URL that is not one of ours
SERVER_ERROR = "server-error"  # any other 5xx: a fault of this app, not of a handler
# Not a failure: a 401 to a request without credentials, which Bandwidth may send first.
CHALLENGE = "challenge"

CALLBACK_FAILURES = (
    HANDLER_ERROR,
    INVALID_REPLY,
    CREDENTIAL_FAILURE,
    REJECTED_PAYLOAD,
    SPOOLED,
    UNAVAILABLE,
    UNKNOWN_ROUTE,
    SERVER_ERROR,
)

# The vocabulary of causes is open ("other values can appear"), so a metric label keeps the
# documented ones and counts any other cause as "other".
CAUSES = BANDWIDTH_CAUSES
OTHER_CAUSE = "other"

# Everything an alert rule may count.
ALERT_CATEGORIES = (*CALLBACK_FAILURES, *CAUSES)


def callback_category(
    status: int, error_kind: str | None, spooled: bool, *, credentials_missing: bool = False
) -> str:
    """The category of one callback from what its route knows: the status answered, the
    kind of handler error (``handler-error``, ``invalid-reply`` or None), whether the
    event went to the spool, and for a 401 whether credentials were sent at all."""
    if status == 401:
        # Bandwidth may try without credentials first and expects the 401 challenge.
        return CHALLENGE if credentials_missing else CREDENTIAL_FAILURE
    if status == 404:
        return UNKNOWN_ROUTE
    if 400 <= status < 500:  # 400/413/414/415/422, and 405 for HEAD
        return REJECTED_PAYLOAD
    if error_kind:
        return error_kind
    if status == 503:
        return UNAVAILABLE
    if status >= 500:
        return SERVER_ERROR
    if spooled:
        return SPOOLED
    return OK


def error_kind(exc: BaseException) -> str:
    """``invalid-reply`` for a document that failed BXML checks (or was not a document),
    ``handler-error`` for anything else a handler raised."""
    from bxml.errors import BxmlError

    if isinstance(exc, BxmlError) or getattr(exc, "document", None) is not None:
        return INVALID_REPLY
    if isinstance(exc, TypeError) and "must return a bxml.Response" in str(exc):
        return INVALID_REPLY  # FlowRegistry.document_for: the handler returned a non-document
    return HANDLER_ERROR


def cause_label(cause: object) -> str:
    """A disconnect cause as a metric label: documented causes as they are, others 'other'."""
    return cause if isinstance(cause, str) and cause in CAUSES else OTHER_CAUSE
