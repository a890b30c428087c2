"""Structured call state carried in Bandwidth's ``tag``, signed with the app's secret.

Bandwidth echoes a call's tag on every later callback, so it is the natural place for the
state of a call flow.  Anyone who can reach the callback URL could forge a payload, so the
state is signed (itsdangerous): a tag that fails verification is treated as absent (and
logged), never trusted.  The state is readable by Bandwidth and anyone who sees the tag:
never put a secret or a transfer target in it.

Limits: 4096 characters for Create/Update Call ``tag``; 256 for a verb's ``tag`` attribute
and the ``<Tag>`` verb.
"""

from __future__ import annotations

import logging
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

CALL_TAG_LIMIT = 4096
VERB_TAG_LIMIT = 256
PREFIX = "st1."  # marks our signed state; other tags pass through as raw strings

log = logging.getLogger(__name__)


class TagTooLong(ValueError):
    """The encoded state does not fit where it is going; the message says by how much."""


def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt="bandwidth-tag-state")


def encode_state(state: dict[str, Any], secret: str, *, limit: int = CALL_TAG_LIMIT) -> str:
    """Encode ``state`` (JSON-serialisable) into a signed tag no longer than ``limit``."""
    if not isinstance(state, dict):
        raise TypeError("tag state must be a dict")
    tag = PREFIX + _serializer(secret).dumps(state)
    if len(tag) > limit:
        raise TagTooLong(
            f"encoded tag state is {len(tag)} characters, over the limit of {limit}; "
            "keep less state in the tag (store the rest and keep its id)"
        )
    return tag


def decode_state(tag: str | None, secret: str) -> dict[str, Any]:
    """The verified state in ``tag``; ``{}`` when there is none or it fails verification."""
    if not tag or not tag.startswith(PREFIX):
        return {}
    try:
        state = _serializer(secret).loads(tag[len(PREFIX) :])
    except BadSignature:
        log.warning("ignoring a tag whose signature does not verify (forged or altered)")
        return {}
    except Exception:  # malformed base64/JSON inside a signed-looking tag
        log.warning("ignoring a malformed tag state")
        return {}
    return state if isinstance(state, dict) else {}
