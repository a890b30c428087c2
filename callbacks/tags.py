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

import functools
import hashlib
import json
import logging
import re
from collections.abc import Iterable
from typing import Any

from itsdangerous import (
    BadData,
    BadSignature,
    SignatureExpired,
    TimedSerializer,
    URLSafeTimedSerializer,
)
from itsdangerous.encoding import base64_decode, base64_encode

CALL_TAG_LIMIT = 4096
VERB_TAG_LIMIT = 256
PREFIX = "st2."  # marks our signed state; other tags pass through as raw strings
CALL_PREFIX = "st2c."  # signed state bound to one call
MAX_AGE_SECONDS = 48 * 3600
SALT = "bandwidth-tag-state"

log = logging.getLogger(__name__)


class TagTooLong(ValueError):
    """The encoded state does not fit where it is going; the message says by how much."""


# State shorter than this is never compressed: its tag fits a verb's 256 characters as it
# is, zlib would save a few characters at most, and starting zlib costs more than the
# signature (it sets up a quarter of a megabyte of tables for every call).
COMPRESS_FROM = 128


class _StateSerializer(URLSafeTimedSerializer):
    """itsdangerous's URL-safe timed serializer, compressing only state long enough for it
    to matter.  Its ``loads`` reads both forms."""

    def dump_payload(self, obj: Any) -> bytes:
        plain = TimedSerializer.dump_payload(self, obj)  # the JSON, before the URL-safe step
        if len(plain) < COMPRESS_FROM:
            return base64_encode(plain)
        return super().dump_payload(obj)


@functools.lru_cache(maxsize=16)  # stateless; one per secret, the call bound by the salt
def _serializer(secret: str) -> URLSafeTimedSerializer:
    # hashlib.sha1 itself rather than itsdangerous's lazy wrapper around it: the same HMAC,
    # computed by OpenSSL in one call instead of by the hmac module's Python fallback.
    return _StateSerializer(secret, salt=SALT, signer_kwargs={"digest_method": hashlib.sha1})


def _salt(call_id: str | None) -> str:
    return SALT if call_id is None else f"{SALT}:call:{call_id}"


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
    tag = prefix + _serializer(secret).dumps(state, salt=_salt(call_id))
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
            state = _serializer(secret).loads(body, max_age=max_age, salt=_salt(candidate))
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


def bound_to(tag: str, secret: str, call_ids: Iterable[str | None]) -> str | None:
    """The one of ``call_ids`` that the call-bound state in ``tag`` verifies for (None: it
    is not bound, or verifies for none of them); however old, and quietly."""
    if not tag.startswith(CALL_PREFIX):
        return None
    for call_id in call_ids:
        if not call_id:
            continue
        try:
            _serializer(secret).loads(tag[len(CALL_PREFIX) :], salt=_salt(call_id))
        except BadData:  # a bad signature or a malformed tag: try the next
            continue
        return call_id
    return None


# Keys the framework keeps in the state for itself; handlers never see them in
# ``event.state``.  FLOW_KEY routes every callback of a call to its flow; RAW_TAG_KEY keeps a
# plain-text tag a handler wrote (``<Tag>order-7</Tag>``), so it reaches ``event.tag`` again.
FLOW_KEY = "_flow"
RAW_TAG_KEY = "_raw"
ATTEMPT_KEY = "_attempt"  # the outbound attempt that placed the call (calls.outbound)
RESERVED_KEYS = (FLOW_KEY, RAW_TAG_KEY, ATTEMPT_KEY)


def with_flow(
    tag: str | None,
    flow: str,
    secret: str,
    *,
    limit: int = VERB_TAG_LIMIT,
    bind_to: str | None = None,
    call_id: str | None = None,
    parent_call_id: str | None = None,
) -> str:
    """``tag`` re-signed with ``flow`` added, bound to the call ``bind_to`` (None: unbound).

    Signed state keeps its keys (read as a callback of ``call_id``, with ``parent_call_id``,
    would read it), a plain-text tag is kept under RAW_TAG_KEY, an empty or absent one
    becomes the flow alone.
    """
    if tag and _claimed_flow(tag, bound=bind_to is not None) == flow:
        # Written by Flow.tag during this callback, already naming the flow and bound as
        # asked: sent as is.  Its signature is checked where it matters, when it comes back.
        return tag
    state: dict[str, Any] = {}
    if tag:  # a signed-looking tag that fails verification is dropped, never carried on
        if tag.startswith((PREFIX, CALL_PREFIX)):
            state = decode_state(tag, secret, call_id=call_id, parent_call_id=parent_call_id)
        else:
            state = {RAW_TAG_KEY: tag}
    return encode_state({**state, FLOW_KEY: flow}, secret, limit=limit, call_id=bind_to)


def _claimed_flow(tag: str, *, bound: bool) -> Any:
    """The flow a signed tag's payload names, read without checking the signature."""
    prefix = CALL_PREFIX if bound else PREFIX
    if not tag.startswith(prefix):
        return None
    payload = tag[len(prefix) :].partition(".")[0]
    if not payload:  # a compressed payload starts with "."; decode it the slow way
        return None
    try:
        state = json.loads(base64_decode(payload))
    except (BadData, ValueError, TypeError):  # not ours, or altered: decided the slow way
        return None
    return state.get(FLOW_KEY) if isinstance(state, dict) else None


def split_state(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(the handler's state, the framework's keys among RESERVED_KEYS that are strings)."""
    if not any(key in state for key in RESERVED_KEYS):
        return state, {}
    own = {k: v for k, v in state.items() if k not in RESERVED_KEYS}
    reserved = {k: state[k] for k in RESERVED_KEYS if isinstance(state.get(k), str)}
    return own, reserved


_SIGNED = re.compile(r"st2c?\.[A-Za-z0-9_\-.]+")


def signed_tokens(text: str | None) -> list[str]:
    """Every signed-state token in ``text`` (a stored reply, say), verified or not."""
    return _SIGNED.findall(text or "")


def readable_tags(
    text: str, secret: str, *, call_id: str | None = None, parent_call_id: str | None = None
) -> str:
    """``text`` with each signed tag replaced by the state it verifies to, as sorted JSON
    (``{signed state: {...}}``), however old: two replies that set the same state compare
    equal although each signature carries its own time."""

    def readable(match: re.Match[str]) -> str:
        tag = match.group(0)
        state = decode_state(
            tag, secret, call_id=call_id, parent_call_id=parent_call_id, max_age=None
        )
        if not state:
            return tag
        return "{signed state: " + json.dumps(state, sort_keys=True) + "}"

    return _SIGNED.sub(readable, text)
