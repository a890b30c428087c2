"""Create/Update Call schemas under generated input (hypothesis)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from calls import (
    CreateCallSchema,
    MachineDetectionSchema,
    create_call_payload,
    to_json,
)
from calls.fields import camelcase
from tests.calls.schema_payloads import call

##### properties #####


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(["to", "from_", "uui", "display_name", "answer_url", "tag"]),
    value=st.one_of(st.text(max_size=60), st.integers(), st.none(), st.floats()),
)
def test_any_input_gives_a_payload_or_a_validation_error(field, value):
    try:
        wire = create_call_payload(**call(**{field: value}))
    except ValidationError as error:
        assert isinstance(error.messages, dict) and error.messages
    else:
        json.loads(to_json(wire))


@settings(max_examples=200, deadline=None)
@given(
    call_timeout=st.one_of(st.integers(1, 300), st.floats(1, 300)),
    callback_timeout=st.floats(1, 25),
    priority=st.integers(1, 5),
    tag=st.text(max_size=50),
)
def test_valid_values_round_trip_through_json(call_timeout, callback_timeout, priority, tag):
    values = call(
        call_timeout=call_timeout, callback_timeout=callback_timeout, priority=priority, tag=tag
    )
    wire = create_call_payload(**values)
    assert CreateCallSchema().load(json.loads(to_json(wire))) == values


def _messages(load, data):
    try:
        load(data)
    except ValidationError as error:
        return error.messages
    return {}


WIRE_NAMES = {"from_": "from", "answer_url": "answerUrl", "display_name": "displayName"}


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(["to", "from_", "uui", "display_name", "answer_url", "priority"]),
    value=st.one_of(st.text(max_size=40), st.integers(-5, 400), st.floats(), st.booleans()),
    privacy=st.sampled_from([None, True, False]),
)
def test_kwargs_json_and_marshmallow_paths_agree(field, value, privacy):
    """load_kwargs (client), load (server) and marshmallow's own path (many=True) give the
    same messages for the same data."""
    values = call(**{field: value}, privacy=privacy)
    body = {WIRE_NAMES.get(name, camelcase(name)): item for name, item in values.items()}
    body = {key: item for key, item in body.items() if item is not None}

    from_kwargs = _messages(lambda data: create_call_payload(**data), values)
    from_json = _messages(CreateCallSchema().load, body)
    from_many = _messages(CreateCallSchema(many=True).load, [body])

    assert from_kwargs == from_json
    assert from_many == ({0: from_json} if from_json else {})


def test_machine_detection_schema_alone():
    assert MachineDetectionSchema().load({"mode": "sync"}) == {"mode": "sync"}
