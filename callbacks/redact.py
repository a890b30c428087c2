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
import re
from collections.abc import Iterable
from typing import Any

from lxml import etree

Markers = tuple[tuple[str, str], ...]

REDACTED = "[redacted]"

# ``name="value"`` or ``name='value'``: an XML attribute, a keyword argument in a traceback.
# Linear on any text: a name only starts where a word does (the lookbehind; else each
# position inside a long word would rescan the rest of it), and a value is bounded.
_ATTRIBUTE = re.compile(
    r"""(?<![\w.:-])(?P<name>[A-Za-z_][\w.:-]*)(?P<eq>\s*=\s*)(?P<quote>["'])"""
    r"""(?P<value>.{0,4096}?)(?P=quote)""",
    re.S,
)
# ``"name": "value"``: a JSON member inside a text (a payload quoted in an error).  A value
# may run to the end: a rejected request's body is kept cut at its first 2 KB.
# (A cut may fall just after a backslash; a PIN may be sent as a number.)
_JSON_MEMBER = re.compile(
    r'"(?P<name>[A-Za-z_]\w*)"(?P<colon>\s*:\s*)'
    r'(?:"(?:[^"\\]|\\.)*(?:"|\\?\Z)|-?\d[\w.+\-]*)',
    re.S,
)
# ``scheme://user:password@``: the user name stays, the password goes.
_URL_PASSWORD = re.compile(
    r"(?<![A-Za-z0-9+.\-])(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^/?#@\s\"'<>:]*:)[^/?#@\s\"'<>]+@"
)
# ``sip:user:password@host`` and ``sips:``, as written (a <SipUri>, a payload's ``to``) or
# percent-encoded in a query string or form body (``sip%3Auser%3Apassword%40host``).  The
# password runs to the last ``@`` before a space, quote or the next URI (a password may hold
# ``:`` or ``%40``).  Linear: a URI starts only where a word does, and neither its user nor
# its password reads past the start of the next one, so no text is scanned twice.
# A URI also starts after an escaped character (``%20sip%3A``, ``%22sip:``) or a form's
# ``+`` (a space).
_AFTER_ESCAPE = r"(?<=%[0-9A-Fa-f]{2})|(?<=\+)"
_SIP_START = rf"(?:(?<![\w+.\-%])|{_AFTER_ESCAPE})(?i:sips?):"
_SIP_PASSWORD = re.compile(rf"(?P<head>{_SIP_START}[^:@\s\"'<>]*:)(?:(?!{_SIP_START})[^\s\"'<>])+@")
# (Not a URL's scheme after a ``+``: a scheme may hold ``+``, and each ``+`` of a long
# ``a+a+a...`` would read the rest of it.)
_ENCODED_START = (
    r"(?:(?:(?<![\w+.\-%])|(?<=%[0-9A-Fa-f]{2}))(?i:sips?%3A|[a-z][a-z0-9+.\-]*%3A%2F%2F)"
    r"|(?<=\+)(?i:sips?%3A))"
)
_ENCODED_PASSWORD = re.compile(
    rf"(?P<head>{_ENCODED_START}(?:(?!(?i:%3A|%40))[^:@/\s\"'<>&=])*(?i:%3A))"
    rf"(?:(?!{_ENCODED_START})[^\s\"'<>&])+(?i:%40)"
)
# ``name=value`` in a query string or form body (a refused GET callback's stored query).
_FORM_FIELD = re.compile(r"""(?<![\w.\-%])(?P<name>[A-Za-z_][\w.\-]*)=(?P<value>[^&\s"'<>]+)""")

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


def password_attribute(name: str) -> bool:
    """``password`` and its prefixed forms (``fallbackPassword``, ``destinationPassword``)."""
    return name.lower().endswith("password")


def credential_attribute(name: str) -> bool:
    """``username``, ``password`` and their prefixed forms (``fallbackUsername``...)."""
    return name.lower().endswith("username") or password_attribute(name)


def mask_passwords(text: str) -> str:
    """``text`` (BXML, a traceback, JSON) with every password value shown as ``[redacted]``."""

    def attribute(match: re.Match[str]) -> str:
        if not password_attribute(match.group("name")):
            return match.group(0)
        quote = match.group("quote")
        return f"{match.group('name')}{match.group('eq')}{quote}{REDACTED}{quote}"

    def member(match: re.Match[str]) -> str:
        if not password_attribute(match.group("name")):
            return match.group(0)
        return f'"{match.group("name")}"{match.group("colon")}"{REDACTED}"'

    def field(match: re.Match[str]) -> str:
        if not password_attribute(match.group("name")):
            return match.group(0)
        return f"{match.group('name')}={REDACTED}"

    # Most values (times, ids, numbers) hold neither a name ending in "password" nor an "@":
    # an export masks every row, so they skip the patterns.
    if "password" in text.lower():
        text = _ATTRIBUTE.sub(attribute, text)
        text = _JSON_MEMBER.sub(member, text)
        text = _FORM_FIELD.sub(field, text)
    return mask_uri_passwords(text)


def mask_uri_passwords(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` URL and every
    ``sip:``/``sips:`` URI masked; user names and hosts stay readable."""
    if "@" in text:
        text = _URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED + "@", text)
        text = _SIP_PASSWORD.sub(lambda m: m.group("head") + REDACTED + "@", text)
    if "%40" in text:
        text = _ENCODED_PASSWORD.sub(lambda m: m.group("head") + REDACTED + "%40", text)
    return text


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
