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
# A separator written as is or percent-encoded, once or more: encoders differ in what they
# escape (JavaScript's escape() keeps "@", others keep ":"), and a query holding an encoded
# URI may be encoded again (":" as ``%253A``).
_COLON = r"(?::|%(?:25)*3[Aa])"
# A URI starts where a word does, after an escaped character (``%20sip%3A``, ``%22sip:``, or
# escaped twice, ``%2522sip%253A``) or after a form's ``+`` (a space).
_WORD_OR_ESCAPE = r"(?<![\w+.\-%])|(?<=%[0-9A-Fa-f]{2})|(?<=%25[0-9A-Fa-f]{2})"
_BOUNDARY = rf"(?:{_WORD_OR_ESCAPE}|(?<=\+))"
# ``scheme://user:password@``: the user name stays, the password goes.  The separator may be
# escaped (once or more); so may the "@", when the URL holds none as written.  A JSON
# string may write the slashes ``\/\/``.
_URL_HEAD = (
    r"(?<![A-Za-z0-9+.\-])(?P<head>[A-Za-z][A-Za-z0-9+.\-]*:(?://|\\/\\/)"
    r"(?:[^/?#@\s\"'<>:%]|%(?!(?:25)*3[Aa]))*(?::|%(?:25)*3[Aa]))"
)
_URL_PASSWORD = re.compile(_URL_HEAD + r"[^/?#@\s\"'<>]+@")
_URL_PASSWORD_ESCAPED_AT = re.compile(
    _URL_HEAD + r"(?:[^/?#@\s\"'<>%]|%(?!(?:25)*40))+(?P<at>%(?:25)*40)"
)
# ``sip:user:password@host`` and ``sips:``, as written (a <SipUri>, a payload's ``to``) or
# percent-encoded, wholly or in part, in a query string or form body.  The pattern finds
# ``sip:user:`` and what follows up to a space, a quote or the next URI;
# :func:`_mask_sip_password` finds where the password ends in it.  Linear: neither the user
# nor the rest reads past the start of the next URI, so no text is scanned twice.
_SIP_START = rf"{_BOUNDARY}(?i:sips?){_COLON}"
_SIP_URI = re.compile(
    rf"(?P<head>{_BOUNDARY}(?i:sips?)(?P<colon>{_COLON})"
    rf"(?:(?!{_SIP_START})(?:[^:@\s\"'<>%]|%(?!(?:25)*3[Aa])))*(?P<sep>{_COLON}))"
    rf"(?P<rest>(?:(?!{_SIP_START})[^\s\"'<>])*)"
)
# The same for an encoded URL (``https%3A%2F%2Fuser%3Apassword%40host``), at any depth.
# (Not after a ``+``: a scheme may hold ``+``, and each ``+`` of a long ``a+a+a...`` would
# read the rest of it.)
_ENCODED_URL_START = rf"(?:{_WORD_OR_ESCAPE})(?i:[a-z][a-z0-9+.\-]*%(?:25)*3A%(?:25)*2F%(?:25)*2F)"
_ENCODED_URL_PASSWORD = re.compile(
    rf"(?P<head>{_ENCODED_URL_START}(?:(?!%(?:25)*(?:3[Aa]|40))[^:@/\s\"'<>&=])*"
    rf"%(?:25)*3[Aa])(?:(?!{_ENCODED_URL_START})[^\s\"'<>&])+%(?:25)*40"
)
# An "@", as written or escaped (its depth: how many times), and what ends a SIP password
# escaped no deeper than its URI: the URI's ``;`` (parameters), ``?`` (headers) or ``/``, or
# a query's ``&``.  A password holds none of them unescaped; one escaped deeper is its own.
_AT = re.compile(r"@|%(?P<deeper>(?:25)*)40")
_DELIMITER = re.compile(r"[&;?/]|%(?P<deeper>(?:25)*)(?:2[Ff]|3[BbFf])")
# A JSON string may write "@" as ``\u0040`` (not after an escaped backslash): the patterns
# read it as an "@" as written, marked with a private-use character to be put back.
_JSON_AT = re.compile(r"(?<!\\)(?P<backslashes>(?:\\\\)*)\\u0040")
_JSON_AT_MARK = "@\ue000"
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
    ``sip:``/``sips:`` URI masked, as written or percent-encoded; user names and hosts stay
    readable."""
    json_at = "\\u0040" in text and "\ue000" not in text
    if json_at:
        text = _JSON_AT.sub(lambda m: m.group("backslashes") + _JSON_AT_MARK, text)
    # Most texts hold neither an "@" nor an escape: they skip the patterns.
    if "@" not in text and "%" not in text:
        return text
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED + "@", text)
    text = _URL_PASSWORD_ESCAPED_AT.sub(lambda m: m.group("head") + REDACTED + m.group("at"), text)
    text = _SIP_URI.sub(_mask_sip_password, text)
    text = _ENCODED_URL_PASSWORD.sub(
        lambda m: m.group("head") + REDACTED + m.group(0)[m.group(0).rindex("%") :], text
    )
    return text.replace(_JSON_AT_MARK, "\\u0040") if json_at else text


def _mask_sip_password(match: re.Match[str]) -> str:
    """``sip:user:password@host...`` with the password masked; unchanged without one."""
    # How many times the URI was escaped: ``sip:`` 0, ``sip%3A`` 1, ``sip%253A`` 2.
    colon = match.group("colon")
    depth = 0 if colon == ":" else colon.count("25") + 1
    rest = match.group("rest")
    if depth == 0 and "@" in rest:
        end = rest.rfind("@")  # as written: to the last "@" (the password may hold ":")
    else:
        end = _password_end(rest, depth)
    # ``sip:host:5060%40x`` is masked too: it cannot be told from ``sip:alice:1234%40pbx``,
    # and SIP passwords are often short numbers.
    if end <= 0:
        return match.group(0)
    return match.group("head") + REDACTED + rest[end:]


def _depth(found: re.Match[str]) -> int:
    """How many times an ``_AT`` or ``_DELIMITER`` was escaped (0: as written)."""
    deeper = found.group("deeper")
    return 0 if deeper is None else deeper.count("25") + 1


def _password_end(rest: str, depth: int) -> int:
    """Where the password in ``rest`` (what follows ``user:``) ends, or -1: at the last "@"
    escaped as deep as the URI; failing one, at the last of the shallowest other "@".  An
    encoder may keep "@" (JavaScript's escape(): ``sip%3Aalice%3Apw@host``) or escape it
    alone (``sip:bob:pw%40host``, once or more: ``sip:al%3Apw%2540host``) before the whole
    is escaped again; a password's own "@" is escaped deeper than its end."""
    cut = next((m.start() for m in _DELIMITER.finditer(rest) if _depth(m) <= depth), len(rest))
    last: dict[int, int] = {}
    for at in _AT.finditer(rest, 0, cut):
        last[_depth(at)] = at.start()
    if depth in last:
        return last[depth]
    return last[min(last)] if last else -1
