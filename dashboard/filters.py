"""The disconnect filters, read from query parameters by the page, the exports and the API.

Parameters (all optional):

``category``   one or more failure categories (``store.categories``: handler-error, ...,
               and every cause); with neither ``category`` nor ``cause``, every call
               that needs attention (all but category ``hangup``)
``cause``      one or more of Bandwidth's causes (repeat the parameter)
``all``        ``1``: with no ``category`` or ``cause``, include normal hangups too
``since``      from this time (inclusive), ``until`` to this time (exclusive): ISO 8601
               (``2024-05-01T12:00``, ``...Z``, ``...+02:00``; no offset means UTC), a date,
               or epoch seconds
``number``     the caller or the callee (any format ``phonenumbers`` reads; E.164 stored);
               it needs digits
``tag``        the exact tag
``errorId``    the exact errorId (``error_id`` also accepted)
``q``          text search: a case-insensitive substring of the error message, the payload's
               values or the call's handler errors, 3 to 200 characters, taken whole (see
               ``store.search``; ``search`` also accepted)
``beforeId``   keyset pagination: rows older than this id (``before_id`` also accepted)
``limit``      page size (default 50)

Anything else is refused with a message naming it and what is accepted, rather than
ignored: a misspelt parameter or value would otherwise show an empty or unfiltered list
that looks like an answer.  A ``category`` or ``cause`` must be a known one or one the
store has counted (Bandwidth's vocabulary is open).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

import phonenumbers
from werkzeug.datastructures import MultiDict

from callbacks.redact import masked_row
from store.categories import ALL_CATEGORIES, BANDWIDTH_CAUSES, category_of
from store.search import MIN_CHARS

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# Store.disconnects returns at most 1000 rows; a page asks for one more than it shows.
CHUNK = 999
MAX_TEXT = 200
# Ids are 64-bit signed integers in both databases.
MAX_ID = 2**63 - 1
# Times the chart's calendar can draw with room to spare: 1970 up to the start of 3000.
EARLIEST = 0.0
LATEST = datetime(3000, 1, 1, tzinfo=UTC).timestamp()


# Every parameter name the filters read (aliases too), as the refusal lists them.
PARAMETERS = (
    "category",
    "cause",
    "all",
    "since",
    "until",
    "number",
    "tag",
    "errorId",
    "error_id",
    "q",
    "search",
    "before_id",
    "beforeId",
    "limit",
)
YES = ("1", "true", "yes", "on")
NO = ("", "0", "false", "no", "off")


class FilterError(ValueError):
    """A query parameter that cannot be used; the message names it."""


def _check_names(args: MultiDict[str, str]) -> None:
    unknown = sorted(set(args) - set(PARAMETERS))
    if unknown:
        names = ", ".join(repr(name[:MAX_TEXT]) for name in unknown)
        raise FilterError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {names}; "
            f"accepted: {', '.join(PARAMETERS)}"
        )


def _flag(args: MultiDict[str, str], name: str) -> bool:
    raw = (args.get(name) or "").strip().lower()
    if raw in YES:
        return True
    if raw in NO:
        return False
    raise FilterError(
        f"{name}: {raw[:MAX_TEXT]!r} is not a yes or no; accepted: 1, 0 (or true, false)"
    )


def _check_values(name: str, asked: tuple[str, ...], known: tuple[str, ...], seen: Any) -> None:
    """Refuse values of ``name`` that are neither ``known`` nor ``seen()`` (read only then)."""
    strange = [value for value in asked if value not in known]
    if not strange:
        return
    accepted = list(known) + sorted(set(seen()) - set(known))
    bad = [value for value in strange if value not in accepted]
    if bad:
        raise FilterError(
            f"{name}: {', '.join(repr(v) for v in bad)} is not a {name}; "
            f"accepted: {', '.join(accepted)}"
        )


def parse_time(name: str, raw: str) -> float:
    """Epoch seconds from ISO 8601 (UTC when no offset), a date, or epoch seconds."""
    value = _parse_time(name, raw)
    if not EARLIEST <= value < LATEST:
        raise FilterError(f"{name}: {raw!r} is outside the years 1970 to 2999")
    return value


def _parse_time(name: str, raw: str) -> float:
    text = raw.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise FilterError(f"{name}: {raw!r} is not a time")
        return value
    try:
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise FilterError(
            f"{name}: {raw!r} is not a time (use e.g. 2024-05-01T12:00 or 2024-05-01)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def normalise_number(raw: str) -> str:
    """E.164 when ``phonenumbers`` can read it (national formats as US), else as typed; a
    value without a digit matches no stored number, so it is refused rather than answered
    with an empty list that looks like "no such calls"."""
    text = raw.strip()
    if not any(character.isdigit() for character in text):
        raise FilterError(
            f"number: {text!r} is not a phone number; a number filter needs digits "
            "(e.g. +12025550123 or (202) 555-0123)"
        )
    try:
        parsed = phonenumbers.parse(text, "US")
    except phonenumbers.NumberParseException:
        return text
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _text(args: MultiDict[str, str], *names: str) -> str | None:
    for name in names:
        value = args.get(name)
        if value is not None and value.strip():
            if len(value) > MAX_TEXT:
                raise FilterError(f"{name} is longer than {MAX_TEXT} characters")
            return value.strip()
    return None


def _int(args: MultiDict[str, str], *names: str) -> int | None:
    raw = _text(args, *names)
    if raw is None:
        return None
    # The error names the parameter as it was sent (``beforeId`` or ``before_id``).
    name = next(n for n in names if (args.get(n) or "").strip())
    try:
        value = int(raw)
    except ValueError:
        raise FilterError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise FilterError(f"{name} must not be negative, got {raw!r}")
    return value


def _list(args: MultiDict[str, str], name: str) -> tuple[str, ...]:
    values = tuple(dict.fromkeys(v.strip() for v in args.getlist(name) if v.strip()))
    if any(len(v) > MAX_TEXT for v in values):
        raise FilterError(f"{name} is longer than {MAX_TEXT} characters")
    return values


def before_id(args: MultiDict[str, str]) -> int | None:
    """The keyset cursor ``before_id`` (or ``beforeId``): a stored id, so at most 2^63-1."""
    value = _int(args, "beforeId", "before_id")
    if value is not None and value > MAX_ID:
        name = "beforeId" if args.get("beforeId") else "before_id"
        raise FilterError(f"{name} must be at most {MAX_ID}, got {value}")
    return value


@dataclass(frozen=True)
class DisconnectFilter:
    causes: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    include_hangup: bool = False
    since: float | None = None
    until: float | None = None
    number: str | None = None
    tag: str | None = None
    error_id: str | None = None
    search: str | None = None
    before_id: int | None = None
    limit: int = DEFAULT_LIMIT
    # What was typed, for the form (e.g. the time as entered).
    raw: dict[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def from_args(cls, args: MultiDict[str, str], store: Any = None) -> DisconnectFilter:
        """The filters of a request; with ``store``, each category and cause is checked
        against the known ones and those it has counted."""
        _check_names(args)
        causes = _list(args, "cause")
        categories = _list(args, "category")
        if store is not None:
            _check_values("category", categories, ALL_CATEGORIES, store.category_counts)
            _check_values("cause", causes, BANDWIDTH_CAUSES, store.cause_counts)
        since_raw = _text(args, "since")
        until_raw = _text(args, "until")
        since = parse_time("since", since_raw) if since_raw else None
        until = parse_time("until", until_raw) if until_raw else None
        if since is not None and until is not None and until <= since:
            raise FilterError("until must be after since")
        number_raw = _text(args, "number")
        search = _text(args, "q", "search")
        if search is not None and len(search) < MIN_CHARS:
            raise FilterError(f"q (search) needs at least {MIN_CHARS} characters, got {search!r}")
        limit = _int(args, "limit")
        if limit is not None and not 1 <= limit <= MAX_LIMIT:
            raise FilterError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
        raw = {
            key: value
            for key, value in (
                ("since", since_raw),
                ("until", until_raw),
                ("number", number_raw),
            )
            if value
        }
        return cls(
            causes=causes,
            categories=categories,
            include_hangup=_flag(args, "all"),
            since=since,
            until=until,
            number=normalise_number(number_raw) if number_raw else None,
            tag=_text(args, "tag"),
            error_id=_text(args, "errorId", "error_id"),
            search=search,
            before_id=before_id(args),
            limit=DEFAULT_LIMIT if limit is None else limit,
            raw=raw,
        )

    def store_kwargs(self, *, limit: int | None = None) -> dict[str, Any]:
        """Keyword arguments of ``Store.disconnects``."""
        return {
            "causes": list(self.causes) or None,
            "categories": list(self.categories) or None,
            "exclude_hangup": not self.include_hangup,
            "since": self.since,
            "until": self.until,
            "number": self.number,
            "tag": self.tag,
            "error_id": self.error_id,
            "search": self.search,
            "before_id": self.before_id,
            "limit": self.limit if limit is None else limit,
        }

    def page(self, store: Any) -> tuple[list[dict], int | None]:
        """One page of rows, and the ``before_id`` of the next (older) page, if any."""
        rows = store.disconnects(**self.store_kwargs(limit=self.limit + 1))
        if len(rows) > self.limit:
            rows = rows[: self.limit]
            return rows, int(rows[-1]["id"])
        return rows, None

    def all_rows(self, store: Any, max_rows: int) -> tuple[list[dict], bool]:
        """Every matching row (newest first) up to ``max_rows``; True if there were more."""
        rows: list[dict] = []
        cursor = self
        while len(rows) < max_rows:
            chunk = replace(cursor, limit=min(CHUNK, max_rows - len(rows)))
            page, older = chunk.page(store)
            rows.extend(page)
            if older is None:
                return rows, False
            cursor = replace(cursor, before_id=older)
        return rows, True

    def query_args(self, **changes: Any) -> dict[str, Any]:
        """These filters as query parameters (for links), with ``changes`` applied."""
        args: dict[str, Any] = {
            "category": list(self.categories) or None,
            "cause": list(self.causes) or None,
            "all": "1" if self.include_hangup and not (self.causes or self.categories) else None,
            "since": self.raw.get("since"),
            "until": self.raw.get("until"),
            "number": self.raw.get("number"),
            "tag": self.tag,
            "errorId": self.error_id,
            "q": self.search,
            "before_id": self.before_id,
            "limit": self.limit if self.limit != DEFAULT_LIMIT else None,
        }
        args.update(changes)
        return {key: value for key, value in args.items() if value not in (None, "", [])}

    @property
    def is_default(self) -> bool:
        return self == DisconnectFilter(limit=self.limit)


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def disconnect_json(row: dict[str, Any]) -> dict[str, Any]:
    """One disconnect for the list, the API and the exports (camelCase, like Bandwidth):
    every password in what the sender wrote masked (its numbers may be SIP URIs)."""
    row = masked_row(row)
    payload = row.get("payload") if isinstance(row.get("payload"), dict) else {}
    return {
        "id": row["id"],
        "receivedAt": row["received_at"],
        "receivedAtIso": iso(row["received_at"]),
        "eventTime": row.get("event_time"),
        "callId": row.get("call_id"),
        "cause": row.get("cause") or "unknown",
        "category": category_of(row),
        "from": row.get("from_number"),
        "to": row.get("to_number"),
        "direction": row.get("direction"),
        "tag": row.get("tag"),
        "errorId": row.get("error_id"),
        "errorMessage": row.get("error_message"),
        "sipResponseCode": row.get("sip_response_code"),
        "startTime": payload.get("startTime"),
        "answerTime": payload.get("answerTime"),
        "endTime": payload.get("endTime"),
        "flow": row.get("flow"),
        "durationSeconds": _seconds_between(payload.get("startTime"), payload.get("endTime")),
        "talkSeconds": _seconds_between(payload.get("answerTime"), payload.get("endTime")),
    }


def _seconds_between(start: Any, end: Any) -> float | None:
    """Seconds from one RFC 3339 time of the payload to another; None when either is
    missing or unreadable, or the end comes first."""
    if not isinstance(start, str) or not isinstance(end, str):
        return None
    try:
        began = datetime.fromisoformat(start.replace("z", "Z"))
        ended = datetime.fromisoformat(end.replace("z", "Z"))
        seconds = (ended - began).total_seconds()
    except (ValueError, TypeError):  # unreadable, or one with an offset and one without
        return None
    return round(seconds, 3) if seconds >= 0 else None


def duration(seconds: float | None) -> str:
    """``0:07``, ``12:30``, ``1:02:03``; empty when unknown."""
    if seconds is None:
        return ""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
