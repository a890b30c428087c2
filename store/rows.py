"""Values as every backend accepts them: the ``events`` row of a callback, JSON, keys.

Pure functions, no database: the write path, the spool and the queries share them.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping
from typing import Any

from .schema import KEY_CHARS, events

MAX_PAGE = 1000
_INT32 = 2**31

EVENT_COLUMNS = tuple(c.name for c in events.columns if c.name != "id")
_EVENT_KEYS = (
    "event_type",
    "call_id",
    "conference_id",
    "parent_call_id",
    "from_number",
    "to_number",
    "cause",
    "flow",
    "category",
)
_EVENT_TEXT = (
    "event_time",
    "direction",
    "tag",
    "error_message",
    "reply_body",
    "reply_content_type",
    "error_detail",
)


def clean_text(value: Any, limit: int | None = None) -> str | None:
    """A string every backend accepts: no NUL, valid UTF-8, optionally cut to ``limit``."""
    if value is None:
        return None
    out: str = value if isinstance(value, str) else str(value)
    if "\x00" in out:  # PostgreSQL text cannot hold NUL
        out = out.replace("\x00", "\ufffd")
    if not out.isascii():
        try:
            out.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates, e.g. from "\ud800" in JSON
            out = out.encode("utf-8", "replace").decode("utf-8")
    if limit is not None and len(out) > limit:
        out = out[:limit]
    return out


def clean_key(value: Any) -> str | None:
    """An indexed text value (cut to KEY_CHARS so an insert can never fail on its size)."""
    return clean_text(value, KEY_CHARS)


def clean_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if -_INT32 <= number < _INT32 else None


def clean_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, no NaN/Infinity (stored as null), valid UTF-8."""
    try:
        out = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except ValueError:
        return canonical_json(_finite(value))
    if not out.isascii():
        try:
            out.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: keep them, escaped
            out = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return out


def event_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """The ``events`` row for a callback record (also accepts an earlier row, from the spool)."""
    payload = record.get("payload")
    payload_text = clean_text(payload) if isinstance(payload, str) else canonical_json(payload)
    assert payload_text is not None
    row: dict[str, Any] = {name: clean_key(record.get(name)) for name in _EVENT_KEYS}
    row.update((name, clean_text(record.get(name))) for name in _EVENT_TEXT)
    received_at = clean_float(record.get("received_at"))
    row.update(
        received_at=time.time() if received_at is None else received_at,
        route=clean_key(record.get("route")) or "",
        method=clean_text(record.get("method"), 16) or "POST",
        error_id=clean_key(record.get("error_id")),
        sip_response_code=clean_int(record.get("sip_response_code")),
        payload=payload_text,
        payload_hash=clean_key(record.get("payload_hash"))
        or hashlib.sha256(payload_text.encode("utf-8")).hexdigest(),
        reply_status=clean_int(record.get("reply_status")) or 0,
        latency_ms=clean_float(record.get("latency_ms")),
    )
    return row


def hour_bucket(epoch: float) -> int:
    return int(epoch // 3600) * 3600


def page_size(limit: int) -> int:
    return max(1, min(int(limit), MAX_PAGE))


def with_json(row: Mapping[Any, Any], column: str) -> dict[str, Any]:
    """A result row as a dict, ``column`` decoded from JSON when it is valid JSON."""
    item = dict(row)
    try:
        item[column] = json.loads(item[column])
    except (TypeError, ValueError):
        pass
    return item
