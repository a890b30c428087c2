"""Stored error messages as a person reads them, with the technical detail kept apart.

A disconnect's ``errorMessage`` comes from Bandwidth (or the sandbox) and is often a raw
exception: ``HTTPConnectionPool(host='10.0.0.5', port=80): Read timed out. (read timeout=15)``.
:func:`explain` gives a sentence ("your answer URL did not respond within 15 s") and the
original text as the detail, which the pages show one click away (``<details>``).  A
message we do not recognise is shown as it is, with no detail.  The sandbox writes its
messages as ``<sentence>. Detail: <technical text>``; that split is kept.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from callbacks.redact import mask_passwords

DETAIL_MARK = " Detail: "


class Explained(NamedTuple):
    text: str
    detail: str | None = None


_URL = re.compile(r"https?://[^\s'\")]+")
_POOL = re.compile(r"host='([^']*)', port=(\d+)\): Max retries exceeded with url: (\S+)")
_READ_TIMEOUT = re.compile(r"read timeout=([\d.]+)")
_STATUS = re.compile(
    r"\b(?:answered|returned|status(?: code)?:?)\s+(?:HTTP\s+)?([1-5]\d\d)\b", re.I
)
_ROUTE = re.compile(r"/callbacks/([A-Za-z-]+)")

_STATUS_MEANING = {
    401: "refused the callback (401): Bandwidth sent no credentials or wrong ones",
    403: "refused the request (403)",
    404: "has no such route (404)",
    500: "answered 500: your handler or server failed",
    502: "answered 502: a proxy in front of the app could not reach it",
    503: "answered 503: the app was unavailable or its handler failed",
    504: "answered 504: a proxy in front of the app timed out",
}


def explain(message: str | None) -> Explained:
    """A sentence for a person, and the technical detail (None when there is none)."""
    if not message:
        return Explained("")
    text = message.strip()
    if DETAIL_MARK in text:
        sentence, detail = text.split(DETAIL_MARK, 1)
        return Explained(sentence.strip(), detail.strip() or None)
    sentence = _sentence(text)
    return Explained(sentence, text) if sentence else Explained(text)


HANDLER_CATEGORIES = ("handler-error", "invalid-reply")


def handler_failure(detail: str) -> Explained:
    """A stored handler error (a traceback, maybe followed by the handler's document) as
    "your handler raised RuntimeError: ...", with the whole text as the detail."""
    traceback_part = detail.split("\nThe handler's document", 1)[0]
    lines = [line for line in traceback_part.strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else detail.strip()
    name, colon, rest = last.partition(":")
    short = name.rsplit(".", 1)[-1] + (colon + rest if colon else "")
    if name.endswith("BxmlError"):
        return Explained(f"your handler returned invalid BXML: {rest.strip()}", detail)
    if name.startswith("NoFlow"):
        return Explained(f"no flow answers this call: {rest.strip()}", detail)
    return Explained(f"your handler raised {short}", detail)


def with_handler_errors(store: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``disconnect_json`` rows, each call whose handler failed with ``handlerError``
    (sentence) and ``handlerErrorDetail`` (the traceback): one query for the page."""
    failed = [r["callId"] for r in rows if r.get("category") in HANDLER_CATEGORIES]
    details = store.call_failures([c for c in failed if c])
    for row in rows:
        detail = details.get(row.get("callId") or "")
        if detail is not None:
            row["handlerError"], row["handlerErrorDetail"] = handler_failure(mask_passwords(detail))
    return rows


def _where(text: str) -> tuple[str, str]:
    """("your answer URL", "http://host:port/callbacks/answer") as far as ``text`` says."""
    url = ""
    pool = _POOL.search(text)
    if pool:
        host, port, path = pool.groups()
        url = f"http://{host}:{port}{path}"
    else:
        found = _URL.search(text)
        url = found.group(0).rstrip(".,;:") if found else ""
    route = _ROUTE.search(url or text)
    name = route.group(1) if route else None
    return (f"your {name} URL" if name else "your callback URL"), url


def _sentence(text: str) -> str | None:
    lower = text.lower()
    who, url = _where(text)
    at = f" ({url})" if url else ""
    if "read timed out" in lower or "read timeout" in lower:
        seconds = _READ_TIMEOUT.search(text)
        within = f" within {float(seconds.group(1)):g} s" if seconds else " in time"
        return f"{who} did not respond{within}{at}"
    if "connection refused" in lower or "errno 111" in lower:
        return f"connection refused at {url or who}: is the app running on that port?"
    if "name or service not known" in lower or "nodename nor servname" in lower:
        return f"the host name of {who} does not resolve{at}"
    if "certificate" in lower or "ssl" in lower:
        return f"{who} failed the TLS handshake (certificate or protocol){at}"
    if "connecttimeout" in lower or "connect timeout" in lower:
        return f"{who} could not be reached in time{at}"
    if "max retries exceeded" in lower or "newconnectionerror" in lower:
        return f"{who} could not be reached{at}"
    status = _STATUS.search(text)
    if status:
        code = int(status.group(1))
        meaning = _STATUS_MEANING.get(code, f"answered {code}")
        return f"your app {meaning}{at}"
    return None
