"""Click-to-call: number policy (B14), CSRF (B15), limits (B16), extra fields (B18), progress."""

from __future__ import annotations

import re

import pytest

from app import create_app
from callbacks import decode_state
from store import get_store
from tests.callbacks.helpers import Bandwidth, answer_event, call_event, disconnect_event
from tests.calls.fake_bandwidth import CALL_ID, Reply, created_call
from tests.dashboard.conftest import AGENT, FROM_NUMBER, csrf_from

FORM = "/click-to-call"


def ask(client, number: str, *, token: str | None = "page", extra=None, **kwargs):
    data = {"number": number}
    if token == "page":
        data["csrf_token"] = csrf_from(client.get(FORM).get_data(as_text=True))
    elif token is not None:
        data["csrf_token"] = token
    data.update(extra or {})
    return client.post(FORM, data=data, **kwargs)


def error_of(reply) -> str:
    match = re.search(r'id="c2c-error">([^<]+)<', reply.get_data(as_text=True))
    return match.group(1) if match else ""


def created(n: int) -> Reply:
    return Reply(201, created_call(callId=f"c-call-{n}"))


def state_of(reply) -> dict:
    """The state and cause of a status reply (the sentence is tested in test_c2c_truth)."""
    data = reply.get_json()
    return {"state": data["state"], "cause": data["cause"]}


def test_the_form_is_public(visitor):
    reply = visitor.get(FORM)
    assert reply.status_code == 200
    html = reply.get_data(as_text=True)
    assert 'name="number"' in html and 'name="csrf_token"' in html


@pytest.mark.parametrize(
    "typed", ["(202) 555-0123", "+1 202-555-0123", "202.555.0123", "+12025550123"]
)
def test_a_valid_number_places_exactly_one_call(visitor, bandwidth, c2c_app, typed):
    bandwidth.script(Reply(201, created_call()))
    reply = ask(visitor, typed)
    assert reply.status_code == 303, error_of(reply)
    assert re.fullmatch(r"/click-to-call/calls/[\w-]{20,}", reply.headers["Location"])
    assert bandwidth.count == 1
    sent = bandwidth.received[0].json()
    assert sent["to"] == "+12025550123"
    assert sent["from"] == FROM_NUMBER
    assert sent["answerUrl"] == "http://127.0.0.1:8000/callbacks/answer"
    assert sent["disconnectUrl"] == "http://127.0.0.1:8000/callbacks/disconnect"
    state = decode_state(sent["tag"], c2c_app.config["SECRET_KEY"])
    token = reply.headers["Location"].rsplit("/", 1)[1]
    assert state["_flow"] == "click-to-call"  # the flow that answers the call
    assert state["visitor"] == token
    assert AGENT not in sent["tag"]


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("+18765551234", "only call numbers in the United States and Canada"),  # JM
        ("+18095551234", "only call numbers in the United States and Canada"),  # DO
        ("(876) 555-1234", "only call numbers in the United States and Canada"),  # JM, national
        ("+19005551234", "premium-rate"),  # US premium rate
        ("+15005550123", "premium-rate"),  # US personal number
        ("+18005550123", "toll-free"),
        ("+447911123456", "only call numbers in the United States and Canada"),  # GG mobile
        ("+15555551212", "not a valid phone number"),  # the docs' placeholder
        ("5555551212", "not a valid phone number"),
        ("+1 202 555 01", "not a valid phone number"),
        ("abc", "does not look like a phone number"),
        ("", "Enter your phone number"),
        ("   ", "Enter your phone number"),
        ("+1202555\x000123", "does not look like a phone number"),
        ("1" * 41, "does not look like a phone number"),
        ("202-555-0123 ext. 12", "without an extension"),
        (AGENT, "cannot be called from here"),
        (FROM_NUMBER, "cannot be called from here"),
    ],
)
def test_refused_numbers_are_422_and_place_no_call(visitor, bandwidth, number, message):
    reply = ask(visitor, number)
    assert reply.status_code == 422
    assert message in error_of(reply)
    assert bandwidth.count == 0


