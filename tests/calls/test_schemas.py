"""Create Call / Update Call schemas: each negative case changes exactly one field."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from calls import (
    CreateCallSchema,
    MachineDetectionSchema,
    UpdateCallSchema,
    create_call_payload,
    to_json,
    update_call_payload,
)

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


##### the wire format #####


def test_full_payload_is_camelcase():
    wire = create_call_payload(**full_call())

    assert sorted(wire) == sorted(
        [
            "to",
            "from",
            "privacy",
            "displayName",
            "uui",
            "applicationId",
            "answerUrl",
            "answerMethod",
            "username",
            "password",
            "answerFallbackUrl",
            "answerFallbackMethod",
            "fallbackUsername",
            "fallbackPassword",
            "disconnectUrl",
            "disconnectMethod",
            "callTimeout",
            "callbackTimeout",
            "machineDetection",
            "priority",
            "tag",
        ]
    )
    assert wire["machineDetection"] == {
        "mode": "async",
        "detectionTimeout": 15,
        "silenceTimeout": 10,
        "speechThreshold": 10,
        "speechEndThreshold": 5,
        "machineSpeechEndThreshold": 5,
        "delayResult": True,
        "callbackUrl": "https://cb.example.com/callbacks/amd",
        "callbackMethod": "POST",
        "username": "amd-user",
        "password": "amd-secret",
        "fallbackUrl": "https://cb.example.com/callbacks/amd-fallback",
        "fallbackMethod": "POST",
        "fallbackUsername": "amd-fb-user",
        "fallbackPassword": "amd-fb-secret",
    }
    assert wire["callTimeout"] == 30.5 and wire["callbackTimeout"] == 15


def test_minimal_payload_adds_no_defaults():
    assert create_call_payload(**call()) == {
        "to": "+12025550123",
        "from": "+12025550199",
        "applicationId": "04e88489-df02-4e34-a0ee-27a91849555f",
        "answerUrl": "https://cb.example.com/callbacks/answer",
    }


NULLABLE = (
    "privacy", "display_name", "uui", "answer_method", "username", "password",
    "answer_fallback_url", "answer_fallback_method", "fallback_username", "fallback_password",
    "disconnect_url", "disconnect_method", "call_timeout", "callback_timeout",
    "machine_detection", "priority", "tag",
)  # fmt: skip


def test_every_field_the_spec_marks_nullable_takes_null():
    body = {**create_call_payload(**call()), **dict.fromkeys(map(camel, NULLABLE))}
    assert CreateCallSchema().load(body) == {**call(), **dict.fromkeys(NULLABLE, None)}
    detection = dict.fromkeys(camel(name) for name in machine_detection())
    assert MachineDetectionSchema().load(detection) == dict.fromkeys(machine_detection())
    assert create_call_payload(**call(**dict.fromkeys(NULLABLE))) == create_call_payload(**call())


def test_none_means_not_set():
    assert "tag" not in create_call_payload(**call(tag=None, privacy=None))
    assert create_call_payload(**call(tag=""))["tag"] == ""  # "" clears a tag: kept


def test_machine_detection_accepts_camelcase_keys_too():
    wire = create_call_payload(**call(machine_detection={"mode": "sync", "detectionTimeout": 5}))
    assert wire["machineDetection"] == {"mode": "sync", "detectionTimeout": 5}


def test_to_json_is_compact_ascii():
    text = to_json(create_call_payload(**call(display_name="Zoë")))
    assert text.startswith('{"to":"+12025550123","from":')
    assert text.isascii()
    assert json.loads(text)["displayName"] == "Zoë"
    with pytest.raises(ValueError):
        to_json({"callTimeout": math.nan})


def test_server_load_returns_snake_case():
    body = json.loads(to_json(create_call_payload(**full_call())))

    data = CreateCallSchema().load(body)

    assert data == {**full_call(), "machine_detection": machine_detection()}
    assert data["from_"] == "+12025550199"


def test_schema_accepts_what_bandwidth_sdk_sends():
    """The sandbox receives bandwidth-sdk requests: their defaults must validate."""
    sdk = pytest.importorskip("bandwidth.models.create_call")
    body = sdk.CreateCall(
        to="+12025550123",
        var_from="+12025550199",
        application_id="04e88489-df02-4e34-a0ee-27a91849555f",
        answer_url="https://cb.example.com/callbacks/answer",
    ).to_json()

    data = CreateCallSchema().load(json.loads(body))

    assert data["answer_method"] == "POST"
    assert data["call_timeout"] == 30 and data["priority"] == 5


def test_many_and_partial_loads_use_the_same_rules():
    schema = CreateCallSchema(many=True)
    good = create_call_payload(**call())
    bad = {**good, "to": "5555551212", "extra": 1}

    with pytest.raises(ValidationError) as excinfo:
        schema.load([good, bad])

    assert excinfo.value.messages == {
        1: {"to": [excinfo.value.messages[1]["to"][0]], "extra": ["Unknown field."]}
    }
    assert CreateCallSchema(partial=True).load({"tag": "x"}) == {"tag": "x"}


##### required fields and unknown fields #####


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("to", "to"),
        ("from_", "from"),
        ("application_id", "applicationId"),
        ("answer_url", "answerUrl"),
    ],
)
def test_required_fields(name, key):
    assert errors(**{name: DROP}) == {key: ["Missing data for required field."]}
    assert errors(**{name: None}) == {key: ["Field may not be null."]}


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"bogus": 1}, "bogus"),
        ({"answerUrl": "https://cb.example.com/a"}, "answerUrl"),  # camelCase kwarg
        ({"from": "+12025550199"}, "from"),
        ({"state": "active"}, "state"),  # an Update Call field
    ],
)
def test_unknown_keywords_are_named(extra, key):
    assert errors(**extra) == {key: ["Unknown field."]}


def test_unknown_json_keys_are_named_on_load():
    body = {**create_call_payload(**call()), "from_": "+12025550199", "answer_url": "x"}
    with pytest.raises(ValidationError) as excinfo:
        CreateCallSchema().load(body)
    assert excinfo.value.messages == {"from_": ["Unknown field."], "answer_url": ["Unknown field."]}


def test_unknown_machine_detection_key():
    assert errors(machine_detection={"mode": "async", "beep": True}) == {
        "machineDetection": {"beep": ["Unknown field."]}
    }


@pytest.mark.parametrize("body", [None, [], "to=+12025550123", 42])
def test_load_rejects_non_objects(body):
    with pytest.raises(ValidationError):
        CreateCallSchema().load(body)


##### to / from #####


@pytest.mark.parametrize(
    ("to", "valid"),
    [
        ("+12025550123", True),
        ("+447911123456", True),
        ("+12", True),  # 2 digits: the shortest E.164 form allowed here
        ("+123456789012345", True),  # 15 digits
        ("sip:user@host", True),
        ("sip:alice@sip.example.com:5061;transport=tls", True),
        ("sip:+12025550123@[2001:db8::1]", True),
        ("5555551212", False),
        ("+1 202 555 0123", False),
        ("+12025550123\n", False),
        ("+0123", False),
        ("+1234567890123456", False),  # 16 digits
        ("+1", False),
        (["+12025550123"], False),
        ("", False),
        ("+١٢٠٢٥٥٥٠١٢٣", False),  # non-ASCII digits
        ("tel:+12025550123", False),
        ("sip:", False),
        ("sip:@host", False),
        ("sip:user@", False),
        ("sip:user@host\n", False),
        ("sip:us er@host", False),
        (12025550123, False),
    ],
)
def test_to(to, valid):
    assert (errors(to=to) == {}) is valid
    if not valid:
        assert list(errors(to=to)) == ["to"]


@pytest.mark.parametrize(
    "from_", ["sip:user@host", "Anonymous", "2025550199", "+12025550199\n", "+0202555019"]
)
def test_from_must_be_e164(from_):
    assert list(errors(from_=from_)) == ["from"]


##### uui #####


@pytest.mark.parametrize(
    ("uui", "valid"),
    [
        (f"{JWT};encoding=jwt,aGVsbG8gd29ybGQ;encoding=base64", True),
        ("aGVsbG8;encoding=base64", True),
        ("aGVsbG8=;encoding=base64", True),
        ("48656c6c6f;encoding=hex", True),
        ("48656c6c6f;purpose=isdn-uui;encoding=hex", True),
        (f"{JWT};encoding=jwt", True),
        ("aGVsbG8", False),  # no encoding
        ("aGVsbG8;encoding=gzip", False),
        ("aGVsbG8;encoding=BASE64", False),
        ("aGVsbG8;encoding=base64,", False),  # trailing comma: an empty value
        ("aGVsbG8;encoding=base64;purpose=x", False),  # encoding not last
        ("zz;encoding=hex", False),
        ("abc;encoding=hex", False),  # odd number of hex digits
        ("not-a-jwt;encoding=jwt", False),
        ("a b;encoding=base64", False),
        ("", False),
        ("a" * 340 + ";encoding=hex", False),  # 353 characters
        ("ab" * 168 + ";encoding=hex", True),  # 349 characters
    ],
)
def test_uui(uui, valid):
    assert (errors(uui=uui) == {}) is valid
    if not valid:
        assert list(errors(uui=uui)) == ["uui"]


##### displayName and privacy #####


@pytest.mark.parametrize(
    ("privacy", "display_name", "valid"),
    [
        (True, "Anonymous", True),
        (True, "Restricted", True),
        (True, "Private", True),
        (True, "Unavailable", True),
        (True, "Bob", False),
        (True, "anonymous", False),
        (False, "Bob", True),
        (None, "Bob", True),
        (True, None, True),
        (False, "x" * 256, True),
        (False, "x" * 257, False),
        (False, "Line\nbreak", False),
        (False, "Tab\tbed", False),
        (False, "Del\x7f", False),
        (False, "Sep\u2028", False),
        (False, "Zoë Ångström", True),
    ],
)
def test_display_name_and_privacy(privacy, display_name, valid):
    found = errors(privacy=privacy, display_name=display_name)
    assert (found == {}) is valid
    if not valid:
        assert list(found) == ["displayName"]


@pytest.mark.parametrize("privacy", [1, "true", "yes", 0])
def test_privacy_is_a_real_boolean(privacy):
    assert list(errors(privacy=privacy)) == ["privacy"]


##### URLs and credentials #####


@pytest.mark.parametrize(
    ("url", "valid"),
    [
        ("https://cb.example.com/callbacks/answer", True),
        ("http://cb.example.com/callbacks/answer", True),  # http is fine without credentials
        ("HTTPS://cb.example.com/a?x=1#y", True),
        ("https://cb.example.com:8443/a", True),
        ("https://[2001:db8::1]/a", True),
        ("https://[::1]/?q=[x]", True),
        ("https://cb.example.com/?q=[x]", False),  # brackets belong around an IPv6 host
        ("https://cb.example.com/" + "a" * (2048 - 23), True),  # exactly 2048
        ("https://cb.example.com/" + "a" * (2049 - 23), False),
        ("ftp://cb.example.com/a", False),
        ("javascript:alert(1)", False),
        ("https://", False),
        ("https:///path", False),
        ("//cb.example.com/a", False),
        ("/callbacks/answer", False),
        ("https://cb.example.com/a b", False),
        ("https://cb.example.com/a\n", False),
        ("https://cb.example.com:99999/a", False),
        ("https://[zz::1]/a", False),
        ("https://user:pw@cb.example.com/a", False),  # credentials go in username/password
        ("https://cb.example.com/ä", False),  # IRIs must be percent-encoded
        ("", False),
    ],
)
def test_url_syntax(url, valid):
    assert (errors(answer_url=url) == {}) is valid
    if not valid:
        assert list(errors(answer_url=url)) == ["answerUrl"]


def test_credentials_in_url_get_a_specific_message():
    assert errors(disconnect_url="https://u:p@cb.example.com/d") == {
        "disconnectUrl": ["Credentials belong in the username/password fields, not in the URL."]
    }


@pytest.mark.parametrize(
    ("url_field", "url_key", "credential"),
    [
        ("answer_url", "answerUrl", "username"),
        ("answer_url", "answerUrl", "password"),
        ("disconnect_url", "disconnectUrl", "username"),
        ("disconnect_url", "disconnectUrl", "password"),
        ("answer_fallback_url", "answerFallbackUrl", "fallback_username"),
        ("answer_fallback_url", "answerFallbackUrl", "fallback_password"),
    ],
)
@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("cb.example.com", False),
        ("10.0.0.5", False),
        ("128.0.0.1", False),
        ("localhost.example.com", False),
        ("[::2]", False),
        ("127.0.0.1:8000", True),
        ("127.5.6.7", True),
        ("localhost:5000", True),
        ("LOCALHOST", True),
        ("[::1]:8000", True),
        ("[0:0:0:0:0:0:0:1]", True),
    ],
)
def test_http_with_credentials_needs_https_except_on_loopback(
    url_field, url_key, credential, host, allowed
):
    found = errors(**{url_field: f"http://{host}/cb", credential: "secret"})
    if allowed:
        assert found == {}
    else:
        assert found == {url_key: [found[url_key][0]]}
        assert "https" in found[url_key][0]
    # https is always fine, and so is http without that URL's credentials
    assert errors(**{url_field: f"https://{host}/cb", credential: "secret"}) == {}
    assert errors(**{url_field: f"http://{host}/cb"}) == {}


def test_fallback_credentials_do_not_bind_the_answer_url():
    assert errors(answer_url="http://cb.example.com/a", fallback_username="u") == {}


@pytest.mark.parametrize(
    ("url_field", "url_key", "credential", "valid"),
    [
        ("callback_url", "callbackUrl", "username", False),
        ("callback_url", "callbackUrl", "fallback_username", True),
        ("fallback_url", "fallbackUrl", "fallback_password", False),
        ("fallback_url", "fallbackUrl", "password", True),
    ],
)
def test_machine_detection_urls_with_credentials(url_field, url_key, credential, valid):
    detection = {url_field: "http://amd.example.com/cb", credential: "secret"}
    found = errors(machine_detection=detection)
    if valid:
        assert found == {}
    else:
        assert list(found["machineDetection"]) == [url_key]
    loopback = {url_field: "http://127.0.0.1:8000/cb", credential: "secret"}
    assert errors(machine_detection=loopback) == {}


@pytest.mark.parametrize("name", ["username", "password", "fallback_username", "fallback_password"])
def test_credential_length(name):
    assert errors(**{name: "x" * 1024}) == {}
    assert list(errors(**{name: "x" * 1025})) == [
        {
            "username": "username",
            "password": "password",
            "fallback_username": "fallbackUsername",
            "fallback_password": "fallbackPassword",
        }[name]
    ]


##### methods, numbers, tag #####


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("answer_method", "answerMethod"),
        ("answer_fallback_method", "answerFallbackMethod"),
        ("disconnect_method", "disconnectMethod"),
    ],
)
@pytest.mark.parametrize(
    ("method", "valid"),
    [("GET", True), ("POST", True), ("get", False), ("PUT", False), ("", False), (1, False)],
)
def test_methods(name, key, method, valid):
    found = errors(**{name: method})
    assert found == ({} if valid else {key: [found.get(key, ["?"])[0]]})


@pytest.mark.parametrize(
    ("name", "value", "valid"),
    [
        ("call_timeout", 0.5, False),
        ("call_timeout", 1, True),
        ("call_timeout", 30.5, True),
        ("call_timeout", 300, True),
        ("call_timeout", 300.01, False),
        ("call_timeout", 301, False),
        ("call_timeout", math.nan, False),
        ("call_timeout", math.inf, False),
        ("call_timeout", "30", False),
        ("call_timeout", True, False),
        ("callback_timeout", 1, True),
        ("callback_timeout", 25, True),
        ("callback_timeout", 25.5, False),
        ("callback_timeout", 0, False),
        ("callback_timeout", -math.inf, False),
        ("priority", 1, True),
        ("priority", 5, True),
        ("priority", 0, False),
        ("priority", 6, False),
        ("priority", 2.0, False),
        ("priority", 2.5, False),
        ("priority", True, False),
        ("priority", "1", False),
    ],
)
def test_ranges(name, value, valid):
    key = {"call_timeout": "callTimeout", "callback_timeout": "callbackTimeout"}.get(name, name)
    found = errors(**{name: value})
    assert (found == {}) is valid
    if not valid:
        assert list(found) == [key]


def test_range_message_names_the_bounds():
    assert errors(call_timeout=301) == {"callTimeout": ["Must be between 1 and 300."]}
    assert errors(callback_timeout=math.nan) == {"callbackTimeout": ["Must be a finite number."]}


@pytest.mark.parametrize(
    ("name", "value", "valid"),
    [
        ("detection_timeout", 0, True),
        ("detection_timeout", 15.5, True),
        ("detection_timeout", -1, False),
        ("silence_timeout", math.nan, False),
        ("speech_threshold", "10", False),
        ("mode", "sync", True),
        ("mode", "SYNC", False),
        ("mode", "both", False),
        ("delay_result", 1, False),
        ("callback_method", "PATCH", False),
        ("callback_url", "ftp://amd.example.com", False),
    ],
)
def test_machine_detection_fields(name, value, valid):
    found = errors(machine_detection=machine_detection(**{name: value}))
    assert (found == {}) is valid
    if not valid:
        assert list(found) == ["machineDetection"]
        assert len(found["machineDetection"]) == 1


@pytest.mark.parametrize(
    ("tag", "valid"),
    [("", True), ("x" * 4096, True), ("x" * 4097, False), (7, False), ('{\n"a": 1\n}', True)],
)
def test_tag(tag, valid):
    assert (errors(tag=tag) == {}) is valid


def test_application_id_must_be_non_empty():
    assert list(errors(application_id="")) == ["applicationId"]
    assert list(errors(application_id="app\n")) == ["applicationId"]


def test_several_errors_are_reported_together():
    found = errors(to="5555551212", priority=9, tag=1)
    assert set(found) == {"to", "priority", "tag"}


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
    body = {WIRE_NAMES.get(name, camel(name)): item for name, item in values.items()}
    body = {key: item for key, item in body.items() if item is not None}

    from_kwargs = _messages(lambda data: create_call_payload(**data), values)
    from_json = _messages(CreateCallSchema().load, body)
    from_many = _messages(CreateCallSchema(many=True).load, [body])

    assert from_kwargs == from_json
    assert from_many == ({0: from_json} if from_json else {})


def camel(name):
    first, *rest = name.split("_")
    return first + "".join(word.title() for word in rest)


def test_machine_detection_schema_alone():
    assert MachineDetectionSchema().load({"mode": "sync"}) == {"mode": "sync"}


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
