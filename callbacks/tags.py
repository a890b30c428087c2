"""Structured call state carried in Bandwidth's ``tag``, signed with the app's secret.

Bandwidth echoes a call's tag on every later callback, so it is the natural place for the
state of a call flow.  Anyone who can reach the callback URL could forge a payload, so the
state is signed (itsdangerous, with a salt of its own so no other token signed with the same
secret passes as state): a tag that fails verification is treated as absent (and logged),
never trusted.  The state is readable by Bandwidth and anyone who sees the tag: never put a
secret or a transfer target in it.

Scope and lifetime:
- Every state carries its signing time and is refused after ``MAX_AGE_SECONDS`` (48 h:
  longer than any call or conference, which Bandwidth ends after 24 h).
- State issued with ``call_id`` is bound to that call: the call id is part of the signing
  salt (so it costs no tag characters), and the state verifies only on callbacks whose
  ``callId`` or ``parentCallId`` is that id.  ``parentCallId`` lets a ``<Transfer>``'s B-leg
  events, which have a callId of their own, carry the A-leg's state.
- State issued without ``call_id`` is valid on any call until it expires.  Use it where the
  call id is not known yet (Create Call) or where events name other calls: a
  ``<Conference>`` tag is echoed on every conference event, whose ``callId`` is the member's.

Limits: 4096 characters for Create/Update Call ``tag``; 256 for a verb's ``tag`` attribute
and the ``<Tag>`` verb.
"""

from __future__ import annotations

import logging
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

CALL_TAG_LIMIT = 4096
VERB_TAG_LIMIT = 256
PREFIX = "st2."  # marks our signed state; other tags pass through as raw strings
CALL_PREFIX = "st2c."  # signed state bound to one call
MAX_AGE_SECONDS = 48 * 3600
SALT = "bandwidth-tag-state"

log = logging.getLogger(__name__)


class TagTooLong(ValueError):
    """The encoded state does not fit where it is going; the message says by how much."""


def _serializer(secret: str, call_id: str | None = None) -> URLSafeTimedSerializer:
    salt = SALT if call_id is None else f"{SALT}:call:{call_id}"
    return URLSafeTimedSerializer(secret, salt=salt)


def encode_state(
    state: dict[str, Any],
    secret: str,
    *,
    limit: int = CALL_TAG_LIMIT,
    call_id: str | None = None,
) -> str:
    """Encode ``state`` (JSON-serialisable) into a signed tag no longer than ``limit``.

    With ``call_id`` the state verifies only on that call's callbacks (and its transfer
    legs'); see the module's notes for when to leave it out.
    """
    if not isinstance(state, dict):
        raise TypeError("tag state must be a dict")
    prefix = PREFIX if call_id is None else CALL_PREFIX
    tag = prefix + _serializer(secret, call_id).dumps(state)
    if len(tag) > limit:
        raise TagTooLong(
            f"encoded tag state is {len(tag)} characters, over the limit of {limit}; "
            "keep less state in the tag (store the rest and keep its id)"
        )
    return tag


def decode_state(
    tag: str | None,
    secret: str,
    *,
    call_id: str | None = None,
    parent_call_id: str | None = None,
    max_age: int | None = MAX_AGE_SECONDS,
) -> dict[str, Any]:
    """The verified state in ``tag``; ``{}`` when there is none or it fails verification.

    ``call_id``/``parent_call_id`` are the callback's ``callId`` and ``parentCallId``: state
    bound to a call verifies only when one of them is that call.  ``max_age=None`` skips
    the age check (views of stored history show what a call carried at the time).
    """
    if not tag:
        return {}
    if tag.startswith(CALL_PREFIX):
        candidates = [cid for cid in (call_id, parent_call_id) if cid]
        body = tag[len(CALL_PREFIX) :]
    elif tag.startswith(PREFIX):
        candidates = [None]
        body = tag[len(PREFIX) :]
    else:
        return {}
    state: Any
    for candidate in candidates:
        try:
            state = _serializer(secret, candidate).loads(body, max_age=max_age)
        except SignatureExpired:
            log.warning("ignoring a tag state older than %d seconds", max_age)
            return {}
        except BadSignature:
            continue
        except Exception:  # malformed base64/JSON inside a signed-looking tag
            log.warning("ignoring a malformed tag state")
            return {}
        break
    else:
        log.warning(
            "ignoring a tag whose signature does not verify for this call (forged, altered "
            "or issued for another call)"
        )
        return {}
    return state if isinstance(state, dict) else {}
