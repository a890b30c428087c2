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


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        (None, True),
        ("", True),
        (basic("bandwidth", "wrong"), False),
        (basic("wrong", "s3cret"), False),
        (basic("bandwidth", "s3cret "), False),
        (basic("bandwidth", "pä"), False),  # non-ASCII password: 401, not a TypeError
        (basic("bandwidth", b"\xff\xfe"), False),  # not UTF-8
        ("Basic !!!", False),
        ("Basic", False),
        ("Bearer abc", False),
        ("Basic " + base64.b64encode(b"nocolon").decode(), False),
        ("Basic " + base64.b64encode(b"bandwidth:s3cret").decode() + "=", False),
        ("Basic ä", False),
    ],
)
def test_rejects_with_one_exception_type(header, missing):
    with pytest.raises(CredentialError) as caught:
        verify_basic(header, PAIRS)
    assert caught.value.missing is missing


def test_no_pairs_accept_nothing():
    with pytest.raises(CredentialError):
        verify_basic(basic("bandwidth", "s3cret"), [])


def test_parse_splits_on_first_colon():
    assert parse_basic(basic("user", "pass:with:colons")) == (b"user", b"pass:with:colons")


def test_challenge_quotes_realm():
    assert challenge('my "realm"') == 'Basic realm="my \\"realm\\"", charset="UTF-8"'


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.binary().map(lambda b: "Basic " + base64.b64encode(b).decode())))
def test_any_header_gives_a_result_or_credential_error(header):
    try:
        verify_basic(header, PAIRS)
    except CredentialError:
        pass
