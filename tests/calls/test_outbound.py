"""calls.outbound: placing calls from the app with configured defaults, recorded in the store."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from callbacks import decode_state
from calls import CreateCallSchema, OutcomeUnknown, RateLimited
from calls.outbound import place_call
from store import get_store
from tests.callbacks.helpers import Bandwidth, answer_event
from tests.calls.fake_bandwidth import (
    ACCOUNT_ID,
    API_PASSWORD,
    API_USER,
    CALL_ID,
    Reply,
    created_call,
)


@pytest.fixture
def app(app_config, bandwidth):
    from app import create_app

    return create_app(
        {
            **app_config,
            "VOICE_BACKEND": "bandwidth",
            "BW_VOICE_API_URL": bandwidth.base_url,
            "BW_ACCOUNT_ID": ACCOUNT_ID,
            "BW_USERNAME": API_USER,
            "BW_PASSWORD": API_PASSWORD,
            "BW_APPLICATION_ID": "app-123",
            "BW_FROM_NUMBER": "+12025550100",
            "PUBLIC_BASE_URL": "https://cb.example.com",
            "FALLBACK_USERNAME": "fb-user",
            "FALLBACK_PASSWORD": "fb-pass",
        }
    )


def test_defaults_come_from_configuration(app, bandwidth):
    bandwidth.script(Reply(201, created_call()))
    with app.app_context():
        body = place_call(to="+12025550123", state={"flow": "click-to-call"}, call_timeout=20)
        sent = bandwidth.received[0].json()
        assert sent["applicationId"] == "app-123"
        assert sent["from"] == "+12025550100"
        assert sent["answerUrl"] == "https://cb.example.com/callbacks/answer"
        assert sent["answerFallbackUrl"] == "https://cb.example.com/callbacks/answer-fallback"
        assert sent["disconnectUrl"] == "https://cb.example.com/callbacks/disconnect"
        assert (sent["username"], sent["password"]) == ("bandwidth", "callback-secret")
        assert (sent["fallbackUsername"], sent["fallbackPassword"]) == ("fb-user", "fb-pass")
        assert sent["callTimeout"] == 20
        state = decode_state(sent["tag"], app.config["SECRET_KEY"])
        assert state == {"flow": "click-to-call", "_attempt": body["attemptId"]}
        row = get_store().outbound_attempt(body["attemptId"])
    assert body["callId"] == CALL_ID
    assert row["outcome"] == "created"
    assert row["call_id"] == CALL_ID
    assert "callback-secret" not in str(row["request"])
    assert "fb-pass" not in str(row["request"])
    assert row["request"]["to"] == "+12025550123"


def test_a_call_is_validated_once(app, bandwidth, monkeypatch):
    validated = []
    load_kwargs = CreateCallSchema.load_kwargs

    def counting(schema, values):
        validated.append(values["to"])
        return load_kwargs(schema, values)

    monkeypatch.setattr(CreateCallSchema, "load_kwargs", counting)
    bandwidth.script(Reply(201, created_call()))
    with app.app_context():
        place_call(to="+12025550123")
    assert validated == ["+12025550123"]
    assert bandwidth.received[0].json()["to"] == "+12025550123"


def test_invalid_number_sends_and_records_nothing(app, bandwidth):
    with app.app_context(), pytest.raises(ValidationError) as caught:
        place_call(to="+1 202 555 0123")
    assert "to" in caught.value.messages
    assert bandwidth.count == 0
    with app.app_context():
        assert get_store().unsettled_outbound() == []


def test_callback_settles_an_unknown_outcome(app, bandwidth, client):
    bandwidth.script(Reply(500, {"type": "internal-error", "description": "boom"}))
    with app.app_context(), pytest.raises(OutcomeUnknown):
        place_call(to="+12025550123")
    assert bandwidth.count == 1  # never retried: the call may exist
    with app.app_context():
        [attempt] = get_store().unsettled_outbound()
    assert attempt["outcome"] == "unknown"
    tag = bandwidth.received[0].json()["tag"]
    reply = Bandwidth(client).post("answer", answer_event(callId="c-late-proof", tag=tag))
    assert reply.status_code == 200
    with app.app_context():
        settled = get_store().outbound_attempt(attempt["attempt_id"])
    assert (settled["outcome"], settled["call_id"]) == ("created", "c-late-proof")


def test_rate_limited_attempt_is_recorded(app, bandwidth):
    bandwidth.script(
        Reply(429, {"type": "error", "description": "slow down"}, headers={"Retry-After": "3600"})
    )
    with app.app_context(), pytest.raises(RateLimited):
        place_call(to="+12025550123")
    assert bandwidth.count == 1  # Retry-After beyond the budget: no sleep, no retry
    with app.app_context():
        assert get_store().unsettled_outbound() == []  # settled, not left pending
