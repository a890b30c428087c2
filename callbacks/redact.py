"""Keeping callback passwords out of the stored replies.

Our BXML carries the callback credentials in verb attributes (Bandwidth sends Basic auth to
a verb's URL only when the verb has them), and every reply is stored for the dashboard.  The
stored copy replaces each configured password with a marker naming its fingerprint; a
duplicate delivery is answered with the stored reply after the marker is swapped back for
the configured password, so both deliveries get the same document.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from lxml import etree

Markers = tuple[tuple[str, str], ...]


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
