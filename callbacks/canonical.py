"""Comparing BXML replies as Bandwidth would read them: a reply's canonical form.

A regression test exported from a stored call (``callbacks.regression``) asserts that the
app answers each callback as it did then.  Some differences mean nothing, so the canonical
form leaves them out:

- layout: whitespace between and around verbs, attribute order, the XML declaration;
- signed tag state: each token is shown as the state it verifies to (its signature and
  signing time change on every reply), and whether it is bound to the call;
- the app's own public URL (``PUBLIC_BASE_URL`` differs between production and a test;
  ``callback_bases`` finds the one a stored reply was built with);
- credentials: ``username``/``password`` attributes (and ``fallbackUsername``...), user
  names and passwords in URLs, passwords in SIP URIs, the stored replies' ``[redacted:...]``
  markers;
- timestamps (RFC 3339) a handler writes, which are the time it ran;
- call ids: the legs of the recorded call are named ``[call 1]``, ``[call 2]``... in the
  order they appear, and any other call id (one the app derived or looked up) is
  ``[other call]``.

What is left is one element per line, attributes sorted, text with its whitespace
collapsed, so a changed reply shows as a short unified diff.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from lxml import etree

from bxml.errors import BxmlError
from bxml.safe_xml import parse_document
from callbacks.redact import REDACTED, credential_attribute, mask_uri_passwords
from callbacks.tags import CALL_PREFIX, PREFIX, decode_state

BASE_URL_MARK = "{PUBLIC_BASE_URL}"
TIMESTAMP = "[timestamp]"
OTHER_CALL = "[other call]"
UNVERIFIED = "{signed state that does not verify}"
NO_REPLY = "(no reply: an asynchronous event, answered 204)"

SIGNED = re.compile(r"st2c?\.[A-Za-z0-9_\-.]+")
# A scheme starts only where a word does: else each position of a long word rescans the
# rest of it (64 KB of letters: 11 s).
URL_USERINFO = re.compile(
    r"(?<![A-Za-z0-9+.\-])(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)[^/?#@\s\"'<>]+@"
)
REDACTION_MARKER = re.compile(r"\[redacted:[0-9a-f]+\]")
TIMESTAMP_RE = re.compile(
    r"\b\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:?\d{2})?"
)
CALL_ID_RE = re.compile(r"\bc-[0-9a-f]{4,}(?:-[0-9a-f]{4,}){3,}\b")


# Our callback URLs: PUBLIC_BASE_URL, then /callbacks/<route> (flow.url, voice.url).
CALLBACK_URL = re.compile(r"""(https?://[^\s"'<>]+?)/callbacks/[A-Za-z-]+(?=[\s"'<>?#]|$)""")


def callback_bases(body: str | None) -> list[str]:
    """The public base URLs of the callback URLs in a stored reply: the app's
    PUBLIC_BASE_URL when it answered, whatever the settings of the app reading it now."""
    return list(dict.fromkeys(CALLBACK_URL.findall(body or "")))


@dataclass(frozen=True)
class Context:
    """What the canonical form of one reply needs to know about where it was answered."""

    secret: str | None = None  # the SECRET_KEY that signed the tag state
    base_urls: Sequence[str] = ()  # PUBLIC_BASE_URL of the app that answered (or several)
    call_id: str | None = None  # the callback's callId, and its parentCallId
    parent_call_id: str | None = None
    calls: Sequence[str] = field(default_factory=tuple)  # the recorded call's legs


def readable_state(token: str, context: Context) -> str:
    """A signed tag as the state it verifies to (sorted JSON), however old."""
    if not context.secret:
        return "{signed state}"
    state = decode_state(
        token,
        context.secret,
        call_id=context.call_id,
        parent_call_id=context.parent_call_id,
        max_age=None,
    )
    if not state:
        return UNVERIFIED
    scope = "for this call" if token.startswith(CALL_PREFIX) else "for any call"
    assert token.startswith(PREFIX) or token.startswith(CALL_PREFIX)
    return "{signed state " + scope + ": " + json.dumps(state, sort_keys=True) + "}"


def scrub(text: str) -> str:
    """``text`` without credentials: user names and passwords in URLs, a SIP URI's password,
    redaction markers."""
    text = mask_uri_passwords(URL_USERINFO.sub(lambda m: m.group("scheme") + REDACTED + "@", text))
    return REDACTION_MARKER.sub(REDACTED, text)


def normalise(text: str, context: Context) -> str:
    """One attribute value or text node with the values that legitimately change replaced."""
    text = SIGNED.sub(lambda m: readable_state(m.group(0), context), text)
    text = scrub(text)
    for base in sorted((b.rstrip("/") for b in context.base_urls if b), key=len, reverse=True):
        text = text.replace(base, BASE_URL_MARK)
    names = {call: f"[call {n}]" for n, call in enumerate(context.calls, 1)}
    text = CALL_ID_RE.sub(lambda m: names.get(m.group(0), OTHER_CALL), text)
    text = TIMESTAMP_RE.sub(TIMESTAMP, text)
    return " ".join(text.split())


def _quoted(value: str) -> str:
    value = value.replace("&", "&amp;").replace("<", "&lt;")
    if '"' in value and "'" not in value:
        return f"'{value}'"  # decoded tag state is JSON: keep it readable
    return '"' + value.replace('"', "&quot;") + '"'


def _text(value: str | None, context: Context) -> str:
    if not value:
        return ""
    return normalise(value, context).replace("&", "&amp;").replace("<", "&lt;")


def _lines(element: etree._Element, context: Context, depth: int) -> Iterator[str]:
    indent = "  " * depth
    name = etree.QName(element).localname
    attributes = "".join(
        f" {key}={_quoted(REDACTED if credential_attribute(key) else normalise(value, context))}"
        for key, value in sorted((etree.QName(k).localname, v) for k, v in element.attrib.items())
    )
    text = _text(element.text, context)
    children = [child for child in element if isinstance(child.tag, str)]
    if not children:
        yield (
            f"{indent}<{name}{attributes}>{text}</{name}>"
            if text
            else (f"{indent}<{name}{attributes}/>")
        )
        return
    yield f"{indent}<{name}{attributes}>"
    if text:
        yield f"{indent}  {text}"
    for child in children:
        yield from _lines(child, context, depth + 1)
        tail = _text(child.tail, context)
        if tail:
            yield f"{indent}  {tail}"
    yield f"{indent}</{name}>"


def canonical(body: str | None, context: Context) -> str:
    """The canonical form of a reply (see the module's notes); NO_REPLY for none."""
    if body is None or not body.strip():
        return NO_REPLY
    try:
        root = parse_document(body)
    except BxmlError as exc:  # not XML: compared as text, still without credentials
        return f"(not XML: {exc})\n" + normalise(body, context)
    return "\n".join(_lines(root, context, 0))


def line_diff(expected: str, actual: str, *, before: str, after: str) -> str:
    """A unified line diff of two canonical forms ("" when they are equal)."""
    return "\n".join(
        difflib.unified_diff(
            expected.splitlines(),
            actual.splitlines(),
            fromfile=before,
            tofile=after,
            lineterm="",
        )
    )
