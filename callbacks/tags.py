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

import functools
import json
import logging
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from itsdangerous.encoding import base64_decode

CALL_TAG_LIMIT = 4096
VERB_TAG_LIMIT = 256
PREFIX = "st1."  # marks our signed state; other tags pass through as raw strings

log = logging.getLogger(__name__)


class TagTooLong(ValueError):
    """The encoded state does not fit where it is going; the message says by how much."""


@functools.lru_cache(maxsize=8)  # stateless; building one costs more than a signature
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


# Keys the framework keeps in the state for itself; handlers never see them in
# ``event.state``.  FLOW_KEY routes every callback of a call to its flow; RAW_TAG_KEY keeps a
# plain-text tag a handler wrote (``<Tag>order-7</Tag>``), so it reaches ``event.tag`` again.
FLOW_KEY = "_flow"
RAW_TAG_KEY = "_raw"


def with_flow(tag: str | None, flow: str, secret: str, *, limit: int = VERB_TAG_LIMIT) -> str:
    """``tag`` re-signed with ``flow`` added: signed state keeps its keys, a plain-text tag
    is kept under RAW_TAG_KEY, an empty or absent one becomes the flow alone."""
    if tag and tag.startswith(PREFIX) and _claimed_flow(tag) == flow:
        # Already names the flow (Flow.tag wrote it): sent as is.  Its signature is checked
        # where it matters, when Bandwidth sends it back.
        return tag
    state: dict[str, Any] = {}
    if tag:  # a signed-looking tag that fails verification is dropped, never carried on
        state = decode_state(tag, secret) if tag.startswith(PREFIX) else {RAW_TAG_KEY: tag}
    return encode_state({**state, FLOW_KEY: flow}, secret, limit=limit)


def _claimed_flow(tag: str) -> Any:
    """The flow a signed tag's payload names, read without checking the signature."""
    payload = tag[len(PREFIX) :].rpartition(".")[0]
    if not payload or payload.startswith("."):  # compressed payloads: decode the slow way
        return None
    try:
        state = json.loads(base64_decode(payload))
    except (ValueError, TypeError):
        return None
    return state.get(FLOW_KEY) if isinstance(state, dict) else None


def split_state(state: dict[str, Any]) -> tuple[dict[str, Any], str | None, str | None]:
    """(the handler's state, the flow it names, a plain-text tag it keeps)."""
    if FLOW_KEY not in state and RAW_TAG_KEY not in state:
        return state, None, None
    own = {k: v for k, v in state.items() if k not in (FLOW_KEY, RAW_TAG_KEY)}
    flow = state.get(FLOW_KEY)
    raw = state.get(RAW_TAG_KEY)
    return (
        own,
        flow if isinstance(flow, str) else None,
        raw if isinstance(raw, str) else None,
    )
