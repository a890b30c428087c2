"""Click-to-call placements the Voice API did not accept are visible to operators: a banner
on every dashboard page while they keep failing, a ``not-placed`` count beside the failure
categories (page and JSON API), and the Prometheus counters."""

from __future__ import annotations

import html
import re

import pytest

from app import create_app
from dashboard.placements import reason
from tests.calls.fake_bandwidth import Reply, created_call
from tests.dashboard.conftest import login
from tests.dashboard.test_click_to_call import ask, error_of
from tests.monitoring.conftest import TOKEN, sample, scrape
from tests.servers import closed_port

VISITOR = "+12025550123"


def banner(page: str) -> str:
    found = re.search(r'<div class="banner danger" id="placement-alarm">(.*?)</div>', page, re.S)
    return html.unescape(" ".join(found.group(1).split())) if found else ""


def test_an_unreachable_voice_api_raises_a_banner_a_count_and_metrics(c2c_config):
    port = closed_port()
    config = {
        **c2c_config,
        "BW_VOICE_API_URL": f"http://127.0.0.1:{port}/api/v2",
        "METRICS_TOKEN": TOKEN,
    }
    app = create_app(config)
    operator = app.test_client()
    assert login(operator).status_code == 303
    first = operator.get("/dashboard").get_data(as_text=True)
    assert banner(first) == "" and "No disconnects yet." in first

    for number in (VISITOR, "+12025550124"):
        reply = ask(app.test_client(), number)
        assert reply.status_code == 503 and "cannot place calls" in error_of(reply)

    page = operator.get("/dashboard").get_data(as_text=True)
    said = banner(page)
    assert said.startswith("<strong>Click-to-call could not place 2 calls in the last hour:")
    assert f"the Voice API at 127.0.0.1:{port} could not be reached" in said
    assert "the connection was refused" in said and "BW_VOICE_API_URL" in said
    assert "Connection refused" in said  # the technical detail, one click away
    assert "No disconnects yet." not in page
    assert re.search(r'data-category="not-placed">2<', page)
    # Every dashboard page, not only the list.
    assert banner(operator.get("/dashboard/rejected").get_data(as_text=True))

    counts = operator.get("/api/categories").get_json()["categories"]
    row = next(c for c in counts if c["category"] == "not-placed")
    assert row["count"] == 2 and row["needsAttention"] and "did not accept" in row["description"]

    text = scrape(app.test_client())
    assert sample(text, "voice_click_to_call_placements_total", outcome="temporary-failure") == 2


def test_a_placed_call_raises_no_banner(c2c_app, bandwidth):
    bandwidth.script(Reply(201, created_call()))
    assert ask(c2c_app.test_client(), VISITOR).status_code == 303
    operator = c2c_app.test_client()
    login(operator)
    page = operator.get("/dashboard").get_data(as_text=True)
    assert banner(page) == "" and 'data-category="not-placed"' not in page


def test_a_refusing_voice_api_names_its_status(c2c_app, bandwidth):
    bandwidth.script(Reply(401, {"type": "unauthorized", "description": "bad credentials"}))
    assert ask(c2c_app.test_client(), VISITOR).status_code == 503
    operator = c2c_app.test_client()
    login(operator)
    said = banner(operator.get("/dashboard").get_data(as_text=True))
    assert "could not place 1 call in the last hour" in said
    assert "refused the account's credentials (401)" in said


@pytest.mark.parametrize(
    ("outcome", "error", "expected"),
    [
        ("rate_limited", "429 error: slow down", "over the account's call rate (429)"),
        ("unavailable", "503 error: busy", "over capacity (503)"),
        ("rejected", "400 validation: bad to", "refused the request (400): bad to"),
        ("rejected", "403 forbidden: no", "refused the account's credentials (403)"),
        (
            "failed",
            "could not connect: HTTPConnectionPool(host='api.example', port=443): "
            "Max retries exceeded (Name or service not known)",
            "at api.example:443 could not be reached: its host name does not resolve",
        ),
        ("failed", "something odd", "did not accept them: something odd"),
    ],
)
def test_each_reason_is_a_sentence(outcome, error, expected):
    assert expected in reason(outcome, error)
