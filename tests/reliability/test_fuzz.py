"""B21: fuzzed callbacks (routes, methods, Authorization, content types, bodies, queries)
through the Flask test client, and fuzzed documents through ``bxml.parse``.

Bounded: 500 examples each, no example database.  Callbacks only ever get 2xx or 4xx;
``bxml.parse`` only ever raises ``bxml.BxmlError``.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bxml
from callbacks.events import EVENT_TYPES
from tests.callbacks.helpers import basic_auth
from tests.conftest import CALLBACK_PASSWORD, CALLBACK_USER
from tests.reliability.harness import TALLY

FUZZ = settings(
    max_examples=500,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ROUTES = [
    "answer",
    "disconnect",
    "gather",
    "answer-fallback",
    "conference",
    "transcription",
    "stream",
    "recordingComplete",
    "transferAnswer",
    "no-such-route",
]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/cloudevents+json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "",
]

header_text = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"),
    max_size=60,
)


def _basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


VALID_AUTH = basic_auth()["Authorization"]
wrong_authorization = st.one_of(
    st.none(),
    header_text,
    st.binary(max_size=40).map(_basic),
    st.text(max_size=30).map(lambda t: _basic(t.encode("utf-8", "surrogatepass"))),
    st.tuples(
        st.sampled_from(["Basic", "basic", "BASIC", "Bearer", "Digest", ""]), header_text
    ).map(" ".join),
    st.sampled_from(
        [
            _basic(f"{CALLBACK_USER}:{CALLBACK_PASSWORD}ä".encode()),
            _basic(f"{CALLBACK_USER}:{CALLBACK_PASSWORD}".encode("utf-16")),
            _basic(f"{CALLBACK_USER}:".encode()),
            _basic(b":"),
            "Basic "
            + base64.b64encode(f"{CALLBACK_USER}:{CALLBACK_PASSWORD}".encode()).decode()[:-2],
        ]
    ),
)
# Mostly valid, so that most bodies get past the credentials and are parsed.
authorization = st.integers(0, 9).flatmap(
    lambda n: st.just(VALID_AUTH) if n < 7 else wrong_authorization
)
ROUTE_EVENT = {
    "conference": "conferenceCreated",
    "transcription": "realTimeTranscriptionError",
    "stream": "mediaStreamStarted",
    "recordingComplete": "recordComplete",
    "answer-fallback": "answer",
    "no-such-route": "answer",
}

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
event_like = st.fixed_dictionaries(
    {
        "eventType": st.one_of(st.sampled_from(sorted(EVENT_TYPES)), json_scalars),
        "callId": st.one_of(st.text(max_size=60), json_scalars),
    },
    optional={
        "conferenceId": st.text(max_size=30),
        "name": st.text(max_size=30),
        "eventTime": st.one_of(st.just("2019-06-20T15:54:25.435Z"), json_scalars),
        "from": st.one_of(st.just("+12025550100"), json_scalars),
        "to": st.one_of(st.just("+12025550123"), json_scalars),
        "tag": json_values,
        "cause": json_scalars,
        "errorMessage": json_scalars,
        "sipResponseCode": json_scalars,
        "machineDetectionResult": json_values,
        "digits": json_scalars,
        "endTime": json_scalars,
        "extra": json_values,
    },
)


def _dump(value: Any, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


bodies = st.one_of(
    st.tuples(event_like, st.booleans()).map(lambda v: _dump(*v)),
    st.tuples(event_like, st.booleans()).map(lambda v: _dump(*v)),
    st.tuples(json_values, st.booleans()).map(lambda v: _dump(*v)),
    st.binary(max_size=300),
    st.tuples(event_like, st.binary(max_size=8)).map(lambda v: _dump(v[0], True) + v[1]),
)
queries = st.one_of(
    event_like.map(lambda e: {k: v if isinstance(v, str) else json.dumps(v) for k, v in e.items()}),
    st.dictionaries(st.text(max_size=15), st.text(max_size=30), max_size=6),
)


STATUSES: Counter[int] = Counter()


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory):
    from app import create_app

    directory = tmp_path_factory.mktemp("fuzz")
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "fuzz-secret",
            "DATABASE_URL": f"sqlite:///{directory / 'events.db'}",
            "SPOOL_PATH": str(directory / "spool.jsonl"),
            "CALLBACK_USERNAME": CALLBACK_USER,
            "CALLBACK_PASSWORD": CALLBACK_PASSWORD,
            "DASHBOARD_PASSWORD": "fuzz-dashboard",
            "VOICE_BACKEND": "bandwidth",
            "BW_ACCOUNT_ID": "9900000",
            "BW_USERNAME": "u",
            "BW_PASSWORD": "p",
            "BW_APPLICATION_ID": "a",
            "BW_FROM_NUMBER": "+12025550100",
            "BW_VOICE_API_URL": "http://127.0.0.1:9/api/v2",
            "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
        }
    )
    yield app.test_client()
    if STATUSES:
        seen = ", ".join(f"{status}x{n}" for status, n in sorted(STATUSES.items()))
        TALLY.note(f"fuzzed callbacks answered {seen}", row="B21")


@pytest.mark.row("B21")
@FUZZ
@given(
    route=st.sampled_from(ROUTES),
    method=st.sampled_from(["POST", "POST", "GET"]),
    auth=authorization,
    content_type=st.sampled_from(CONTENT_TYPES),
    body=bodies,
    query=queries,
    matching=st.booleans(),
)
def test_fuzzed_callbacks_get_only_2xx_or_4xx(
    fuzz_client, route, method, auth, content_type, body, query, matching
):
    headers = {} if auth is None else {"Authorization": auth}
    if matching:
        # Often the eventType of the route, so that handlers and the store run too.
        event = ROUTE_EVENT.get(route, route)
        payload = _loads(body)
        if isinstance(payload, dict):
            payload["eventType"] = event
            body = json.dumps(payload).encode("utf-8", "surrogatepass")
        query = {**query, "eventType": event}
    if method == "POST":
        if content_type:
            headers["Content-Type"] = content_type
        reply = fuzz_client.post(f"/callbacks/{route}", data=body, headers=headers)
    else:
        reply = fuzz_client.get(f"/callbacks/{route}", query_string=query, headers=headers)
    TALLY.sent(1)
    STATUSES[reply.status_code] += 1
    assert reply.status_code < 500, reply.get_data(as_text=True)[:500]
    if reply.status_code == 401:
        assert reply.headers["WWW-Authenticate"].startswith("Basic realm=")


def _loads(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


# --- bxml.parse ------------------------------------------------------------------------------------

VERB_NAMES = [
    "Response", "Bxml", "SpeakSentence", "Gather", "Hangup", "Pause", "PlayAudio", "Record",
    "Redirect", "Transfer", "PhoneNumber", "SipUri", "Tag", "Ring", "SendDtmf", "Conference",
    "Bridge", "StartGather", "StopGather", "StartStream", "StreamParam", "StartTranscription",
    "CustomParam", "Forward", "Refer", "emphasis", "break", "prosody", "Bogus", "x:Hangup",
]  # fmt: skip
ATTRIBUTE_NAMES = [
    "duration", "gatherUrl", "gatherMethod", "maxDigits", "username", "password", "tag",
    "voice", "locale", "gender", "transferCallerId", "redirectUrl", "url", "callTimeout",
    "firstDigitTimeout", "terminatingDigits", "repeatCount", "name", "value", "digits",
    "time", "level", "rate", "xmlns", "xmlns:x", "bogus",
]  # fmt: skip
attribute_values = st.one_of(
    st.text(max_size=20),
    st.integers(-5, 400).map(str),
    st.sampled_from(["true", "false", "https://a.example/x", "/rel", "+12025550123", "1s", ""]),
)
leaves = st.tuples(st.sampled_from(VERB_NAMES), st.just({}), st.text(max_size=30), st.just([]))
trees = st.recursive(
    leaves,
    lambda children: st.tuples(
        st.sampled_from(VERB_NAMES),
        st.dictionaries(st.sampled_from(ATTRIBUTE_NAMES), attribute_values, max_size=3),
        st.text(max_size=30),
        st.lists(children, max_size=3),
    ),
    max_leaves=10,
)


def _render(tree: Any) -> str:
    tag, attrs, text, children = tree
    rendered = "".join(f" {name}={quoteattr(value)}" for name, value in attrs.items())
    inner = escape(text) + "".join(_render(child) for child in children)
    return f"<{tag}{rendered}>{inner}</{tag}>"


documents = st.one_of(
    st.tuples(st.sampled_from(["Response", "Bxml"]), st.lists(trees, max_size=4)).map(
        lambda v: f"<{v[0]}>" + "".join(_render(t) for t in v[1]) + f"</{v[0]}>"
    ),
    trees.map(_render),
    st.tuples(
        st.sampled_from(
            [
                '<?xml version="1.0" encoding="UTF-8"?>\n',
                '<?xml version="1.0" encoding="ISO-8859-1"?>',
                '<!DOCTYPE Response [<!ENTITY x "xx">]>',
                '<!DOCTYPE r SYSTEM "file:///etc/hostname">',
                "\ufeff",
                "",
            ]
        ),
        trees.map(_render),
        st.sampled_from(["", "&x;", "<", "</Response>", "\x00", "]]>"]),
    ).map("".join),
    st.text(max_size=200),
    st.binary(max_size=300),
)


@pytest.mark.row("B21")
@FUZZ
@given(document=documents, as_bytes=st.booleans())
def test_fuzzed_documents_raise_only_bxml_error(document, as_bytes):
    if as_bytes and isinstance(document, str):
        document = document.encode("utf-8", "surrogatepass")
    try:
        parsed = bxml.parse(document)
    except bxml.BxmlError:
        return
    # Whatever parses renders, and parses back equal.
    assert bxml.parse(parsed.to_bxml()) == parsed
