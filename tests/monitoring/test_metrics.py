"""GET /metrics: off without METRICS_TOKEN, bearer-protected with it, and counts that move
with real callbacks through the app (in one process: the app's own registry)."""

from __future__ import annotations

import pytest

from callbacks.testing import example_payload
from store import get_store
from tests.callbacks.helpers import Bandwidth, basic_auth, call_id, disconnect_event
from tests.monitoring.conftest import BEARER, TOKEN, sample, scrape


def test_there_is_no_metrics_route_without_a_token(client):
    assert client.get("/metrics", headers=BEARER).status_code == 404


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong-token-of-the-tests"}, 401),
        ({"Authorization": f"Basic {TOKEN}"}, 401),
        ({"Authorization": f"Bearer {TOKEN}x"}, 401),
        ({"Authorization": f"Bearer {TOKEN[:-1]}"}, 401),
        ({"Authorization": "Bearer"}, 401),
        ({"Authorization": f"bearer {TOKEN}"}, 200),
        (BEARER, 200),
    ],
)
def test_the_bearer_token_is_required(metrics_client, headers, status):
    reply = metrics_client.get("/metrics", headers=headers)
    assert reply.status_code == status
    if status == 401:
        assert reply.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
        assert "voice_" not in reply.get_data(as_text=True)


