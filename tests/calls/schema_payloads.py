"""Create Call payload builders for the schema tests: valid by default, one field changed
by keyword (``field=DROP`` removes it)."""

from __future__ import annotations

from marshmallow import ValidationError

from calls import create_call_payload

DROP = object()
JWT = "eyJhbGciOiJIUzI1NiJ9.WyJoaSJd.-znkjYyCkgz4djmHUPSXl9YrJ6Nix_XvmlwKGFh5ERM"


def call(**overrides):
    """A valid Create Call as snake_case kwargs; ``field=DROP`` removes a field."""
    values = {
        "to": "+12025550123",
        "from_": "+12025550199",
        "application_id": "04e88489-df02-4e34-a0ee-27a91849555f",
        "answer_url": "https://cb.example.com/callbacks/answer",
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not DROP}


def full_call(**overrides):
    """Every optional field set, machineDetection included."""
    return call(
        privacy=False,
        display_name="Support",
        uui=f"{JWT};encoding=jwt,aGVsbG8gd29ybGQ;encoding=base64",
        answer_method="POST",
        username="cb-user",
        password="cb-secret",
        answer_fallback_url="https://cb.example.com/callbacks/answer-fallback",
        answer_fallback_method="GET",
        fallback_username="fb-user",
        fallback_password="fb-secret",
        disconnect_url="https://cb.example.com/callbacks/disconnect",
        disconnect_method="POST",
        call_timeout=30.5,
        callback_timeout=15,
        machine_detection=machine_detection(),
        priority=2,
        tag='{"order": 7}',
        **overrides,
    )


def machine_detection(**overrides):
    values = {
        "mode": "async",
        "detection_timeout": 15,
        "silence_timeout": 10,
        "speech_threshold": 10,
        "speech_end_threshold": 5,
        "machine_speech_end_threshold": 5,
        "delay_result": True,
        "callback_url": "https://cb.example.com/callbacks/amd",
        "callback_method": "POST",
        "username": "amd-user",
        "password": "amd-secret",
        "fallback_url": "https://cb.example.com/callbacks/amd-fallback",
        "fallback_method": "POST",
        "fallback_username": "amd-fb-user",
        "fallback_password": "amd-fb-secret",
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not DROP}


def errors(**overrides):
    """The error messages for ``call(**overrides)``, or {} when it is valid."""
    try:
        create_call_payload(**call(**overrides))
    except ValidationError as error:
        assert isinstance(error.messages, dict)
        return error.messages
    return {}
