"""Keeping callback passwords out of the stored replies.

Our BXML carries the callback credentials in verb attributes (Bandwidth sends Basic auth to
a verb's URL only when the verb has them), and every reply is stored for the dashboard.  The
stored copy replaces each configured password with a marker naming its fingerprint; a
duplicate delivery is answered with the stored reply after the marker is swapped back for
the configured password, so both deliveries get the same document.

What is stored keeps any other password a handler wrote (a ``<Transfer>``'s
``password="..."``...): a repeated delivery must get it back.  Every page and API that shows
a stored reply, payload or error masks them instead (:func:`masked`, :func:`masked_row`):
each value of an attribute whose name ends in ``password`` (``fallbackPassword``...), a JSON
member or form field so named, and the password in a URL's ``user:password@`` or a SIP
URI's ``sip:user:password@host`` (also percent-encoded, as in a refused GET's query).  The
regression export's canonical form (``callbacks.canonical``) goes further and hides user
names in URLs as well.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from lxml import etree

# The masking itself lives outside the rooms, for the store's search index too; its names
# are served from here as before.
from masking import REDACTED as REDACTED
from masking import credential_attribute as credential_attribute
from masking import mask_passwords as mask_passwords
from masking import mask_uri_passwords as mask_uri_passwords
from masking import password_attribute as password_attribute

Markers = tuple[tuple[str, str], ...]

# The columns of stored rows that hold what a handler, Bandwidth or any sender wrote: the
# callbacks (``store.events_for_call``), disconnects, refused calls (``store.refused_calls``),
# rejected requests (``store.rejected``: ``body``, ``reason``) and the create-call attempts
# (``store.outbound_for_call``: ``request``, ``error``).
SHOWN_COLUMNS = (
    "reply_body",
    "error_detail",
    "error_message",
    "payload",
    "tag",
    "from_number",
    "to_number",
    "body",
    "reason",
    "request",
    "error",
)


def masked(value: Any) -> Any:
    """A JSON value (or text) as the dashboard shows it: every password masked."""
    if isinstance(value, str):
        return mask_passwords(value)
    if isinstance(value, dict):
        return {
            key: REDACTED
            if isinstance(key, str) and password_attribute(key) and item is not None
            else masked(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [masked(item) for item in value]
    return value


def masked_row(row: dict[str, Any]) -> dict[str, Any]:
    """A stored callback (a store row) as the dashboard shows it: a copy, passwords masked."""
    return {
        **row,
        **{column: masked(row[column]) for column in SHOWN_COLUMNS if row.get(column) is not None},
    }


def _as_attribute(secret: str) -> str:
    """``secret`` as lxml writes it inside a double-quoted attribute."""
    rendered = etree.tostring(etree.Element("x", v=secret), encoding="unicode")
    return rendered[len('<x v="') : -len('"/>')]


def markers_for(passwords: Iterable[str]) -> Markers:
    pairs = []
    for password in dict.fromkeys(p for p in passwords if p):
        fingerprint = hashlib.sha256(password.encode("utf-8")).hexdigest()[:12]
        pairs.append((_as_attribute(password), f"[redacted:{fingerprint}]"))
    # Longest first, so a password that contains another is replaced whole.
    return tuple(sorted(pairs, key=lambda pair: -len(pair[0])))


def redact(body: str | None, markers: Markers) -> str | None:
    if body is None:
        return None
    for secret, marker in markers:
        body = body.replace(secret, marker)
    return body


def restore(body: str | None, markers: Markers) -> str | None:
    if body is None:
        return None
    for secret, marker in markers:
        body = body.replace(marker, secret)
    return body