def test_allowed_countries_come_from_configuration(c2c_config, bandwidth):
    app = create_app({**c2c_config, "CLICK_TO_CALL_COUNTRIES": "US,CA,JM,GB"})
    client = app.test_client()
    bandwidth.script(created(1), created(2), created(3))
    assert ask(client, "+18765551234").status_code == 303  # JM, now allowed
    assert ask(client, "07400 123456").status_code == 303  # GB mobile, national form
    assert ask(client, "(613) 555-0123").status_code == 303  # CA
    assert bandwidth.count == 3
    assert [r.json()["to"] for r in bandwidth.received] == [
        "+18765551234",
        "+447400123456",
        "+16135550123",
    ]
    assert ask(client, "+447911123456").status_code == 422  # GG (Guernsey) is not GB


@pytest.mark.parametrize(
    "extra",
    [
        {"answerUrl": "https://evil.example/answer"},
        {"to": "+19005551234"},
        {"tag": "x", "from": "y"},
    ],
)
def test_extra_fields_are_refused_by_name(visitor, bandwidth, extra):
    reply = ask(visitor, "+12025550123", extra=extra)
    assert reply.status_code == 422
    for name in extra:
        assert name in error_of(reply)
    assert bandwidth.count == 0


def test_extra_query_parameters_are_refused(visitor, bandwidth):
    reply = ask(visitor, "+12025550123", query_string={"answerUrl": "https://evil.example/"})
    assert reply.status_code == 422
    assert "answerUrl" in error_of(reply)
    assert bandwidth.count == 0


@pytest.mark.parametrize("token", [None, "", "bad-token"])
def test_csrf_is_required(visitor, bandwidth, token):
    visitor.get(FORM)
    reply = ask(visitor, "+12025550123", token=token)
    assert reply.status_code == 400
    assert bandwidth.count == 0


def test_a_token_from_another_session_is_refused(c2c_app, visitor, bandwidth):
    other = c2c_app.test_client()
    token = csrf_from(other.get(FORM).get_data(as_text=True))
    visitor.get(FORM)
    assert ask(visitor, "+12025550123", token=token).status_code == 400
    assert bandwidth.count == 0


def test_per_address_limit(c2c_config, bandwidth):
    app = create_app({**c2c_config, "CLICK_TO_CALL_RATE_PER_ADDRESS": "2/hour"})
    client = app.test_client()
    bandwidth.script(*(created(n) for n in range(3)))
    assert ask(client, "+12025550123").status_code == 303
    assert ask(client, "+12025550124").status_code == 303
    reply = ask(client, "+12025550125")
    assert reply.status_code == 429
    assert "too many calls" in error_of(reply)
    assert 0 < int(reply.headers["Retry-After"]) <= 3600
    # X-Forwarded-For is not trusted without TRUSTED_PROXIES: still the same client.
    spoofed = ask(client, "+12025550126", headers={"X-Forwarded-For": "198.51.100.9"})
    assert spoofed.status_code == 429
    other = ask(client, "+12025550127", environ_base={"REMOTE_ADDR": "192.0.2.50"})
    assert other.status_code == 303
    assert bandwidth.count == 3


def test_behind_a_trusted_proxy_the_forwarded_address_counts(c2c_config, bandwidth):
    app = create_app(
        {**c2c_config, "CLICK_TO_CALL_RATE_PER_ADDRESS": "1/hour", "TRUSTED_PROXIES": 1}
    )
    client = app.test_client()
    bandwidth.script(created(1), created(2))
    first = {"X-Forwarded-For": "198.51.100.1"}
    assert ask(client, "+12025550123", headers=first).status_code == 303
    assert ask(client, "+12025550124", headers=first).status_code == 429
    second = {"X-Forwarded-For": "198.51.100.2"}
    assert ask(client, "+12025550125", headers=second).status_code == 303
    assert bandwidth.count == 2


