"""The typed events: the accelerated load agrees with marshmallow's on every payload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from callbacks.events import (
    _INT_FIELDS,
    _TIME_FIELDS,
    EVENT_FIELDS,
    EVENT_SCHEMAS,
    OBJECT_FIELDS,
    load_event,
    snake_case,
)
from tests.callbacks.helpers import answer_event

TIMES = [
    "2019-06-20T15:54:25.435Z",
    "2019-06-20T15:54:25+05:30",
    "2019-06-20t15:54:25z",  # RFC 3339 allows lowercase
    "2016-12-31T23:59:60Z",  # a leap second
    "2016-12-31T22:59:60Z",  # second 60 where no leap second can be: refused
    "2019-06-20T15:54:25",  # naive: refused
    "2019-06-20",
    "20190620T155425Z",
    "not a time",
    "",
]

any_value = st.one_of(
    st.none(),
    st.text(max_size=8),
    st.sampled_from(TIMES),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.one_of(st.text(max_size=4), st.integers()), max_size=2),
    st.dictionaries(st.integers(), st.text(max_size=2), min_size=1, max_size=1),
)


aware_times = st.datetimes(
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))])
).map(datetime.isoformat)


def valid_value(wire_name: str) -> st.SearchStrategy:
    if wire_name in _TIME_FIELDS:
        return st.one_of(aware_times, st.sampled_from(TIMES[:2]))
    if wire_name in _INT_FIELDS:
        return st.integers(min_value=-(2**40), max_value=2**40)
    if wire_name in OBJECT_FIELDS:
        return st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2)
    return st.text(max_size=12)


@st.composite
def payloads(draw: st.DrawFn) -> tuple[str, dict]:
    """Mostly valid payloads of every event type, each field now and then absent, null or
    of any other type, with unknown keys and keys that collide with attribute names."""
    event_type = draw(st.sampled_from(sorted(EVENT_FIELDS)))
    payload = {}
    for name in EVENT_FIELDS[event_type]:
        roll = draw(st.integers(0, 9))
        if roll == 0:
            continue  # absent
        payload[name] = draw(any_value if roll == 1 else valid_value(name))
    for extra in draw(st.lists(st.sampled_from(["newField", "call_id", "from_", "x"]), max_size=2)):
        payload[extra] = draw(any_value)
    payload["eventType"] = event_type
    return event_type, payload


def _typed(event) -> dict:
    values = dict(vars(event))
    values.pop("raw", None)
    return values


@settings(max_examples=600, deadline=None)
@given(payloads())
def test_quick_load_agrees_with_marshmallow(case):
    event_type, payload = case
    schema = EVENT_SCHEMAS[event_type]
    quick = schema.quick_load(dict(payload))
    try:
        slow = schema.load(dict(payload))
    except ValidationError:
        assert quick is None  # errors are always marshmallow's to word
        return
    if quick is not None:
        assert _typed(quick) == _typed(slow)


def answer_payload(**overrides):
    """An answer callback with an object field and a field this version does not know."""
    defaults = {
        "callId": "c-15ac29a2",
        "tag": None,
        "machineDetectionResult": {"value": "human", "duration": "PT4.9891287S"},
        "someFutureField": [1, 2],
    }
    return answer_event(**{**defaults, **overrides})


def test_everyday_payloads_take_the_quick_path():
    schema = EVENT_SCHEMAS["answer"]
    event = schema.quick_load(answer_payload())
    assert event is not None
    assert event.call_id == "c-15ac29a2"
    assert event.from_ == "+12025550100"
    assert event.event_time == datetime(2019, 6, 20, 15, 54, 25, 435000, tzinfo=UTC)
    assert event.tag is None and event.enqueued_time is None
    assert event.machine_detection_result == {"value": "human", "duration": "PT4.9891287S"}
    assert event.extra == {"someFutureField": [1, 2]}
    disconnect = EVENT_SCHEMAS["disconnect"].quick_load(
        answer_payload(eventType="disconnect", sipResponseCode=486, cause="busy")
    )
    assert disconnect is not None and disconnect.sip_response_code == 486


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("callId", None),  # required
        ("eventTime", "2019-06-20T15:54:25"),  # naive
        ("eventTime", "yesterday"),
        ("from", 12025550100),
        ("machineDetectionResult", "human"),
    ],
)
def test_unusual_values_are_left_to_marshmallow(field, value):
    payload = answer_payload(**{field: value})
    assert EVENT_SCHEMAS["answer"].quick_load(payload) is None
    with pytest.raises(ValidationError) as raised:
        load_event(payload)
    assert field in raised.value.messages


def test_marshmallow_still_converts_what_the_quick_path_declines():
    # Integer(strict=False) takes a numeric string; the quick path leaves it to marshmallow.
    payload = answer_payload(eventType="disconnect", sipResponseCode="486")
    assert EVENT_SCHEMAS["disconnect"].quick_load(payload) is None
    assert load_event(payload).sip_response_code == 486


def test_offsets_are_kept():
    event = load_event(answer_payload(startTime="2019-06-20T15:54:22+05:30"))
    assert event.start_time.utcoffset() == timedelta(hours=5, minutes=30)
    assert event.start_time == datetime(2019, 6, 20, 10, 24, 22, tzinfo=UTC)


def test_every_wire_name_has_an_attribute():
    for event_type, wire in EVENT_FIELDS.items():
        event = load_event(
            {name: None for name in wire}
            | {"eventType": event_type, "callId": "c", "conferenceId": "f", "name": "n"}
        )
        for name in wire:
            assert hasattr(event, snake_case(name)), (event_type, name)
