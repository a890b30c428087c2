"""Password masking: what every display of stored text shows instead of a password.

Framework-free, imported by ``store`` (the search text of a disconnect is masked before it
is indexed, so a search cannot confirm a password a page hides) and by ``callbacks.redact``
(every page, API and export).  It imports no room.
"""

from __future__ import annotations

import re

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