def test_ipv6_clients_are_counted_per_64(c2c_config, bandwidth):
    app = create_app({**c2c_config, "CLICK_TO_CALL_RATE_PER_ADDRESS": "1/hour"})
    client = app.test_client()
    bandwidth.script(created(1), created(2))
    assert (
        ask(client, "+12025550123", environ_base={"REMOTE_ADDR": "2001:db8::1"}).status_code == 303
    )
    assert (
        ask(client, "+12025550124", environ_base={"REMOTE_ADDR": "2001:db8::2"}).status_code == 429
    )
    assert (
        ask(client, "+12025550125", environ_base={"REMOTE_ADDR": "2001:db8:1::1"}).status_code
        == 303
    )


def test_total_limit_holds_across_two_app_instances(c2c_config, bandwidth):
    settings = {**c2c_config, "CLICK_TO_CALL_RATE_TOTAL": "3/hour"}
    first, second = create_app(settings), create_app(settings)  # one database, two servers
    a, b = first.test_client(), second.test_client()
    bandwidth.script(*(created(n) for n in range(5)))
    results = [
        ask(a, "+12025550123", environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code,
        ask(b, "+12025550124", environ_base={"REMOTE_ADDR": "192.0.2.2"}).status_code,
        ask(a, "+12025550125", environ_base={"REMOTE_ADDR": "192.0.2.3"}).status_code,
        ask(b, "+12025550126", environ_base={"REMOTE_ADDR": "192.0.2.4"}).status_code,
        ask(a, "+12025550127", environ_base={"REMOTE_ADDR": "192.0.2.5"}).status_code,
    ]
    assert results == [303, 303, 303, 429, 429]
    assert bandwidth.count == 3
    assert "too many call requests" in error_of(ask(b, "+12025550128"))


def test_the_same_number_has_a_cooldown(visitor, bandwidth):
    bandwidth.script(created(1), created(2))
    assert ask(visitor, "+12025550123").status_code == 303
    reply = ask(visitor, "(202) 555-0123")
    assert reply.status_code == 429
    assert "called this number a moment ago" in error_of(reply)
    assert ask(visitor, "+12025550124").status_code == 303
    assert bandwidth.count == 2


def test_no_agent_configured_places_no_call(c2c_config, bandwidth):
    app = create_app({**c2c_config, "CLICK_TO_CALL_AGENT": None})
    client = app.test_client()
    assert "not available" in client.get(FORM).get_data(as_text=True)
    reply = ask(client, "+12025550123")
    assert reply.status_code == 503
    assert bandwidth.count == 0


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (429, "cannot place calls right now"),
        (503, "cannot place calls right now"),
        (400, "could not place the call"),
    ],
)
def test_bandwidth_refusals_are_shown(visitor, bandwidth, status, expected):
    refusal = Reply(status, {"type": "x", "description": "no"}, headers={"Retry-After": "0"})
    bandwidth.script(refusal, refusal, refusal)  # 429 and 503 are retried twice by the client
    reply = ask(visitor, "+12025550123")
    assert reply.status_code == 503
    assert expected in error_of(reply)
    assert bandwidth.count == (3 if status in (429, 503) else 1)


def test_unknown_outcome_goes_to_the_progress_page(visitor, bandwidth):
    bandwidth.script(Reply(500, {"type": "internal", "description": "boom"}))
    reply = ask(visitor, "+12025550123")
    assert reply.status_code == 303
    assert bandwidth.count == 1
    status = visitor.get(reply.headers["Location"] + "/status").get_json()
    assert status["state"] == "unknown"