def test_the_exposition_format_and_its_content_type(metrics_client):
    reply = metrics_client.get("/metrics", headers=BEARER)
    assert reply.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert reply.headers["Cache-Control"] == "no-store"
    text = reply.get_data(as_text=True)
    assert "# TYPE voice_callbacks_total counter" in text
    assert "# TYPE voice_handler_seconds histogram" in text
    assert "# TYPE voice_store_write_seconds histogram" in text
    assert "# TYPE voice_spool_depth gauge" in text
    openmetrics = metrics_client.get(
        "/metrics", headers={**BEARER, "Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert openmetrics.headers["Content-Type"].startswith("application/openmetrics-text;")
    assert openmetrics.get_data(as_text=True).rstrip().endswith("# EOF")


def test_wrong_tokens_count_against_the_login_limit(metrics_config):
    from app import create_app

    client = create_app({**metrics_config, "DASHBOARD_LOGIN_RATE": "2/hour"}).test_client()
    wrong = {"Authorization": "Bearer not-the-token-at-all!"}
    tries = [client.get("/metrics", headers=wrong).status_code for _ in range(3)]
    assert tries == [401, 401, 429]
    refused = client.get("/metrics", headers=BEARER)  # over the limit: even the right token
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0


def test_callbacks_are_counted_by_route_status_and_category(metrics_app, failing_flow):
    client = metrics_app.test_client()
    bandwidth = Bandwidth(client)
    assert bandwidth.post("answer", example_payload("answer", callId=call_id())).status_code == 200
    assert bandwidth.post("gather", example_payload("gather", callId=call_id())).status_code == 200
    assert (
        bandwidth.post("redirect", example_payload("redirect", callId=call_id())).status_code == 200
    )
    wrong = basic_auth(password="not-the-password")
    assert bandwidth.post("answer", example_payload("answer"), auth=wrong).status_code == 401
    assert bandwidth.post("answer", example_payload("answer"), auth={}).status_code == 401
    assert bandwidth.post("answer", {"eventType": "answer"}).status_code == 422
    assert bandwidth.post("answr", example_payload("answer")).status_code == 404

    text = scrape(client)
    counted = {
        ("answer", "200", "handler-error"): 1,
        ("gather", "200", "invalid-reply"): 1,
        ("redirect", "200", "ok"): 1,
        ("answer", "401", "credential-failure"): 1,
        ("answer", "401", "challenge"): 1,
        ("answer", "422", "rejected-payload"): 1,
        ("unknown", "404", "unknown-route"): 1,
    }
    for (route, status, category), value in counted.items():
        labels = {"route": route, "status": status, "category": category}
        assert sample(text, "voice_callbacks_total", **labels) == value, labels
    assert sample(text, "voice_handler_seconds_count", route="answer") == 1
    assert sample(text, "voice_handler_seconds_count", route="redirect") == 1
    assert sample(text, "voice_store_write_seconds_count", outcome="inserted") == 3


def test_disconnects_are_counted_once_by_cause(metrics_client):
    bandwidth = Bandwidth(metrics_client)
    busy = disconnect_event(cause="busy")
    for _ in range(2):  # Bandwidth's retry: stored once, answered twice, counted once
        assert bandwidth.post("disconnect", busy).status_code == 204
    assert bandwidth.post("disconnect", disconnect_event(cause="hangup")).status_code == 204
    assert bandwidth.post("disconnect", disconnect_event(cause="a-new-cause")).status_code == 204
    text = scrape(metrics_client)
    assert sample(text, "voice_disconnects_total", cause="busy") == 1
    assert sample(text, "voice_disconnects_total", cause="hangup") == 1
    assert sample(text, "voice_disconnects_total", cause="other") == 1
    labels = {"route": "disconnect", "status": "204", "category": "ok"}
    assert sample(text, "voice_callbacks_total", **labels) == 4


def test_the_spool_depth_is_read_from_the_spool_file(metrics_app, metrics_client):
    assert sample(scrape(metrics_client), "voice_spool_depth") == 0
    with metrics_app.app_context():
        get_store().spool.append_many(['{"first": 1}', '{"second": 2}'])
    assert sample(scrape(metrics_client), "voice_spool_depth") == 2


def test_metrics_of_two_apps_are_their_own(metrics_config):
    from app import create_app

    first, second = create_app(metrics_config), create_app(metrics_config)
    Bandwidth(first.test_client()).post("disconnect", disconnect_event(cause="busy"))
    assert sample(scrape(first.test_client()), "voice_disconnects_total", cause="busy") == 1
    assert sample(scrape(second.test_client()), "voice_disconnects_total", cause="busy") == 0


@pytest.fixture
def fake_bandwidth():
    from tests.calls.fake_bandwidth import FakeBandwidth

    fake = FakeBandwidth()
    fake.start()
    yield fake
    fake.stop()


def test_click_to_call_placements_and_refusals(metrics_config, fake_bandwidth):
    from app import create_app
    from tests.calls.fake_bandwidth import ACCOUNT_ID, API_PASSWORD, API_USER, Reply, created_call
    from tests.dashboard.conftest import csrf_from

    app = create_app(
        {
            **metrics_config,
            "VOICE_BACKEND": "bandwidth",
            "BW_VOICE_API_URL": fake_bandwidth.base_url,
            "BW_ACCOUNT_ID": ACCOUNT_ID,
            "BW_USERNAME": API_USER,
            "BW_PASSWORD": API_PASSWORD,
            "BW_APPLICATION_ID": "app-123",
            "BW_FROM_NUMBER": "+12025550100",
            "CLICK_TO_CALL_AGENT": "+12025550199",
            "CLICK_TO_CALL_RATE_PER_ADDRESS": "2/hour",
        }
    )
    visitor = app.test_client()

    def ask(number):
        token = csrf_from(visitor.get("/click-to-call").get_data(as_text=True))
        return visitor.post("/click-to-call", data={"number": number, "csrf_token": token})

    fake_bandwidth.script(
        Reply(201, created_call()), Reply(400, {"type": "validation"}), Reply(201, created_call())
    )
    assert ask("+12025550123").status_code == 303
    assert ask("+19005551234").status_code == 422  # premium rate
    assert ask("+12025550124").status_code == 503  # the Voice API refused it ...
    assert ask("+12025550125").status_code == 303  # ... so it used none of the rate
    assert ask("+12025550126").status_code == 429  # over the per-address rate

    text = scrape(app.test_client())
    assert sample(text, "voice_click_to_call_placements_total", outcome="placed") == 2
    assert sample(text, "voice_click_to_call_placements_total", outcome="failed") == 1
    assert sample(text, "voice_click_to_call_refusals_total", reason="number") == 1
    assert sample(text, "voice_click_to_call_refusals_total", reason="rate-per-address") == 1


def test_with_the_database_down_callbacks_are_spooled_and_metrics_still_answer(
    metrics_config, tmp_path
):
    from app import create_app

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the database directory should be\n")
    app = create_app({**metrics_config, "DATABASE_URL": f"sqlite:///{blocker / 'events.db'}"})
    client = app.test_client()
    assert Bandwidth(client).post("disconnect", disconnect_event(cause="busy")).status_code == 204
    text = scrape(client)
    labels = {"route": "disconnect", "status": "204", "category": "spooled"}
    assert sample(text, "voice_callbacks_total", **labels) == 1
    assert sample(text, "voice_store_write_seconds_count", outcome="spooled") == 1
    assert sample(text, "voice_disconnects_total", cause="busy") == 1
    assert sample(text, "voice_spool_depth") == 1


@pytest.mark.parametrize(
    ("status", "error_kind", "spooled", "missing", "category"),
    [
        (200, None, False, False, "ok"),
        (204, None, True, False, "spooled"),
        (200, "handler-error", True, False, "handler-error"),
        (503, "handler-error", False, False, "handler-error"),  # ANSWER_FAILURE_MODE=fallback
        (503, None, False, False, "unavailable"),
        (500, None, False, False, "server-error"),
        (401, None, False, True, "challenge"),
        (401, None, False, False, "credential-failure"),
        (405, None, False, False, "rejected-payload"),
        (413, None, False, False, "rejected-payload"),
        (404, None, False, False, "unknown-route"),
    ],
)
def test_callback_categories(status, error_kind, spooled, missing, category):
    from monitoring.categories import callback_category

    assert callback_category(status, error_kind, spooled, credentials_missing=missing) == category


def test_error_kinds():
    from bxml.errors import BxmlError
    from callbacks.routing import NoFlow
    from monitoring.categories import error_kind

    assert error_kind(BxmlError("<Transfer> is not allowed here")) == "invalid-reply"
    assert error_kind(TypeError("answer handler must return a bxml.Response, got str")) == (
        "invalid-reply"
    )
    assert error_kind(TypeError("unsupported operand")) == "handler-error"
    assert error_kind(NoFlow("no flow answers +12025550123")) == "handler-error"
    assert error_kind(RuntimeError("boom")) == "handler-error"
