"""Errors of the Voice API client: one hierarchy, split by what a caller must do next.

Modelled on requests' exceptions (one root, multiple inheritance where a failure is two
things at once)::

    VoiceApiError                        status, type, description, id, call_may_exist
    ├── CallRejected                     4xx: Bandwidth refused the request; nothing happened
    │   ├── AuthenticationFailed         401, 403
    │   ├── CallNotFound                 404
    │   ├── CallConflict                 409 (the call cannot be modified in its state)
    │   └── RateLimited                  429 (also a TemporaryFailure); retry_after
    ├── TemporaryFailure                 nothing happened; the same request may work later
    │   ├── RateLimited
    │   ├── ServiceUnavailable           503 "at capacity"; retry_after
    │   └── ConnectionFailed             never reached Bandwidth (refused, DNS, connect timeout)
    └── OutcomeUnknown                   read timeout, dropped connection, 500/502/504 after
                                         the body was sent: the call may exist

``call_may_exist`` is the one bit that decides whether retrying could place a second call.
For an update it means "the update may have been applied".  Taking a 503 as "not created"
follows Bandwidth's description of it (at capacity, try again); it is not confirmed.
"""

from __future__ import annotations

import json
from typing import Any

import requests

__all__ = [
    "AuthenticationFailed",
    "CallConflict",
    "CallNotFound",
    "CallRejected",
    "ConnectionFailed",
    "OutcomeUnknown",
    "RateLimited",
    "ServiceUnavailable",
    "TemporaryFailure",
    "VoiceApiError",
    "error_from_response",
    "parse_error_body",
]

MAX_DESCRIPTION = 300


class VoiceApiError(Exception):
    """Root of every error the Voice API client raises (validation aside: that is
    :class:`marshmallow.ValidationError`, raised before any request).

    :ivar status: the HTTP status, or ``None`` when no response arrived.
    :ivar type: Bandwidth's error ``type`` (``validation``, ``error``, ...), if given.
    :ivar description: Bandwidth's ``description``, or a short description of the failure.
    :ivar id: Bandwidth's error ``id``, if given.
    :ivar retry_after: seconds from a ``Retry-After`` header, if any.
    :ivar response: the :class:`requests.Response`, if any.
    """

    #: Whether the request may have taken effect (for create_call: a call may exist).
    call_may_exist: bool = True

    def __init__(
        self,
        description: str,
        *,
        status: int | None = None,
        type: str | None = None,
        id: str | None = None,
        retry_after: float | None = None,
        response: requests.Response | None = None,
    ) -> None:
        self.description = description
        self.status = status
        self.type = type
        self.id = id
        self.retry_after = retry_after
        self.response = response
        super().__init__(self._message())

    def _message(self) -> str:
        parts = [str(self.status)] if self.status is not None else []
        if self.type:
            parts.append(f"{self.type}:")
        parts.append(self.description)
        if self.retry_after is not None:
            parts.append(f"(retry after {self.retry_after:g} s)")
        return " ".join(parts)


class CallRejected(VoiceApiError):
    """Bandwidth answered with a 4xx: the request was refused and had no effect."""

    call_may_exist = False


class AuthenticationFailed(CallRejected):
    """401 or 403: wrong API credentials, or no access to the Voice API."""


class CallNotFound(CallRejected):
    """404: unknown or no longer active call id."""


class CallConflict(CallRejected):
    """409: the call cannot be modified in its current state (ended, or not yet answered)."""


class TemporaryFailure(VoiceApiError):
    """Nothing happened, and the same request may succeed later."""

    call_may_exist = False


class RateLimited(CallRejected, TemporaryFailure):
    """429: over the account's call-creation rate or concurrent-call limit."""


class ServiceUnavailable(TemporaryFailure):
    """503: Bandwidth is at capacity; taken as "not created" (Bandwidth says try again)."""


class ConnectionFailed(TemporaryFailure):
    """The request never reached Bandwidth: DNS, refused connection or connect timeout."""


class OutcomeUnknown(VoiceApiError):
    """The request was sent but no usable answer came back (read timeout, dropped
    connection, 500/502/504, unexpected status): the call may exist.  Do not resend a
    create; reconcile (e.g. by listing calls) instead."""

    call_may_exist = True


_BY_STATUS: dict[int, type[VoiceApiError]] = {
    401: AuthenticationFailed,
    403: AuthenticationFailed,
    404: CallNotFound,
    409: CallConflict,
    429: RateLimited,
    503: ServiceUnavailable,
}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def parse_error_body(response: requests.Response) -> tuple[str | None, str, str | None]:
    """``(type, description, id)`` from Bandwidth's ``{type, description, id}`` JSON body.

    Tolerates any body: for non-JSON text the description is the (shortened) text, and for
    an empty body it is the HTTP reason phrase.
    """
    text = response.text.strip() if response.content else ""
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    if isinstance(body, dict) and ("description" in body or "type" in body):
        description = _text(body.get("description")) or response.reason or "error"
        return _text(body.get("type")), description[:MAX_DESCRIPTION], _text(body.get("id"))
    description = " ".join(text.split())[:MAX_DESCRIPTION] or response.reason or "error"
    return None, description, None


def error_from_response(
    response: requests.Response, *, retry_after: float | None = None
) -> VoiceApiError:
    """The exception for a non-2xx (or otherwise unusable) response.

    4xx are rejections; 503 is unavailable; anything else (500, 502, 504, other 5xx, 1xx,
    3xx) leaves the outcome unknown.
    """
    status = response.status_code
    kind, description, error_id = parse_error_body(response)
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = CallRejected if 400 <= status < 500 else OutcomeUnknown
    return cls(
        description,
        status=status,
        type=kind,
        id=error_id,
        retry_after=retry_after,
        response=response,
    )
