"""What the schemas tolerate on the way in, and the message of each field rule."""

from __future__ import annotations

import math

import pytest
from marshmallow import ValidationError

from calls import (
    CreateCallSchema,
    UpdateCallSchema,
    create_call_payload,
    update_call_payload,
)
from tests.calls.schema_payloads import call, errors

##### strict in what we send, tolerant in what we accept #####

NEGATIVE_DURATIONS = {
    "detectionTimeout": -1,
    "silenceTimeout": -0.5,
    "speechThreshold": -2,
    "speechEndThreshold": -3,
    "machineSpeechEndThreshold": -4,
}


def test_lenient_create_schema_ignores_unknown_properties_at_every_level():
    body = {
        **create_call_payload(**call()),
        "futureOption": {"x": 1},
        "machineDetection": {"mode": "sync", "futureAmdOption": True},
    }
    data = CreateCallSchema(lenient=True).load(body)
    assert "futureOption" not in data
    assert data["machine_detection"] == {"mode": "sync"}


@pytest.mark.parametrize("key", sorted(NEGATIVE_DURATIONS))
def test_negative_machine_detection_durations(key):
    detection = {"mode": "async", key: NEGATIVE_DURATIONS[key]}
    body = {**create_call_payload(**call()), "machineDetection": detection}
    loaded = CreateCallSchema(lenient=True).load(body)["machine_detection"]
    assert list(loaded.values()) == ["async", NEGATIVE_DURATIONS[key]]
    with pytest.raises(ValidationError) as excinfo:
        CreateCallSchema().load(body)
    assert excinfo.value.messages == {
        "machineDetection": {key: ["Must be greater than or equal to 0."]}
    }
    assert errors(machine_detection=detection) == excinfo.value.messages
    assert errors(machine_detection={key: 0}) == {}


def test_lenient_machine_detection_still_checks_types():
    body = {**create_call_payload(**call()), "machineDetection": {"silenceTimeout": "-1"}}
    with pytest.raises(ValidationError) as excinfo:
        CreateCallSchema(lenient=True).load(body)
    assert excinfo.value.messages == {
        "machineDetection": {"silenceTimeout": ["Not a valid number."]}
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"state": None, "redirectUrl": "https://x.example/r"},
            {"state": "active", "redirect_url": "https://x.example/r"},
        ),
        (
            {"state": None, "redirectUrl": "https://x.example/r", "redirectMethod": None},
            {"state": "active", "redirect_url": "https://x.example/r", "redirect_method": None},
        ),
        ({"state": "completed", "futureOption": 1}, {"state": "completed"}),
    ],
)
def test_lenient_update_schema_takes_null_state_and_unknown_properties(body, expected):
    assert UpdateCallSchema(lenient=True).load(body) == expected


def test_lenient_null_state_is_active_so_it_needs_a_redirect_url():
    with pytest.raises(ValidationError) as excinfo:
        UpdateCallSchema(lenient=True).load({"state": None})
    assert excinfo.value.messages == {"redirectUrl": ["Required when state is active."]}


def test_strict_update_schema_refuses_null_state_and_unknown_properties():
    with pytest.raises(ValidationError) as excinfo:
        UpdateCallSchema().load({"state": None, "redirectUrl": "https://x.example/r", "x": 1})
    assert excinfo.value.messages == {"state": ["Field may not be null."], "x": ["Unknown field."]}
    with pytest.raises(ValidationError) as excinfo:
        update_call_payload(state=None, redirect_url="https://x.example/r")
    assert excinfo.value.messages == {"state": ["Field may not be null."]}


def test_every_broken_rule_of_a_value_is_reported():
    assert errors(display_name="x" * 256 + "\n") == {
        "displayName": ["Longer than maximum length 256.", "May not contain control characters."]
    }


##### the message of each rule #####

URL_ERROR = "Not a valid http or https URL."
PRIVACY_ERROR = "Must be one of Restricted, Anonymous, Private, Unavailable when privacy is true."
HTTPS_ERROR = "Must use https when username/password is set."


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://u:p@cb.example.com/d", "userinfo"),
        ("https://cb.example.com/u@x/ b", URL_ERROR),  # an @ in the path is not userinfo
        ("https://cb.example.com/?r=http://u@x/ y", URL_ERROR),
        ("https://[::1::2]/a", URL_ERROR),  # bracketed, but not an IPv6 address
        ("https://[2001:db8::1/a", URL_ERROR),
        ("mailto:u@cb.example.com", URL_ERROR),
    ],
)
def test_url_messages(url, message):
    if message == "userinfo":
        message = "Credentials belong in the username/password fields, not in the URL."
    assert errors(answer_url=url) == {"answerUrl": [message]}


