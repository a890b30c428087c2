"""Update Call schema: each negative case changes exactly one field."""

from __future__ import annotations

import json

import pytest
from marshmallow import ValidationError

from calls import (
    UpdateCallSchema,
    update_call_payload,
)

##### Update Call #####


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"redirect_url": "https://cb.example.com/r"},
            {"state": "active", "redirectUrl": "https://cb.example.com/r"},
        ),
        ({"state": "completed"}, {"state": "completed"}),
        (
            {
                "state": "active",
                "redirect_url": "https://cb.example.com/r",
                "redirect_method": "GET",
                "username": "u",
                "password": "p",
                "redirect_fallback_url": "https://cb.example.com/f",
                "redirect_fallback_method": "POST",
                "fallback_username": "fu",
                "fallback_password": "fp",
                "tag": "",
            },
            {
                "state": "active",
                "redirectUrl": "https://cb.example.com/r",
                "redirectMethod": "GET",
                "username": "u",
                "password": "p",
                "redirectFallbackUrl": "https://cb.example.com/f",
                "redirectFallbackMethod": "POST",
                "fallbackUsername": "fu",
                "fallbackPassword": "fp",
                "tag": "",
            },
        ),
        ({"state": "completed", "username": "u"}, {"state": "completed", "username": "u"}),
    ],
)
def test_update_call_payload(values, expected):
    assert update_call_payload(**values) == expected


@pytest.mark.parametrize(
    ("values", "key", "message"),
    [
        ({}, "redirectUrl", "Required when state is active."),
        ({"state": "active"}, "redirectUrl", "Required when state is active."),
        (
            {"state": "completed", "redirect_url": "https://x.example/r"},
            "redirectUrl",
            "Not allowed when state is completed.",
        ),
        (
            {"state": "completed", "redirect_method": "POST"},
            "redirectMethod",
            "Not allowed when state is completed.",
        ),
        (
            {"state": "completed", "redirect_fallback_url": "https://x.example/f"},
            "redirectFallbackUrl",
            "Not allowed when state is completed.",
        ),
        (
            {"state": "completed", "redirect_fallback_method": "POST"},
            "redirectFallbackMethod",
            "Not allowed when state is completed.",
        ),
        ({"state": "completed", "tag": ""}, "tag", "Not allowed when state is completed."),
        ({"state": "hangup"}, "state", "Must be one of: active, completed."),
        (
            {"redirect_url": "https://x.example/r", "tag": "x" * 4097},
            "tag",
            "Longer than maximum length 4096.",
        ),
        (
            {"redirect_url": "https://x.example/r", "password": "x" * 1025},
            "password",
            "Longer than maximum length 1024.",
        ),
        (
            {"redirect_url": "http://x.example/r", "username": "u"},
            "redirectUrl",
            "Must use https when username/password is set.",
        ),
        (
            {
                "redirect_url": "https://x.example/r",
                "redirect_fallback_url": "http://x.example/f",
                "fallback_password": "p",
            },
            "redirectFallbackUrl",
            "Must use https when fallbackUsername/fallbackPassword is set.",
        ),
        (
            {"redirect_url": "https://x.example/r", "answer_url": "https://x.example/a"},
            "answer_url",
            "Unknown field.",
        ),
    ],
)
def test_update_call_errors(values, key, message):
    with pytest.raises(ValidationError) as excinfo:
        update_call_payload(**values)
    assert excinfo.value.messages == {key: [message]}


def test_update_call_loopback_http_with_credentials():
    wire = update_call_payload(redirect_url="http://127.0.0.1:8000/r", username="u")
    assert wire["redirectUrl"] == "http://127.0.0.1:8000/r"


SDK_HANGUP = {"state": "completed", "redirectMethod": "POST", "redirectFallbackMethod": "POST"}


def test_strict_update_schema_rejects_the_sdk_hangup_defaults():
    with pytest.raises(ValidationError) as excinfo:
        UpdateCallSchema().load(SDK_HANGUP)
    assert set(excinfo.value.messages) == {"redirectMethod", "redirectFallbackMethod"}


def test_lenient_update_schema_accepts_and_drops_the_sdk_hangup_defaults():
    assert UpdateCallSchema(lenient=True).load(SDK_HANGUP) == {"state": "completed"}


def test_lenient_update_schema_accepts_the_real_sdk_body():
    sdk = pytest.importorskip("bandwidth.models.update_call")
    body = json.loads(sdk.UpdateCall(state="completed").to_json())

    assert UpdateCallSchema(lenient=True).load(body) == {"state": "completed"}


@pytest.mark.parametrize(
    "body",
    [
        {"state": "completed", "redirectUrl": "https://x.example/r"},
        {"state": "completed", "tag": "x"},
        {"state": "completed", "redirectMethod": "PUT"},
    ],
)
def test_lenient_mode_still_refuses_the_rest(body):
    with pytest.raises(ValidationError):
        UpdateCallSchema(lenient=True).load(body)


def test_update_schema_defaults_state_to_active():
    data = UpdateCallSchema().load({"redirectUrl": "https://x.example/r"})
    assert data == {"state": "active", "redirect_url": "https://x.example/r"}
