"""Bad inputs tried (B1-B20; B21 fuzzing is in test_fuzz.py).

Server rows go to the real app under gunicorn (the shared main server: 4 workers,
TRUSTED_HOSTS=127.0.0.1, click-to-call to a fake Bandwidth API); B11-B12 go to bxml.
Each bad input gets its stated 4xx, never a 5xx, and stores nothing as an event.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator

import pytest
import requests
from marshmallow import ValidationError

import bxml
from bxml import Gather, Redirect, Response, SpeakSentence, Tag
from tests.callbacks.helpers import ABSENT, answer_event, basic_auth, disconnect_event
from tests.calls.fake_bandwidth import Reply, created_call
from tests.conftest import CALLBACK_PASSWORD, CALLBACK_USER
from tests.reliability.harness import (
    JSON,
    TALLY,
    Http,
    click_to_call,
    csrf_token,
    deliver,
    reset,
    rows,
    scalar,
    stored_counts,
)

pytestmark = pytest.mark.slow


def count_events(url: str) -> int:
    return int(scalar(url, "SELECT count(*) FROM events"))


@pytest.fixture
def nothing_stored(main_env) -> Iterator[None]:
    """The test must leave the events table as it found it."""
    url = main_env["DATABASE_URL"]
    before = count_events(url)
    yield
    assert count_events(url) == before, "a bad input was stored as an event"
    TALLY.events(acked=0, stored=0, lost=0)


@pytest.fixture
def bandwidth(main_bandwidth):
    reset(main_bandwidth)
    yield main_bandwidth
    reset(main_bandwidth)


def post_raw(base: str, body, content_type: str = "application/json", route="disconnect"):
    with Http() as http:
        return http.post(
            f"{base}/callbacks/{route}",
            data=body,
            headers={"Content-Type": content_type, **basic_auth()},
        )


def body_of(**overrides) -> bytes:
    return json.dumps(disconnect_event(**overrides)).encode()


# --- B1-B7: malformed requests -----------------------------------------------------------------

MALFORMED = [
    pytest.param(b"{not json", "application/json", 400, "malformed JSON", marks=pytest.mark.row("B1"), id="B1-malformed"),
    pytest.param(b"", "application/json", 400, "empty body", marks=pytest.mark.row("B1"), id="B1-empty"),
    pytest.param(body_of(), "text/plain", 415, "Content-Type", marks=pytest.mark.row("B2"), id="B2-text"),
    pytest.param(b"eventType=disconnect&callId=c-1", "application/x-www-form-urlencoded", 415, "Content-Type", marks=pytest.mark.row("B2"), id="B2-form"),
    pytest.param(b"[" * 7000 + b"]" * 7000, "application/json", 400, "nested too deeply", marks=pytest.mark.row("B4"), id="B4-arrays"),
    pytest.param(b'{"a":' * 5000 + b"1" + b"}" * 5000, "application/json", 400, "nested too deeply", marks=pytest.mark.row("B4"), id="B4-objects"),
    pytest.param(b'[{"eventType": "disconnect", "callId": "c-1"}]', "application/json", 400, "got list", marks=pytest.mark.row("B5"), id="B5-array"),
    pytest.param(b'"disconnect"', "application/json", 400, "got str", marks=pytest.mark.row("B5"), id="B5-string"),
    pytest.param(b"42", "application/json", 400, "got int", marks=pytest.mark.row("B5"), id="B5-number"),
    pytest.param(b"null", "application/json", 400, "got NoneType", marks=pytest.mark.row("B5"), id="B5-null"),
    pytest.param(body_of(callId=ABSENT), "application/json", 422, "callId", marks=pytest.mark.row("B6"), id="B6-no-callId"),
    pytest.param(body_of(callId=42), "application/json", 422, "callId", marks=pytest.mark.row("B6"), id="B6-int-callId"),
    pytest.param(body_of(callId=["c-1"]), "application/json", 422, "callId", marks=pytest.mark.row("B6"), id="B6-list-callId"),
    pytest.param(body_of(eventType=ABSENT), "application/json", 422, "eventType", marks=pytest.mark.row("B6"), id="B6-no-eventType"),
    pytest.param(body_of(eventType=7), "application/json", 422, "eventType", marks=pytest.mark.row("B6"), id="B6-int-eventType"),
    pytest.param(body_of(eventType="answer"), "application/json", 422, "not accepted at /callbacks/disconnect", marks=pytest.mark.row("B6"), id="B6-wrong-route"),
    pytest.param(b'{"eventType": "disconnect", "callId": "c-\xff\xfe"}', "application/json", 400, "not valid UTF-8", marks=pytest.mark.row("B7"), id="B7-utf8"),
    pytest.param(b'{"eventType": "disconnect", "callId": "c-1", "n": ' + b"9" * 5000 + b"}", "application/json", 400, "malformed JSON", marks=pytest.mark.row("B7"), id="B7-huge-int"),
    pytest.param(b'{"eventType": "disconnect", "callId": "c-1", "x": NaN}', "application/json", 400, "NaN", marks=pytest.mark.row("B7"), id="B7-NaN"),
    pytest.param(b'{"eventType": "disconnect", "callId": "c-1", "x": -Infinity}', "application/json", 400, "Infinity", marks=pytest.mark.row("B7"), id="B7-Infinity"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "content_type", "status", "message"), MALFORMED)
def test_malformed_callbacks_get_their_4xx(
    main_server, nothing_stored, body, content_type, status, message
):
    reply = post_raw(main_server.base, body, content_type)
    assert reply.status_code == status, reply.text[:300]
    assert message in reply.text


def _rejected_count(url: str) -> int:
    return int(scalar(url, "SELECT count(*) FROM rejected_requests"))


def _chunks(body: bytes) -> Iterator[bytes]:
    """A generator body: requests sends it with Transfer-Encoding: chunked."""
    return iter([body[i : i + 8192] for i in range(0, len(body), 8192)])


@pytest.mark.row("B3")
def test_body_over_the_limit_is_413(main_server, main_env, nothing_stored):
    big = body_of(errorMessage="x" * (64 * 1024))
    assert len(big) > 64 * 1024 + 1
    before = _rejected_count(main_env["DATABASE_URL"])
    try:
        reply = post_raw(main_server.base, big)
    except requests.ConnectionError:
        pytest.fail("the server hung up instead of answering 413")
    assert reply.status_code == 413
    last = rows(
        main_env["DATABASE_URL"],
        "SELECT status FROM rejected_requests ORDER BY id DESC LIMIT 1",
    )
    assert last == [{"status": 413}]
    assert _rejected_count(main_env["DATABASE_URL"]) == before + 1


@pytest.mark.row("B3")
def test_chunked_body_over_the_limit_is_refused_without_a_5xx(main_server, nothing_stored):
    big = body_of(errorMessage="x" * (64 * 1024))
    reply = post_raw(main_server.base, _chunks(big))
    assert 400 <= reply.status_code < 500


@pytest.mark.row("B3")
def test_chunked_body_over_the_limit_is_413(main_server, main_env):
    payload = disconnect_event(callId=f"c-b3-chunked-{uuid.uuid4().hex[:8]}")
    padded = json.dumps(payload).encode() + b" " * (100 * 1024)
    with_length = post_raw(main_server.base, padded)
    assert with_length.status_code == 413  # the same bytes with a Content-Length
    reply = post_raw(main_server.base, _chunks(padded))
    assert reply.status_code == 413
    assert stored_counts(main_env["DATABASE_URL"], payload["callId"]) == {}


@pytest.mark.row("B3")
def test_body_at_the_limit_is_accepted(main_server, main_env):
    payload = disconnect_event(callId=f"c-b3-{uuid.uuid4().hex[:8]}")
    payload["errorMessage"] = "x"
    filler = 64 * 1024 - len(json.dumps(payload).encode())
    payload["errorMessage"] = "x" * (filler + 1)
    body = json.dumps(payload).encode()
    assert len(body) == 64 * 1024
    assert post_raw(main_server.base, body).status_code == 204
    assert stored_counts(main_env["DATABASE_URL"], payload["callId"]) == {payload["callId"]: 1}
    TALLY.events(acked=1, stored=1, lost=0)


@pytest.mark.row("B7")
def test_bom_and_duplicate_keys_are_accepted_as_documented(main_server, main_env):
    bom = disconnect_event(callId=f"c-b7-bom-{uuid.uuid4().hex[:8]}")
    reply = post_raw(main_server.base, b"\xef\xbb\xbf" + json.dumps(bom).encode())
    assert reply.status_code == 204
    first, last = f"c-b7-dup1-{uuid.uuid4().hex[:8]}", f"c-b7-dup2-{uuid.uuid4().hex[:8]}"
    duplicated = json.dumps(disconnect_event(callId=first))[:-1] + f', "callId": "{last}"}}'
    assert post_raw(main_server.base, duplicated.encode()).status_code == 204
    url = main_env["DATABASE_URL"]
    assert stored_counts(url, bom["callId"]) == {bom["callId"]: 1}
    assert stored_counts(url, last) == {last: 1}  # the last key wins
    assert stored_counts(url, first) == {}
    TALLY.events(acked=2, stored=2, lost=0)


# --- B8-B10: credentials -------------------------------------------------------------------------


def basic(raw: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


CREDENTIALS = [
    pytest.param({}, marks=pytest.mark.row("B8"), id="B8-none"),
    pytest.param(basic(b"someone:" + CALLBACK_PASSWORD.encode()), marks=pytest.mark.row("B9"), id="B9-wrong-user"),
    pytest.param(basic(CALLBACK_USER.encode() + b":wrong"), marks=pytest.mark.row("B9"), id="B9-wrong-password"),
    pytest.param({"Authorization": "Basic !!!"}, marks=pytest.mark.row("B9"), id="B9-not-base64"),
    pytest.param({"Authorization": "Bearer x"}, marks=pytest.mark.row("B9"), id="B9-bearer"),
    pytest.param({"Authorization": "Basic "}, marks=pytest.mark.row("B9"), id="B9-empty"),
    pytest.param(basic(CALLBACK_USER.encode() + CALLBACK_PASSWORD.encode()), marks=pytest.mark.row("B9"), id="B9-no-colon"),
    pytest.param(basic(CALLBACK_USER.encode() + b":\xff\xfe" + CALLBACK_PASSWORD.encode()), marks=pytest.mark.row("B9"), id="B9-not-utf8"),
    pytest.param(basic("u:pä".encode()), marks=pytest.mark.row("B10"), id="B10-u:pä-utf8"),
    pytest.param(basic("u:pä".encode("latin-1")), marks=pytest.mark.row("B10"), id="B10-u:pä-latin1"),
    pytest.param(basic(f"{CALLBACK_USER}:{CALLBACK_PASSWORD}ä".encode()), marks=pytest.mark.row("B10"), id="B10-password+ä"),
    pytest.param(basic(f"{CALLBACK_USER}ä:{CALLBACK_PASSWORD}".encode()), marks=pytest.mark.row("B10"), id="B10-user+ä"),
]  # fmt: skip


@pytest.mark.parametrize("auth", CREDENTIALS)
@pytest.mark.parametrize("method", ["POST", "GET"])
def test_missing_or_wrong_credentials_get_the_challenge(main_server, nothing_stored, auth, method):
    payload = answer_event(callId=f"c-auth-{uuid.uuid4().hex[:8]}")
    with Http() as http:
        if method == "POST":
            reply = deliver(http, main_server.base, "answer", payload, auth=auth)
        else:
            reply = http.get(f"{main_server.base}/callbacks/answer", params=payload, headers=auth)
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"].startswith('Basic realm="')


# --- B11-B12: BXML text and attributes -------------------------------------------------------------

SPECIAL = [
    "< > & \" ' ]]>",
    "</SpeakSentence><Transfer><PhoneNumber>+882345</PhoneNumber></Transfer><SpeakSentence>",
    "</Tag><Hangup/><Tag>",
    '" onx="<Hangup/>',
    "&amp; &lt; &#x3C; <![CDATA[<Hangup/>]]>",
]


@pytest.mark.row("B11")
@pytest.mark.parametrize("text", SPECIAL)
def test_xml_special_text_is_escaped_and_round_trips(text):
    doc = Response(
        SpeakSentence(f"Say {text}"),
        Tag(text),
        Redirect(redirect_url="/next", tag=text, username=text, password=text),
    )
    out = doc.to_bxml()
    parsed = bxml.parse(out)
    assert [verb.name for verb in parsed] == ["SpeakSentence", "Tag", "Redirect"]
    assert [verb.children for verb in parsed] == [[], [], []]
    assert parsed[0].text == f"Say {text}"
    assert parsed[1].text == text
    assert parsed[2].attrs["tag"] == text and parsed[2].attrs["password"] == text
    assert parsed == doc
    assert "<Transfer" not in out and "<Hangup" not in out


CONTROL = ["\x00", "\x01", "\x0b", "\x1f", "\ufffe", "\ud800"]


@pytest.mark.row("B12")
@pytest.mark.parametrize("char", CONTROL, ids=[f"U+{ord(c):04X}" for c in CONTROL])
def test_control_characters_are_a_bxml_error(char):
    builds = [
        lambda: SpeakSentence(f"a{char}b"),
        lambda: Tag(f"a{char}b"),
        lambda: Redirect(redirect_url="/next", tag=f"a{char}b"),
        lambda: Gather(gather_url=f"https://cb.example/g{char}"),
        lambda: Response(SpeakSentence("ok"), Tag(f"{char}")),
    ]
    for build in builds:
        with pytest.raises(bxml.BxmlError):
            build()
    if char not in ("\ud800",):
        reference = f"&#x{ord(char):X};"
        with pytest.raises(bxml.BxmlError):
            bxml.parse(f"<Response><SpeakSentence>a{reference}b</SpeakSentence></Response>")


@pytest.mark.row("B12")
def test_control_characters_in_a_callback_never_give_a_5xx(main_server, main_env):
    """A tag or errorMessage with control characters: accepted or 4xx, never 500."""
    with Http() as http:
        for char in ["\x01", "\x0b", "\x1f", "\ufffe"]:
            payload = answer_event(callId=f"c-b12-{uuid.uuid4().hex[:8]}", tag=f"a{char}b")
            reply = deliver(http, main_server.base, "answer", payload)
            assert reply.status_code in (200, 400, 422), reply.text[:300]
            if reply.status_code == 200:
                bxml.parse(reply.content)


# --- B13-B16, B18: click-to-call ---------------------------------------------------------------------

# The form reads numbers the way people type them ("(202) 555-0123", and phonenumbers even
# finds +12025550123 inside '["+12025550123"]'), so these are what it must refuse; the
# strict E.164 layer underneath is tested through place_call below.
INVALID_NUMBERS = ["5555551212", "+0123", "+1234567890123456", "+1202555", "", "abc", "+1 900"]
DENIED_NUMBERS = ["+18765551234", "+18095551234", "+19005551234", "+447911123456"]


@pytest.mark.row("B13")
@pytest.mark.parametrize("number", INVALID_NUMBERS)
def test_invalid_numbers_are_422_and_place_no_call(main_server, bandwidth, nothing_stored, number):
    with Http() as visitor:
        reply = click_to_call(visitor, main_server.base, number)
    assert reply.status_code == 422
    assert bandwidth.count == 0


@pytest.mark.row("B13")
@pytest.mark.parametrize(
    "number",
    ["5555551212", "+1 202 555 0123", "+12025550123\n", "+0123", "+1234567890123456", "", ["+12025550123"]],
)  # fmt: skip
def test_place_call_refuses_what_is_not_e164(main_env, bandwidth, tmp_path, number):
    """The strict layer under the form (calls.schemas via calls.outbound.place_call)."""
    from app import create_app
    from calls.outbound import place_call

    app = create_app(
        {
            **main_env,
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'b13.db'}",
            "SPOOL_PATH": str(tmp_path / "b13.jsonl"),
        }
    )
    with app.app_context(), pytest.raises(ValidationError) as caught:
        place_call(to=number)
    assert "to" in caught.value.messages
    assert bandwidth.count == 0


@pytest.mark.row("B14")
@pytest.mark.parametrize("number", DENIED_NUMBERS)
def test_policy_denied_numbers_are_422(main_server, bandwidth, nothing_stored, number):
    with Http() as visitor:
        reply = click_to_call(visitor, main_server.base, number)
    assert reply.status_code == 422
    assert "premium-rate" in reply.text or "only call numbers in" in reply.text
    assert bandwidth.count == 0


@pytest.mark.row("B15")
@pytest.mark.parametrize("token", ["missing", "bad", "another-session"])
def test_click_to_call_without_a_valid_csrf_token_is_400(main_server, bandwidth, token):
    base = main_server.base
    with Http() as visitor, Http() as attacker:
        visitor.get(f"{base}/click-to-call")
        data = {"number": "+12025550123"}
        if token == "bad":
            data["csrf_token"] = "IjEyMyI.bad.token"
        elif token == "another-session":
            data["csrf_token"] = csrf_token(attacker.get(f"{base}/click-to-call").text)
        reply = visitor.post(
            f"{base}/click-to-call",
            data=data,
            headers={"Origin": "http://evil.example", "Referer": "http://evil.example/x"},
            allow_redirects=False,
        )
    assert reply.status_code == 400
    assert bandwidth.count == 0


@pytest.mark.row("B15")
def test_session_cookie_is_not_sent_cross_site(main_server):
    with Http() as visitor:
        reply = visitor.get(f"{main_server.base}/click-to-call")
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.row("B18")
@pytest.mark.parametrize(
    ("extra", "query"),
    [
        ({"answerUrl": "https://evil.example/answer"}, None),
        ({"to": "+19005551234"}, None),
        ({"tag": "x", "from": "+12025550199", "disconnectUrl": "https://evil.example/"}, None),
        ({}, {"answerUrl": "https://evil.example/"}),
    ],
    ids=["answerUrl", "to", "several", "query"],
)
def test_extra_form_fields_are_refused_by_name(main_server, bandwidth, extra, query):
    base = main_server.base
    with Http() as visitor:
        page = visitor.get(f"{base}/click-to-call")
        data = {"number": "+12025550123", "csrf_token": csrf_token(page.text), **extra}
        reply = visitor.post(
            f"{base}/click-to-call", data=data, params=query, allow_redirects=False
        )
    assert reply.status_code == 422
    assert "Unknown field" in reply.text
    for name in {**extra, **(query or {})}:
        assert name in reply.text
    assert bandwidth.count == 0


@pytest.mark.row("B16")
def test_rate_limit_holds_across_four_workers(main_server, main_env, bandwidth):
    """CLICK_TO_CALL_RATE_PER_ADDRESS (default 5/hour) from six visitors at once."""
    limit = 5
    assert len(main_server.workers()) == 4
    bandwidth.script(*(Reply(201, created_call(callId=f"c-b16-{n}")) for n in range(limit)))
    base = main_server.base
    visitors = [Http() for _ in range(limit + 1)]
    tokens = [csrf_token(v.get(f"{base}/click-to-call").text) for v in visitors]
    barrier = threading.Barrier(len(visitors))
    replies: list[requests.Response] = []

    def ask(index: int) -> None:
        barrier.wait(timeout=10)
        replies.append(
            visitors[index].post(
                f"{base}/click-to-call",
                data={"number": f"+1202555014{index}", "csrf_token": tokens[index]},
                allow_redirects=False,
            )
        )

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(visitors))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for visitor in visitors:
        visitor.close()
    statuses = sorted(reply.status_code for reply in replies)
    assert statuses == [303] * limit + [429]
    [refused] = [reply for reply in replies if reply.status_code == 429]
    assert int(refused.headers["Retry-After"]) > 0
    assert bandwidth.count == limit
    # Every URL Bandwidth got comes from PUBLIC_BASE_URL (B17, B18).
    public = main_env["PUBLIC_BASE_URL"]
    for received in bandwidth.received:
        sent = received.json()
        for key in ("answerUrl", "answerFallbackUrl", "disconnectUrl"):
            assert sent[key].startswith(public + "/callbacks/")
    pids = {
        line.get("pid")
        for line in _json_lines(main_server.logs())
        if line.get("path") == "/click-to-call" and line.get("method") == "POST"
    }
    TALLY.note(f"{len(replies)} concurrent requests served by {len(pids)} worker(s)")


def _json_lines(text: str) -> Iterator[dict]:
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                continue


# --- B17: Host spoofing ----------------------------------------------------------------------------


@pytest.mark.row("B17")
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/callbacks/answer"), ("GET", "/click-to-call"), ("GET", "/dashboard/login")],
)
def test_spoofed_host_is_400(main_server, nothing_stored, method, path):
    payload = answer_event(callId=f"c-b17-{uuid.uuid4().hex[:8]}")
    with Http() as http:
        reply = http.request(
            method,
            main_server.base + path,
            data=json.dumps(payload) if method == "POST" else None,
            headers={"Host": "evil.example", **JSON, **basic_auth()},
        )
    assert reply.status_code == 400


@pytest.mark.row("B17")
def test_forwarded_host_never_reaches_generated_urls(main_server, main_env):
    payload = answer_event(callId=f"c-b17-{uuid.uuid4().hex[:8]}")
    with Http() as http:
        reply = http.post(
            f"{main_server.base}/callbacks/answer",
            data=json.dumps(payload),
            headers={
                **JSON,
                **basic_auth(),
                "X-Forwarded-Host": "evil.example",
                "X-Forwarded-Proto": "https",
                "Forwarded": "host=evil.example",
            },
        )
    assert reply.status_code == 200
    assert "evil.example" not in reply.text
    [gather] = [verb for verb in bxml.parse(reply.content) if verb.name == "Gather"]
    assert gather.attrs["gatherUrl"] == main_env["PUBLIC_BASE_URL"] + "/callbacks/gather"
    TALLY.events(acked=1, stored=1, lost=0)


# --- B19: duplicates ---------------------------------------------------------------------------------


@pytest.mark.row("B19")
def test_duplicates_sequential_and_concurrent_are_stored_once(main_server, main_env):
    payload = disconnect_event(callId=f"c-b19-{uuid.uuid4().hex[:8]}")
    statuses: list[int] = []
    with Http() as http:
        statuses += [deliver(http, main_server.base, "disconnect", payload).status_code]
        statuses += [deliver(http, main_server.base, "disconnect", payload).status_code]
    barrier = threading.Barrier(10)

    def again() -> None:
        with Http() as http:
            barrier.wait(timeout=10)
            statuses.append(deliver(http, main_server.base, "disconnect", payload).status_code)

    threads = [threading.Thread(target=again) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert statuses == [204] * 12
    assert stored_counts(main_env["DATABASE_URL"], payload["callId"]) == {payload["callId"]: 1}
    TALLY.events(acked=1, stored=1, lost=0)


# --- B20: XSS on the dashboard -------------------------------------------------------------------------


@pytest.mark.row("B20")
def test_script_in_callback_fields_is_escaped_on_the_dashboard(main_server, main_operator):
    cid = f"c-b20-{uuid.uuid4().hex[:8]}"
    payload = disconnect_event(
        callId=cid,
        errorMessage='<script>alert("xss")</script>',
        tag='"><img src=x onerror=alert(1)>',
        cause="callback-error",
    )
    with Http() as http:
        assert deliver(http, main_server.base, "disconnect", payload).status_code == 204
    for path in ("/dashboard", f"/dashboard/calls/{cid}"):
        page = main_operator.get(main_server.base + path)
        assert page.status_code == 200
        assert cid in page.text
        assert "<script>alert(" not in page.text
        assert "<img src=x" not in page.text
        assert "&lt;script&gt;" in page.text
        policy = page.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert page.headers["X-Content-Type-Options"] == "nosniff"
    api = main_operator.get(f"{main_server.base}/api/calls/{cid}/events")
    assert api.headers["Content-Type"].startswith("application/json")
    assert api.json()["events"][0]["payload"]["errorMessage"] == '<script>alert("xss")</script>'
    TALLY.events(acked=1, stored=1, lost=0)