@pytest.mark.parametrize(
    ("uui", "message"),
    [
        ("", "Shorter than minimum length 1."),
        ("aGVsbG8", "Value 1 must be <data>;encoding=jwt|base64|hex (RFC 7433)."),
        ("aGVsbG8;encoding=base64,zz;encoding=hex", "Value 2 is not valid hex data."),
        ("ab;encoding=hex,a.b;encoding=base64", "Value 2 is not valid base64 data."),
        (
            "ab;encoding=hex,ab;encoding=hex,ab",
            "Value 3 must be <data>;encoding=jwt|base64|hex (RFC 7433).",
        ),
        ("not-a-jwt;encoding=jwt", "Value 1 is not valid jwt data."),
        (
            "aGVsbG8;encoding=base64;encoding=hex",
            "Value 1 must be <data>;encoding=jwt|base64|hex (RFC 7433).",
        ),
        (
            "ab;encoding=hex ab;encoding=hex",
            "Value 1 must be <data>;encoding=jwt|base64|hex (RFC 7433).",
        ),
    ],
)
def test_uui_messages(uui, message):
    found = errors(uui=uui)
    assert message in found["uui"]


@pytest.mark.parametrize(
    ("overrides", "key", "message"),
    [
        ({"to": 7}, "to", "Not a valid string."),
        ({"to": "5555551212"}, "to", "Must be an E.164 number (+ then 2-15 digits) or a sip: URI."),
        ({"from_": "5555551212"}, "from", "Must be an E.164 number: + then 2-15 digits."),
        ({"tag": {"a": 1}}, "tag", "Not a valid string."),
        ({"tag": b"bytes"}, "tag", "Not a valid string."),
        ({"application_id": ""}, "applicationId", "Shorter than minimum length 1."),
        ({"application_id": "a\tb"}, "applicationId", "May not contain control characters."),
        ({"display_name": "x" * 257}, "displayName", "Longer than maximum length 256."),
        ({"privacy": 1}, "privacy", "Not a valid boolean."),
        ({"answer_method": "PUT"}, "answerMethod", "Must be one of: GET, POST."),
        ({"answer_method": ["GET"]}, "answerMethod", "Must be one of: GET, POST."),
        ({"username": "x" * 1025}, "username", "Longer than maximum length 1024."),
        ({"call_timeout": "30"}, "callTimeout", "Not a valid number."),
        ({"call_timeout": False}, "callTimeout", "Not a valid number."),
        ({"callback_timeout": math.inf}, "callbackTimeout", "Must be a finite number."),
        ({"callback_timeout": 0.99}, "callbackTimeout", "Must be between 1 and 25."),
        ({"priority": 2.0}, "priority", "Not a valid integer."),
        ({"priority": 10**400}, "priority", "Must be between 1 and 5."),
        ({"answer_url": 1}, "answerUrl", "Not a valid string."),
        ({"privacy": True, "display_name": "Bob"}, "displayName", PRIVACY_ERROR),
        ({"answer_url": "http://x.example/a", "password": "p"}, "answerUrl", HTTPS_ERROR),
    ],
)
def test_messages(overrides, key, message):
    assert errors(**overrides) == {key: [message]}


@pytest.mark.parametrize(
    ("detection", "message"),
    [
        ({"mode": "both"}, {"mode": ["Must be one of: async, sync."]}),
        ({"detection_timeout": True}, {"detectionTimeout": ["Not a valid number."]}),
        ({"delay_result": "true"}, {"delayResult": ["Not a valid boolean."]}),
        ({"callback_method": "PUT"}, {"callbackMethod": ["Must be one of: GET, POST."]}),
        ("sync", {"_schema": ["Invalid input type."]}),
    ],
)
def test_machine_detection_messages(detection, message):
    assert errors(machine_detection=detection) == {"machineDetection": message}


def test_machine_detection_nulls_are_left_out():
    wire = create_call_payload(**call(machine_detection={"mode": "sync", "silence_timeout": None}))
    assert wire["machineDetection"] == {"mode": "sync"}


def test_update_call_state_message_and_default():
    assert update_call_payload(redirect_url="https://x.example/r")["state"] == "active"
    with pytest.raises(ValidationError) as excinfo:
        update_call_payload(state="Completed")
    assert excinfo.value.messages == {"state": ["Must be one of: active, completed."]}
