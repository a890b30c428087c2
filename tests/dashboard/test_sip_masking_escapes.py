"""A SIP URI's password is masked however its separators were percent-encoded: in part (an
encoder that keeps ":" or "@"), twice (a query holding an encoded URI, encoded again), in a
JSON string or a form body; look-alikes without a password are left as they are."""

from __future__ import annotations

from urllib.parse import quote, urlencode

import pytest

from callbacks.canonical import scrub
from callbacks.redact import REDACTED, mask_passwords
from masking import mask_uri_passwords
from store import get_store
from tests.callbacks.helpers import answer_event, basic_auth

R = REDACTED


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # Only the separator escaped, or only the "@".
        ("sip:alice%3As3cret@host", f"sip:alice%3A{R}@host"),
        ("sip:bob:s3cret%40host", f"sip:bob:{R}%40host"),
        ("sips:alice%3As3cret@host", f"sips:alice%3A{R}@host"),
        ("sips:bob:s3cret%40host", f"sips:bob:{R}%40host"),
        ("SIP:alice%3as3cret@host", f"SIP:alice%3a{R}@host"),
        ("Sips:bob:s3cret%40host.example.com", f"Sips:bob:{R}%40host.example.com"),
        ("sip:alice%3As3cret%40host", f"sip:alice%3A{R}%40host"),
        # The parameters and headers after the host stay, "%40" in them too.
        (
            "sip:bob:s3cret%40host:5060;transport=tcp?Subject=a%40b",
            f"sip:bob:{R}%40host:5060;transport=tcp?Subject=a%40b",
        ),
        # JavaScript's escape() keeps "@".
        ("to=sip%3Aalice%3As3cret@host&x=1", f"to=sip%3Aalice%3A{R}@host&x=1"),
        # Encoded twice (and three times): a query holding an encoded URI, encoded again.
        ("sip%253Aalice%253As3cret%2540host", f"sip%253Aalice%253A{R}%2540host"),
        ("sip%253aalice%253as3cret%2540host", f"sip%253aalice%253a{R}%2540host"),
        (
            "next=%2Fcall%3Fto%3Dsips%253Aalice%253As3cret%2540host%26x%3D1",
            f"next=%2Fcall%3Fto%3Dsips%253Aalice%253A{R}%2540host%26x%3D1",
        ),
        ("sip%25253Aalice%25253As3cret%252540host", f"sip%25253Aalice%25253A{R}%252540host"),
        # A partly encoded URI, then encoded whole.
        ("to=sip%3Abob%3As3cret%2540host", f"to=sip%3Abob%3A{R}%2540host"),
        ("to=sip%3Aalice%253As3cret%40host", f"to=sip%3Aalice%253A{R}%40host"),
        # The password holds an "@" escaped a level deeper than the URI: it is not the end.
        ("sip%3Aalice%3As3%2540cret%40host", f"sip%3Aalice%3A{R}%40host"),
        # A JSON string in a rejected body, a form's '+', an escaped quote (twice escaped).
        ('{"to": "sip:alice%3As3cret@host"}', f'{{"to": "sip:alice%3A{R}@host"}}'),
        ('{"to":"sip:bob:s3cret%40host"}', f'{{"to":"sip:bob:{R}%40host"}}'),
        ("note=call+sip:bob:s3cret%40host", f"note=call+sip:bob:{R}%40host"),
        (
            "note=call+sip%253Aalice%253As3cret%2540host",
            f"note=call+sip%253Aalice%253A{R}%2540host",
        ),
        (
            "d=%257B%2522to%2522%253A%2522sip%253Aalice%253As3cret%2540host%2522%257D",
            f"d=%257B%2522to%2522%253A%2522sip%253Aalice%253A{R}%2540host%2522%257D",
        ),
        ("to=%3Csip:bob:s3cret%40host%3E", f"to=%3Csip:bob:{R}%40host%3E"),
        # The "@" escaped deeper than the separator (more than one level).
        ("to sip:al%253As3cret%2540pbx.example", f"to sip:al%253A{R}%2540pbx.example"),
        ("to sip:al%3As3cret%2540pbx.example", f"to sip:al%3A{R}%2540pbx.example"),
        ("to sip:al:s3cret%252540pbx.example", f"to sip:al:{R}%252540pbx.example"),
        ("sip%3Aal%3As3cret%25252540pbx", f"sip%3Aal%3A{R}%25252540pbx"),
        # The same near-misses in a URL.
        ("https://me%3As3cret%2540media.example/x", f"https://me%3A{R}%2540media.example/x"),
        ("https://me:s3cret%40media.example/x", f"https://me:{R}%40media.example/x"),
        ("https://me%253As3cret%252540media.example", f"https://me%253A{R}%252540media.example"),
        ("https://me%3As3cret@example.com/x", f"https://me%3A{R}@example.com/x"),
        (
            "u=https%253A%252F%252Fme%253As3cret%2540example.com",
            f"u=https%253A%252F%252Fme%253A{R}%2540example.com",
        ),
        # JSON text may write "@" as \u0040 (to the last one, as with "@") and "/" as \/.
        ('{"to": "sip:alice:s3cret\\u0040host"}', f'{{"to": "sip:alice:{R}\\u0040host"}}'),
        ('{"to": "sips:bob:s3\\u0040cret\\u0040h"}', f'{{"to": "sips:bob:{R}\\u0040h"}}'),
        ('"sip%3Aalice%3As3cret\\u0040host"', f'"sip%3Aalice%3A{R}\\u0040host"'),
        (
            '{"u": "https://me:s3cret\\u0040example.com"}',
            f'{{"u": "https://me:{R}\\u0040example.com"}}',
        ),
        (
            '{"u": "https:\\/\\/me:s3cret@example.com"}',
            f'{{"u": "https:\\/\\/me:{R}@example.com"}}',
        ),
        (
            '{"u": "https:\\/\\/me:s3cret\\u0040example.com\\/x"}',
            f'{{"u": "https:\\/\\/me:{R}\\u0040example.com\\/x"}}',
        ),
        # A host and its port before an escaped "@" reads as a user and a short numeric
        # password (sip:alice:1234%40pbx): masked, as a password would be.
        ("sip:host:5060%40x", f"sip:host:{R}%40x"),
        ("sips:sbc.example.com:5061%40x", f"sips:sbc.example.com:{R}%40x"),
        ("sip:alice:1234%40pbx", f"sip:alice:{R}%40pbx"),
        ("sip:+12025550100:5060%40pbx", f"sip:+12025550100:{R}%40pbx"),
        ("sip:alice:70000%40pbx", f"sip:alice:{R}%40pbx"),
        ("sip:alice:0042%40pbx", f"sip:alice:{R}%40pbx"),
        ("sip%3Ahost%3A5060%40pbx", f"sip%3Ahost%3A{R}%40pbx"),
        ("sip:host:5060@pbx", f"sip:host:{R}@pbx"),
        ('{"to": "sip:host:5060\\u0040pbx"}', f'{{"to": "sip:host:{R}\\u0040pbx"}}'),
    ],
)
def test_a_partly_or_twice_encoded_sip_password_is_masked(text, shown):
    assert mask_passwords(text) == shown
    assert mask_passwords(shown) == shown
    assert "s3cret" not in scrub(text)  # the regression export


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice@host",
        "sip:+15551234567@host;user=phone",
        "sips:+15551234567@host:5061;user=phone",
        "mail alice%40example.com about it",
        "to=alice%40example.com&x=sip%3Ahost%3A5060",
        "sip%3Aalice%40host",
        "sip%253Aalice%2540host",
        "sip:alice%40corp@host",
        "sip:alice%3Acorp",  # an escaped ':' but no host
        "sip:host:5060;transport=tcp?Replaces=abc%40host",  # '%40' in a header, not the host's
        "sip%3Ahost%3A5060%3FReplaces%3Dabc%2540host",
        "to=sip:host:5060&note=mail%40example.com",  # a query's next field
        "gossip:alice%3As3cret@host",
        "100%40 done",
        # A number's "@" written \u0040 in JSON text; an escaped backslash before "u0040".
        '{"to": "sip:+15551234567\\u0040host"}',
        '{"to": "sip:alice\\u0040host:5060;transport=tcp"}',
        '{"to": "sip:alice:s3cret\\\\u0040host"}',
    ],
)
def test_look_alikes_without_a_password_are_left_as_they_are(text):
    assert mask_passwords(text) == text
    assert mask_uri_passwords(text) == text


def test_a_rejected_query_holding_an_encoded_uri_is_shown_masked(operator, client, app):
    """A GET callback's query whose ``next`` holds a query with a SIP URI: the URI is
    encoded twice in what is stored."""
    inner = urlencode({"to": "sip:callee:twice-secret@pbx"})
    partial = "sip:callee:partial-secret%40pbx"  # as an encoder that keeps ':' writes it
    event = {"next": f"/call?{inner}", "tag": partial, **answer_event(startTime="yesterday")}
    query = urlencode(event, quote_via=quote)  # first: the page shows a body's start
    assert "sip%253Acallee%253Atwice-secret%2540pbx" in query
    response = client.get(f"/callbacks/answer?{query}", headers=basic_auth())
    assert response.status_code == 422
    with app.app_context():
        stored = str(get_store().rejected())
    assert "twice-secret" in stored and "partial-secret" in stored  # kept as sent

    page = operator.get("/dashboard/rejected").get_data(as_text=True)
    assert "twice-secret" not in page and "partial-secret" not in page
    assert f"sip%253Acallee%253A{R}%2540pbx" in page  # the user and host stay
    assert f"sip%3Acallee%3A{R}%2540pbx" in page
