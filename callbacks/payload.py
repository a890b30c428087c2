"""Turning a callback request (POST JSON or GET query) into one payload dict.

Both delivery methods give the handler the same typed event.  For GET, Bandwidth passes the
fields as query parameters; how it encodes nested objects is not documented, so both forms
are accepted: JSON-encoded (``machineDetectionResult={"value":"human"}``) and flattened
(``machineDetectionResult.value=human`` or ``machineDetectionResult[value]=human``).  An
empty value of a typed (time, number, object) field means absent, since a query string
cannot carry null.

Stored payloads stay strict JSON, readable by any browser: a number too large for a double
(``1e999``) is refused with 400 rather than stored as ``Infinity``, like the ``NaN`` and
``Infinity`` literals.  Text that no database or XML can hold (NUL, a surrogate escape
without its pair) is refused too; a non-BMP character escaped as a surrogate pair
(``"\\ud83d\\ude00"``, as ``json.dumps`` writes an emoji) is one character and is accepted.

Every problem raises ``PayloadError`` with the status to answer and a message naming it;
nothing here raises anything else for any input.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from werkzeug.datastructures import MultiDict

from callbacks.events import OBJECT_FIELDS

_TYPED_FIELDS = OBJECT_FIELDS | {
    "eventTime",
    "enqueuedTime",
    "startTime",
    "answerTime",
    "endTime",
    "sipResponseCode",
    "channels",
    "referSipResponseCode",
    "notifySipResponseCode",
}
_FLAT_KEY = re.compile(r"^(\w+)(?:\.(\w+)|\[(\w+)\])$")
# JSON escapes that may decode to text no database or XML can hold: NUL and surrogates.  A
# cheap test on the raw body; only a body containing one has its decoded strings checked.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|d[89a-f][0-9a-f]{2})", re.IGNORECASE)
# In decoded text: NUL, or a surrogate json.loads left alone (it joins each valid pair).
_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")


class PayloadError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON here")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _loads(text: str) -> Any:
    """``json.loads`` for strict JSON only: no NaN/Infinity, no numbers beyond a double."""
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)


def _has_bad_text(payload: Any) -> bool:
    """True if a key or string anywhere in the decoded JSON holds NUL or a lone surrogate."""
    pending = [payload]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str) and _BAD_CHARACTER.search(item):
            return True
    return False


def parse_json_body(body: bytes) -> dict[str, Any]:
    """Decode a POST body: UTF-8 (a BOM is tolerated), one JSON object, sane nesting."""
    if not body:
        raise PayloadError(400, "empty body: expected a JSON object")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PayloadError(400, f"body is not valid UTF-8 (byte {exc.start})") from None
    try:
        payload = _loads(text)
    except RecursionError:
        raise PayloadError(400, "JSON is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, 1e999, oversized integers
        raise PayloadError(400, f"malformed JSON: {exc}") from None
    if _SUSPECT_ESCAPE.search(text) and _has_bad_text(payload):
        raise PayloadError(400, "body contains a NUL or unpaired surrogate escape")
    if not isinstance(payload, dict):
        raise PayloadError(400, f"expected a JSON object, got {type(payload).__name__}")
    return payload


def parse_query(args: MultiDict[str, str]) -> dict[str, Any]:
    """Decode a GET callback's query parameters into the payload a POST would carry."""
    payload: dict[str, Any] = {}
    for key in args:
        value = args.get(key, "")
        if "\x00" in key or "\x00" in value:
            raise PayloadError(400, f"query parameter {key!r} contains a NUL character")
        flat = _FLAT_KEY.match(key)
        if flat:
            parent, child = flat.group(1), flat.group(2) or flat.group(3)
            nested = payload.setdefault(parent, {})
            if not isinstance(nested, dict):
                raise PayloadError(400, f"query parameter {parent!r} is given twice")
            nested[child] = value
            continue
        if key in _TYPED_FIELDS and value == "":
            continue
        if key in OBJECT_FIELDS:
            try:
                value = _loads(value)
            except (ValueError, RecursionError):
                raise PayloadError(400, f"query parameter {key!r} is not a JSON object") from None
            if _has_bad_text(value):
                raise PayloadError(400, f"query parameter {key!r} contains a NUL or lone surrogate")
        payload[key] = value
    return payload


def read_payload(
    method: str, mimetype: str, body: bytes, args: MultiDict[str, str]
) -> dict[str, Any]:
    """The payload of one callback request, whichever way Bandwidth delivered it."""
    if method == "GET":
        if not args:
            raise PayloadError(400, "GET callback without query parameters")
        return parse_query(args)
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise PayloadError(
            415, f"Content-Type must be application/json, got {mimetype or 'none'!r}"
        )
    return parse_json_body(body)


# An ISO 8601 duration as Bandwidth writes them (``PT13.67S``, ``PT1M2S``, ``P1DT2H``).
_ISO_DURATION = re.compile(
    r"P(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)


def duration_seconds(value: Any) -> float | None:
    """``PT13.67S`` as 13.67; None for anything else (or a bare ``P``/``PT``)."""
    if not isinstance(value, str):
        return None
    match = _ISO_DURATION.fullmatch(value.strip().upper())
    if not match or not any(match.groupdict().values()) or value.strip().upper().endswith("T"):
        return None
    parts = {name: float(found or 0) for name, found in match.groupdict().items()}
    return parts["days"] * 86400 + parts["hours"] * 3600 + parts["minutes"] * 60 + parts["seconds"]


def readable_duration(value: Any) -> str | None:
    """``PT3S`` as ``3 s``, ``PT83.5S`` as ``1 min 23.5 s``; what is not an ISO duration as
    it was (None stays None)."""
    seconds = duration_seconds(value)
    if seconds is None:
        return None if value is None else str(value)
    if seconds < 60:
        return f"{round(seconds, 2):g} s"
    minutes, rest = divmod(round(seconds, 2), 60)
    hours, minutes = divmod(int(minutes), 60)
    shown = f"{minutes} min {rest:g} s"
    return f"{hours} h {shown}" if hours else shown
