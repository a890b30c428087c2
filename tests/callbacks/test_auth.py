"""callbacks.auth: Basic parsing and constant-time checks, fail-closed on every input."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbacks.auth import CredentialError, challenge, encode_pairs, parse_basic, verify_basic

PAIRS = encode_pairs([("bandwidth", "s3cret"), ("next", "rotated-pä")])


def basic(user: str | bytes, password: str | bytes) -> str:
    raw = (user.encode() if isinstance(user, str) else user) + b":"
    raw += password.encode() if isinstance(password, str) else password
    return "Basic " + base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    "header",
    [
        basic("bandwidth", "s3cret"),
        basic("next", "rotated-pä"),
        "basic " + basic("next", "rotated-pä")[6:],
    ],
)
def test_accepts_every_configured_pair(header):
    assert verify_basic(header, PAIRS) in (b"bandwidth", b"next")


WRONG = "wrong username or password"
NOT_BASIC = "Authorization is not HTTP Basic"


@pytest.mark.parametrize(
    ("header", "missing", "message"),
    [
        (None, True, "no Authorization header"),
        ("", True, "no Authorization header"),
        (basic("bandwidth", "wrong"), False, WRONG),
        (basic("wrong", "s3cret"), False, WRONG),
        (basic("bandwidth", "s3cret "), False, WRONG),
        (basic("bandwidth", "pä"), False, WRONG),  # non-ASCII password: 401, not a TypeError
        (basic("bandwidth", b"\xff\xfe"), False, "malformed Basic credentials: UnicodeDecodeError"),
        ("Basic !!!", False, "malformed Basic credentials: Error"),
        ("Basic", False, NOT_BASIC),
        ("Basic ", False, NOT_BASIC),
        ("Bearer abc", False, NOT_BASIC),
        ("Bearer " + basic("bandwidth", "s3cret")[6:], False, NOT_BASIC),
        ("Basic " + base64.b64encode(b"nocolon").decode(), False, "Basic credentials have no ':'"),
        (basic("bandwidth", "s3cret") + "=", False, "malformed Basic credentials: Error"),
        (basic("bandwidth", "s3cret") + " x", False, "malformed Basic credentials: Error"),
        ("Basic ä", False, "malformed Basic credentials: UnicodeEncodeError"),
    ],
)
def test_rejects_with_one_exception_type(header, missing, message):
    with pytest.raises(CredentialError) as caught:
        verify_basic(header, PAIRS)
    assert caught.value.missing is missing
    assert str(caught.value) == message


def test_spaces_around_the_credentials_are_allowed():
    token = basic("bandwidth", "s3cret")[6:]
    assert verify_basic(f"  Basic  {token} ", PAIRS) == b"bandwidth"


def test_pairs_are_encoded_as_utf8():
    assert encode_pairs([("bändwidth", "pä:ss")]) == [("bändwidth".encode(), "pä:ss".encode())]
    assert verify_basic(basic("bändwidth", "pä:ss"), encode_pairs([("bändwidth", "pä:ss")]))


def test_no_pairs_accept_nothing():
    with pytest.raises(CredentialError):
        verify_basic(basic("bandwidth", "s3cret"), [])


def test_parse_splits_on_first_colon():
    assert parse_basic(basic("user", "pass:with:colons")) == (b"user", b"pass:with:colons")


def test_challenge_quotes_realm():
    assert challenge('my "realm"') == 'Basic realm="my \\"realm\\"", charset="UTF-8"'
    assert challenge('a\\"b') == 'Basic realm="a\\\\\\"b", charset="UTF-8"'


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.binary().map(lambda b: "Basic " + base64.b64encode(b).decode())))
def test_any_header_gives_a_result_or_credential_error(header):
    try:
        verify_basic(header, PAIRS)
    except CredentialError:
        pass
