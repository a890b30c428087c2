"""Turning a callback request (POST JSON or GET query) into one payload dict.

Both delivery methods give the handler the same typed event.  For GET, Bandwidth passes the
fields as query parameters; how it encodes nested objects is not documented, so both forms
are accepted: JSON-encoded (``machineDetectionResult={"value":"human"}``) and flattened
(``machineDetectionResult.value=human`` or ``machineDetectionResult[value]=human``).  An
empty value of a typed (time, number, object) field means absent, since a query string
cannot carry null.

Every problem raises ``PayloadError`` with the status to answer and a message naming it;
nothing here raises anything else for any input.
"""

from __future__ import annotations

import json
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
# JSON escapes that decode to text no database or XML can hold: NUL and lone surrogates.
_BAD_ESCAPE = re.compile(r"\\u(?:0000|d[89a-f][0-9a-f]{2})", re.IGNORECASE)


class PayloadError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON here")


def parse_json_body(body: bytes) -> dict[str, Any]:
    """Decode a POST body: UTF-8 (a BOM is tolerated), one JSON object, sane nesting."""
    if not body:
        raise PayloadError(400, "empty body: expected a JSON object")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PayloadError(400, f"body is not valid UTF-8 (byte {exc.start})") from None
    if _BAD_ESCAPE.search(text):
        raise PayloadError(400, "body contains a NUL or unpaired surrogate escape")
    try:
        payload = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise PayloadError(400, "JSON is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, oversized integers
        raise PayloadError(400, f"malformed JSON: {exc}") from None
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
                value = json.loads(value, parse_constant=_reject_constant)
            except (ValueError, RecursionError):
                raise PayloadError(400, f"query parameter {key!r} is not a JSON object") from None
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
