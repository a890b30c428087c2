"""Fixtures of the metrics and alert tests: an app with /metrics, and reading its samples."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from callbacks import Flow

TOKEN = "metrics-token-of-the-tests"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def sample(text: str, name: str, **labels: str) -> float:
    """The value of sample ``name`` with exactly these labels in an exposition (0 if absent)."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return 0.0


def scrape(client: Any, headers: dict[str, str] | None = None) -> str:
    reply = client.get("/metrics", headers=BEARER if headers is None else headers)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    return str(reply.get_data(as_text=True))


@pytest.fixture
def metrics_config(app_config):
    return {**app_config, "METRICS_TOKEN": TOKEN}


@pytest.fixture
def metrics_app(metrics_config):
    from app import create_app

    return create_app(metrics_config)


@pytest.fixture
def metrics_client(metrics_app):
    return metrics_app.test_client()


@pytest.fixture
def failing_flow(metrics_app):
    """A default flow whose answer handler raises and whose gather handler returns a
    document that is not valid there."""
    import bxml

    flow = Flow("failing")

    @flow.on("answer")
    def crash(event):
        raise RuntimeError("the handler crashed")

    @flow.on("gather")
    def invalid(event):
        return "<Response/>"  # a string, not a bxml.Response

    @flow.on("redirect")
    def fine(event):
        return bxml.Response(bxml.Hangup())

    return metrics_app.extensions["flows"].register(flow, default=True)


HOOK_PATH = "/services/T000/B000/very-secret-hook-path"


@pytest.fixture
def webhook():
    """A Slack-style webhook receiver on 127.0.0.1 (answers 204 unless scripted)."""
    from tests.sandbox.receiver import Receiver

    with Receiver() as receiver:
        yield receiver


def posts(receiver: Any, count: int = 1, timeout: float = 20.0) -> list[Any]:
    """Wait until ``receiver`` has at least ``count`` posts; return them all."""
    import time

    deadline = time.monotonic() + timeout
    while len(receiver.requests) < count:
        assert time.monotonic() < deadline, f"{len(receiver.requests)} posts, wanted {count}"
        time.sleep(0.02)
    return list(receiver.requests)


def wait_for(check: Any, timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def stop_alerts():
    """Stops the alert threads of the apps a test adds to the list."""
    apps: list[Any] = []
    yield apps
    for app in apps:
        app.extensions["alerts"].stop()