def test_progress_follows_the_callbacks(visitor, bandwidth, c2c_app):
    bandwidth.script(Reply(201, created_call()))
    location = ask(visitor, "+12025550123").headers["Location"]
    status_url = location + "/status"
    assert state_of(visitor.get(status_url)) == {"state": "queued", "cause": None}
    page = visitor.get(location).get_data(as_text=True)
    assert 'data-status-url="' + status_url + '"' in page
    assert "Calling your phone" in page

    bw = Bandwidth(c2c_app.test_client())
    tag = bandwidth.received[0].json()["tag"]
    assert bw.post("answer", answer_event(callId=CALL_ID, tag=tag)).status_code == 200
    assert state_of(visitor.get(status_url)) == {"state": "answered", "cause": None}
    # The agent leg answers: its own callId, the visitor's as parentCallId.
    agent = call_event("transferAnswer", callId="c-agent-leg", parentCallId=CALL_ID, tag=tag)
    assert bw.post("transferAnswer", agent).status_code == 200
    assert state_of(visitor.get(status_url)) == {"state": "connected", "cause": None}
    complete = call_event("transferComplete", callId=CALL_ID, tag=tag)
    assert bw.post("transferComplete", complete).status_code == 200
    assert state_of(visitor.get(status_url)) == {"state": "connected", "cause": None}
    assert (
        bw.post("disconnect", disconnect_event(callId=CALL_ID, cause="hangup")).status_code == 204
    )
    final = visitor.get(status_url)
    assert state_of(final) == {"state": "ended", "cause": "hangup"}
    body = final.get_data(as_text=True)
    assert "+1202" not in body and "555" not in body  # no numbers
    assert final.headers["Cache-Control"] == "no-store"


def test_answering_transfers_to_the_agent(visitor, bandwidth, c2c_app):
    bandwidth.script(Reply(201, created_call()))
    ask(visitor, "+12025550123")
    tag = bandwidth.received[0].json()["tag"]
    reply = Bandwidth(c2c_app.test_client()).post("answer", answer_event(callId=CALL_ID, tag=tag))
    body = reply.get_data(as_text=True)
    assert "<Transfer" in body and AGENT in body


def test_failed_attempt_shows_failed(visitor, bandwidth, c2c_app):
    bandwidth.script(Reply(201, created_call()))
    location = ask(visitor, "+12025550123").headers["Location"]
    token = location.rsplit("/", 1)[1]
    with c2c_app.app_context():
        attempt = decode_state(bandwidth.received[0].json()["tag"], c2c_app.config["SECRET_KEY"])
        get_store().settle_outbound(attempt["_attempt"], "rejected", error="403 forbidden")
    assert state_of(visitor.get(f"/click-to-call/calls/{token}/status")) == {
        "state": "failed",
        "cause": "rejected",
    }


def test_status_is_only_for_the_session_that_asked(visitor, bandwidth, c2c_app):
    bandwidth.script(Reply(201, created_call()))
    location = ask(visitor, "+12025550123").headers["Location"]
    stranger = c2c_app.test_client()
    assert stranger.get(location + "/status").status_code == 404
    assert stranger.get(location).status_code == 404
    assert visitor.get("/click-to-call/calls/not-a-token/status").status_code == 404
    assert visitor.get(location + "/status").status_code == 200


def test_a_session_follows_its_recent_calls_only(c2c_config, bandwidth):
    app = create_app({**c2c_config, "CLICK_TO_CALL_RATE_PER_ADDRESS": "20/hour"})
    client = app.test_client()
    bandwidth.script(*(created(n) for n in range(7)))
    locations = [ask(client, f"+1202555{n:04d}").headers["Location"] for n in range(130, 137)]
    assert client.get(locations[0] + "/status").status_code == 404  # the oldest dropped
    assert client.get(locations[-1] + "/status").status_code == 200


def test_bad_rate_settings_fail_at_start(c2c_config):
    from config import ConfigError

    with pytest.raises(ConfigError, match="CLICK_TO_CALL_RATE_TOTAL"):
        create_app({**c2c_config, "CLICK_TO_CALL_RATE_TOTAL": "lots"})
    with pytest.raises(ConfigError, match="CLICK_TO_CALL_DESTINATION_COOLDOWN"):
        create_app({**c2c_config, "CLICK_TO_CALL_DESTINATION_COOLDOWN": "soon"})
