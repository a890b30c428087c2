"""Create Call schema: each negative case changes exactly one field."""

from __future__ import annotations

import json
import math

import pytest
from marshmallow import ValidationError

from calls import (
    CreateCallSchema,
    MachineDetectionSchema,
    create_call_payload,
    to_json,
)
from calls.fields import camelcase
from tests.calls.schema_payloads import DROP, JWT, call, errors, full_call, machine_detection

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
    body = {**create_call_payload(**call()), **dict.fromkeys(map(camelcase, NULLABLE))}
    assert CreateCallSchema().load(body) == {**call(), **dict.fromkeys(NULLABLE, None)}
    detection = dict.fromkeys(camelcase(name) for name in machine_detection())
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
