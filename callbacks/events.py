"""Typed callback events: one marshmallow schema per Bandwidth event type.

camelCase on the wire, snake_case in Python (``callId`` -> ``call_id``, ``from`` -> ``from_``).
Fields Bandwidth adds later are kept, not rejected: they land in ``event.extra`` and in the
stored payload.  Times are parsed to aware ``datetime``; the raw strings stay in ``event.raw``.

Required fields depend on the kind of event: call events need ``callId`` and ``eventType``;
conference events carry ``conferenceId`` and ``name`` instead (member join/exit also carry
the member's ``callId``).  ``recordingComplete`` (the spec's name) is read as
``recordComplete`` (the name the docs and the live service use).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, post_load

EVENT_ALIASES = {"recordingComplete": "recordComplete"}

_BASE = [
    "eventType",
    "eventTime",
    "accountId",
    "applicationId",
    "from",
    "to",
    "direction",
    "callId",
    "callUrl",
    "enqueuedTime",
    "startTime",
    "answerTime",
    "tag",
]
_TRANSFER_LEG = ["parentCallId", "transferCallerId", "transferTo"]
_FAILURE = ["cause", "errorMessage", "errorId"]
_RECORDING = [
    "parentCallId",
    "recordingId",
    "mediaUrl",
    "endTime",
    "duration",
    "fileFormat",
    "channels",
    "transferCallerId",
    "transferTo",
]
_CONFERENCE = ["eventType", "eventTime", "conferenceId", "name", "tag"]

# Field sets per event type (bandwidth-voice-api.md section 2.2; unknown extras are kept).
EVENT_FIELDS: dict[str, list[str]] = {
    "answer": [*_BASE, "machineDetectionResult", "sipCallId"],
    "disconnect": [*_BASE, "endTime", *_FAILURE, "sipCallId", "sipResponseCode"],
    "initiate": [*_BASE, "diversion", "stirShaken", "uui", "sipCallId", "sipHeaders"],
    "gather": [*_BASE, *_TRANSFER_LEG, "digits", "terminatingDigit"],
    "redirect": [*_BASE, *_TRANSFER_LEG],
    "transferAnswer": [*_BASE, *_TRANSFER_LEG],
    "transferComplete": [*_BASE, *_TRANSFER_LEG, *_FAILURE],
    "transferDisconnect": [*_BASE, *_TRANSFER_LEG, "endTime", *_FAILURE],
    "bridgeComplete": [*_BASE, *_FAILURE],
    "bridgeTargetComplete": list(_BASE),
    "recordComplete": [*_BASE, *_RECORDING],
    "recordingAvailable": [*_BASE, *_RECORDING, "status"],
    "transcriptionAvailable": [*_BASE, *_RECORDING, "transcription"],
    "machineDetectionComplete": [*_BASE, "machineDetectionResult"],
    "dtmf": [*_BASE, *_TRANSFER_LEG, "digit"],
    "referComplete": [*_BASE, "referCallStatus", "referSipResponseCode", "notifySipResponseCode"],
    "conferenceCreated": list(_CONFERENCE),
    "conferenceRedirect": list(_CONFERENCE),
    "conferenceCompleted": list(_CONFERENCE),
    "conferenceMemberJoin": [*_CONFERENCE, "from", "to", "callId"],
    "conferenceMemberExit": [*_CONFERENCE, "from", "to", "callId"],
    "conferenceRecordingAvailable": [
        *_CONFERENCE,
        "accountId",
        "recordingId",
        "channels",
        "startTime",
        "endTime",
        "duration",
        "fileFormat",
        "mediaUrl",
        "status",
    ],
    # Stream and real-time transcription payloads are not specified; the call fields are
    # typed and everything else is kept as received.
    **{
        name: [*_BASE, "streamId", "name"]
        for name in ("mediaStreamStarted", "mediaStreamRejected", "mediaStreamStopped")
    },
    **{
        name: [*_BASE, "transcriptionId", "name"]
        for name in (
            "realTimeTranscriptionStarted",
            "realTimeTranscriptionRejected",
            "realTimeTranscriptionStopped",
            "realTimeTranscriptionAvailable",
        )
    },
}

CONFERENCE_EVENTS = frozenset(name for name in EVENT_FIELDS if name.startswith("conference"))

_TIME_FIELDS = {"eventTime", "enqueuedTime", "startTime", "answerTime", "endTime"}
_INT_FIELDS = {"sipResponseCode", "channels", "referSipResponseCode", "notifySipResponseCode"}
_OBJECT_FIELDS = {
    "machineDetectionResult",
    "diversion",
    "stirShaken",
    "sipHeaders",
    "transcription",
}
OBJECT_FIELDS = frozenset(_OBJECT_FIELDS)


def snake_case(name: str) -> str:
    """``callId`` -> ``call_id``; ``from`` -> ``from_`` (a Python keyword)."""
    if name == "from":
        return "from_"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


EVENT_ATTRIBUTES: dict[str, frozenset[str]] = {
    name: frozenset(snake_case(wire) for wire in wire_names)
    for name, wire_names in EVENT_FIELDS.items()
}
ALL_FIELD_ATTRIBUTES = frozenset().union(*EVENT_ATTRIBUTES.values())


# RFC 3339 allows a lowercase "t" and "z"; datetime.fromisoformat does not.
_UPPERCASE_T_Z = str.maketrans("tz", "TZ")
# A leap second: hh:mm:60 with an optional fraction, before the offset.
_LEAP_SECOND = re.compile(r"(.+?[T ][0-9]{2}:[0-9]{2}):60(?:[.,][0-9]+)?(?=[Z+\-])")


def parse_time(text: str) -> datetime:
    """An RFC 3339 date-time (and the other ISO 8601 forms ``fromisoformat`` reads).

    A leap second (``23:59:60Z``, or the same instant at another offset) cannot be a
    ``datetime``: it is read as the last microsecond before it ends (``23:59:59.999999``),
    which keeps its date and its order among the day's events.  As RFC 3339 says, 60 is
    valid only where a leap second can be, the last minute of a month in UTC.
    """
    text = text.translate(_UPPERCASE_T_Z)
    leap = _LEAP_SECOND.match(text)
    if leap is None:
        return datetime.fromisoformat(text)
    moment = datetime.fromisoformat(f"{leap[1]}:59.999999{text[leap.end() :]}")
    after = (moment + timedelta(microseconds=1)).astimezone(UTC)
    if after.day != 1 or after.time() != time(0):
        raise ValueError("second 60 (a leap second) is only valid at 23:59:60 UTC, month end")
    return moment


class CallbackTime(fields.AwareDateTime):
    """An aware date-time read by ``parse_time``; the error names RFC 3339."""

    DESERIALIZATION_FUNCS = {**fields.AwareDateTime.DESERIALIZATION_FUNCS, "rfc3339": parse_time}
    default_error_messages = {"invalid": "Not a valid RFC 3339 date-time."}


def _field(wire_name: str, *, required: bool) -> fields.Field:
    kwargs: dict[str, Any] = {
        "data_key": wire_name,
        "allow_none": not required,
        "required": required,
    }
    if wire_name in _TIME_FIELDS:
        return CallbackTime(format="rfc3339", default_timezone=None, **kwargs)
    if wire_name in _INT_FIELDS:
        return fields.Integer(strict=False, **kwargs)
    if wire_name in _OBJECT_FIELDS:
        return fields.Dict(keys=fields.String(), **kwargs)
    return fields.String(**kwargs)


class CallbackEvent:
    """One callback, typed.  Every documented field of every event type is an attribute:
    the value when the payload has it, None when it does not (``answer_event.digits`` is
    None), so one handler can serve several event types.

    ``extra`` holds fields this version does not know, also readable as snake_case
    attributes (``event.caller_display_name``); ``raw`` is the payload as received (after GET
    query decoding); ``state`` is the verified tag state (see callbacks.tags); ``flow`` is
    the name of the flow handling the event.
    """

    event_type: str
    call_id: str | None
    conference_id: str | None
    tag: str | None
    from_: str | None
    to: str | None
    direction: str | None
    application_id: str | None

    def __init__(self, values: dict[str, Any], extra: dict[str, Any], raw: dict[str, Any]):
        self.__dict__.update(values)
        self.extra = extra
        self.raw = raw
        self.state: dict[str, Any] = {}
        self.route: str | None = None
        self.flow: str | None = None
        self.tagged_flow: str | None = None
        self.attempt: str | None = None  # the outbound attempt that placed the call

    def __getattr__(self, name: str) -> Any:
        # Only reached when the attribute is not set: a field of another event type, or
        # one Bandwidth added that this version does not type.
        if name in ALL_FIELD_ATTRIBUTES:
            return None
        extra = self.__dict__.get("extra") or {}
        for key in (name, camel_case(name)):
            if key in extra:
                return extra[key]
        raise AttributeError(
            f"{type(self).__name__} has no field {name!r}; the fields of "
            f"{self.__dict__.get('event_type')} events: "
            f"{', '.join(sorted(EVENT_ATTRIBUTES.get(self.__dict__.get('event_type') or '', ())))}"
        )

    def __repr__(self) -> str:
        ident = self.__dict__.get("call_id") or self.__dict__.get("conference_id")
        return f"<CallbackEvent {self.event_type} {ident}>"


def camel_case(name: str) -> str:
    """``call_id`` -> ``callId``; ``from_`` -> ``from`` (the inverse of ``snake_case``)."""
    first, *rest = name.rstrip("_").split("_")
    return first + "".join(word[:1].upper() + word[1:] for word in rest)


# How the accelerated path (_EventSchema.quick_load) checks and converts a field.
_TEXT, _TIME, _INT, _OBJECT = range(4)


def _kind(wire_name: str) -> int:
    if wire_name in _TIME_FIELDS:
        return _TIME
    if wire_name in _INT_FIELDS:
        return _INT
    if wire_name in _OBJECT_FIELDS:
        return _OBJECT
    return _TEXT


class _EventSchema(Schema):
    """Base for the generated per-event schemas: keep unknown fields, build a CallbackEvent."""

    class Meta:
        unknown = INCLUDE

    field_names: tuple[str, ...] = ()
    known_keys: frozenset[str] = frozenset()
    # (wire name, attribute, kind, required) per field, and the attribute names that are
    # not also wire names (a payload key among them goes the marshmallow way).
    plan: tuple[tuple[str, str, int, bool], ...] = ()
    attribute_only: frozenset[str] = frozenset()

    @post_load
    def _make_event(self, data: dict[str, Any], **_: Any) -> CallbackEvent:
        values = {name: data.pop(name, None) for name in self.field_names}
        return CallbackEvent(values, data, {})

    def quick_load(self, payload: dict[str, Any]) -> CallbackEvent | None:
        """What ``load`` returns, for the everyday payload; None: let marshmallow decide.

        Callbacks are on the hot path, and marshmallow's general machinery cost more than
        a tenth of a callback's time.  This accepts only values whose result is certain
        (text as text, ISO 8601 times with an offset, plain integers, objects with text
        keys, null or absent optional fields) and hands anything else, every error
        included, to ``load``.  tests/callbacks/test_events.py checks with hypothesis that
        both agree.
        """
        if not self.attribute_only.isdisjoint(payload):
            return None
        values: dict[str, Any] = {}
        for wire_name, attribute, kind, required in self.plan:
            value = payload.get(wire_name)
            if value is None:
                if required:
                    return None
            elif kind == _TEXT:
                if type(value) is not str:
                    return None
            elif kind == _TIME:
                if type(value) is not str:
                    return None
                try:
                    value = datetime.fromisoformat(value)
                except ValueError:
                    return None
                if value.utcoffset() is None:
                    return None  # naive: marshmallow words the error
            elif kind == _INT:
                if type(value) is not int:
                    return None
            elif type(value) is not dict or not all(type(key) is str for key in value):
                return None
            else:
                value = dict(value)
            values[attribute] = value
        extra = {key: value for key, value in payload.items() if key not in self.known_keys}
        return CallbackEvent(values, extra, {})


def _build_schema(event_type: str, wire_names: list[str]) -> _EventSchema:
    unique = list(dict.fromkeys(wire_names))
    if event_type in CONFERENCE_EVENTS:
        required = {"eventType", "conferenceId", "name"}
        if "callId" in unique:
            required.add("callId")
    else:
        required = {"eventType", "callId"}
    declared = {snake_case(name): _field(name, required=name in required) for name in unique}
    schema_class = type(
        f"{event_type[0].upper()}{event_type[1:]}Schema",
        (_EventSchema,),
        {
            **declared,
            "field_names": tuple(declared),
            "known_keys": frozenset(unique),
            "plan": tuple(
                (name, snake_case(name), _kind(name), name in required) for name in unique
            ),
            "attribute_only": frozenset(declared) - frozenset(unique),
        },
    )
    return schema_class()  # type: ignore[no-any-return]


EVENT_SCHEMAS: dict[str, _EventSchema] = {
    name: _build_schema(name, wire) for name, wire in EVENT_FIELDS.items()
}
EVENT_TYPES = frozenset(EVENT_SCHEMAS) | frozenset(EVENT_ALIASES)


def canonical_event_type(name: str) -> str:
    return EVENT_ALIASES.get(name, name)


def load_event(payload: dict[str, Any]) -> CallbackEvent:
    """Validate ``payload`` against its event type's schema.

    Raises marshmallow ``ValidationError`` (messages keyed by the wire name) when the event
    type is missing or unknown, or a field is missing or of the wrong type.
    """
    event_type = payload.get("eventType")
    if not isinstance(event_type, str) or not event_type:
        raise ValidationError({"eventType": ["Missing data for required field."]})
    schema = EVENT_SCHEMAS.get(canonical_event_type(event_type))
    if schema is None:
        raise ValidationError({"eventType": [f"Unknown event type {event_type!r}."]})
    event = schema.quick_load(payload)
    if event is None:
        event = schema.load(payload)
    event.event_type = canonical_event_type(event.event_type)
    event.raw = payload
    return event
