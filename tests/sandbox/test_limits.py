"""Bandwidth's account limits: calls per second and concurrent calls, 429 with its error body
and ``Retry-After``, counted across every process sharing the database."""

from __future__ import annotations

from datetime import datetime

import pytest

from sandbox.errors import ApiError
from sandbox.settings import Settings, SettingsError
from tests.sandbox.conftest import FROM, TO, Api

LONG_CALL = '<Response><Pause duration="600"/></Response>'


def _body(receiver) -> dict[str, str]:
    return {
        "to": TO,
        "from": FROM,
        "applicationId": "app-1",
        "answerUrl": receiver.url("/answer"),
        "disconnectUrl": receiver.url("/disconnect"),
    }


def _api(server) -> Api:
    settings = server.sandbox.settings
    return Api(server.api_url, settings.account_id, (settings.username, settings.password))


@pytest.fixture
def two_servers(make_sandbox):
    """Two standalone sandboxes (two processes' worth) over one database."""
    from sandbox.standalone import Server

    servers = [
        Server(make_sandbox(calls_per_second=3, concurrent_calls=0)).start() for _ in range(2)
    ]
    yield servers
    for server in servers:
        server.stop()


def test_the_calls_per_second_limit_holds_across_processes(two_servers, receiver):
    receiver.reply("/answer", LONG_CALL)
    apis = [_api(server) for server in two_servers]
    created: list[dict] = []
    refused = None
    for attempt in range(200):  # until one is refused (creates are far faster than 3 a second)
        reply = apis[attempt % 2].create(**_body(receiver))
        if reply.status_code == 429:
            refused = reply
            break
        assert reply.status_code == 201, reply.text
        created.append(reply.json())
    assert refused is not None
    assert refused.json() == {
        "type": "error",
        "description": "Account call creation rate limit exceeded",
        "id": "",
    }
    assert refused.headers["Retry-After"] == "1"
    # Over both processes, no rolling second holds more than 3 accepted calls.
    times = sorted(
        datetime.fromisoformat(call["enqueuedTime"].replace("Z", "+00:00")).timestamp()
        for call in created
    )
    assert len(times) >= 3
    assert all(later - earlier > 0.99 for earlier, later in zip(times, times[3:], strict=False))
    for call in created:
        apis[0].update(call["callId"], state="completed")
    for api in apis:
        api.close()


def test_the_concurrent_calls_limit_frees_up_when_a_call_ends(make_sandbox, receiver):
    from sandbox.standalone import Server

    receiver.reply("/answer", LONG_CALL)
    server = Server(make_sandbox(calls_per_second=0, concurrent_calls=2)).start()
    api = _api(server)
    try:
        first = api.create_ok(**_body(receiver))
        api.create_ok(**_body(receiver))
        refused = api.create(**_body(receiver))
        assert refused.status_code == 429
        assert refused.json()["description"] == "Account concurrent call limit exceeded"
        server.sandbox.wait_for(first, "answered", timeout=10)
        assert api.update(first, state="completed").status_code == 200
        server.sandbox.wait_for(first, "disconnected", timeout=10)
        api.create_ok(**_body(receiver))
    finally:
        for call in server.sandbox.calls():
            api.update(call["callId"], state="completed")
        api.close()
        server.stop()


def test_a_dial_in_counts_against_the_limits(make_sandbox):
    sandbox = make_sandbox(calls_per_second=1, concurrent_calls=0, driver="off")
    sandbox.set_application(
        "app", {"callInitiatedCallbackUrl": "http://127.0.0.1:9/i", "numbers": ["+12025550199"]}
    )
    sandbox.dial_in({"to": "+12025550199", "from": FROM}, "http://sandbox/api/v2")
    with pytest.raises(ApiError) as refused:
        sandbox.dial_in({"to": "+12025550199", "from": FROM}, "http://sandbox/api/v2")
    assert refused.value.status == 429


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"SANDBOX_CALLS_PER_SECOND": "-1"}, "SANDBOX_CALLS_PER_SECOND"),
        ({"SANDBOX_CONCURRENT_CALLS": "lots"}, "SANDBOX_CONCURRENT_CALLS"),
    ],
)
def test_bad_limits_are_named(values, problem):
    with pytest.raises(SettingsError, match=problem):
        Settings.from_mapping(values, database_url="sqlite://", password="pw")


def test_the_defaults_are_bandwidths():
    settings = Settings.from_mapping({}, database_url="sqlite://", password="pw")
    assert (settings.calls_per_second, settings.concurrent_calls) == (5, 100)


def test_a_transfer_over_the_limit_places_no_leg_and_says_why(make_sandbox, receiver):
    from sandbox.standalone import Server

    receiver.reply(
        "/answer",
        '<Response><Transfer transferCompleteUrl="/complete" transferCompleteMethod="GET">'
        '<PhoneNumber transferAnswerUrl="/agent">+12025550143</PhoneNumber></Transfer>'
        "</Response>",
    )
    receiver.reply("/complete", "<Response><Hangup/></Response>")
    server = Server(make_sandbox(calls_per_second=0, concurrent_calls=1)).start()
    api = _api(server)
    try:
        call_id = api.create_ok(**_body(receiver))
        complete = receiver.wait_for("transferComplete", call_id)[0]
        assert complete.method == "GET"
        assert complete.payload["cause"] == "account-limit"
        assert complete.payload["errorMessage"] == "Account concurrent call limit exceeded"
        assert complete.payload["transferTo"] == "+12025550143"
        assert receiver.wait_for("disconnect", call_id)[0].payload["cause"] == "hangup"
        assert receiver.events("transferAnswer") == []
        assert [c["callId"] for c in server.sandbox.calls()] == [call_id]  # no B-leg
    finally:
        api.close()
        server.stop()
