"""Fixtures of the dashboard tests: logged-in clients, seeded callbacks, a fake Bandwidth."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.callbacks.helpers import Bandwidth, answer_event, call_id, disconnect_event
from tests.calls.fake_bandwidth import ACCOUNT_ID, API_PASSWORD, API_USER, FakeBandwidth
from tests.conftest import DASHBOARD_PASSWORD, DASHBOARD_USER

AGENT = "+12025550199"
FROM_NUMBER = "+12025550100"
VISITOR = "+12025550123"

_CSRF = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"'
)


def csrf_from(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no csrf_token in the page"
    return match.group(1) or match.group(2)


def login(client: Any, username: str = DASHBOARD_USER, password: str = DASHBOARD_PASSWORD):
    page = client.get("/dashboard/login")
    token = csrf_from(page.get_data(as_text=True))
    return client.post(
        "/dashboard/login",
        data={"csrf_token": token, "username": username, "password": password},
    )


def page_token(client: Any, path: str) -> str:
    """The CSRF token of the form on ``path`` (bound to this client's session)."""
    return csrf_from(client.get(path).get_data(as_text=True))


@pytest.fixture
def operator(client):
    """The test client, logged in to the dashboard."""
    reply = login(client)
    assert reply.status_code == 303, reply.get_data(as_text=True)
    return client


@pytest.fixture
def bw(client):
    """Sends callbacks to the app as Bandwidth does."""
    return Bandwidth(client)


def failed_call(bw: Bandwidth, **disconnect: Any) -> str:
    """An answered call that then ended with ``disconnect`` overrides (default busy)."""
    cid = disconnect.pop("callId", None) or call_id()
    assert bw.post("answer", answer_event(callId=cid)).status_code == 200
    assert bw.post("disconnect", disconnect_event(callId=cid, **disconnect)).status_code == 204
    return cid


@pytest.fixture
def bandwidth():
    fake = FakeBandwidth()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def c2c_config(app_config, bandwidth) -> dict[str, Any]:
    """An app that places calls through the fake Bandwidth API on 127.0.0.1."""
    return {
        **app_config,
        "VOICE_BACKEND": "bandwidth",
        "BW_VOICE_API_URL": bandwidth.base_url,
        "BW_ACCOUNT_ID": ACCOUNT_ID,
        "BW_USERNAME": API_USER,
        "BW_PASSWORD": API_PASSWORD,
        "BW_APPLICATION_ID": "app-123",
        "BW_FROM_NUMBER": FROM_NUMBER,
        "CLICK_TO_CALL_AGENT": AGENT,
    }


@pytest.fixture
def c2c_app(c2c_config):
    from app import create_app

    return create_app(c2c_config)


@pytest.fixture
def visitor(c2c_app):
    return c2c_app.test_client()


def stored_event(app: Any, event_type: str = "disconnect", **fields: Any) -> int:
    """Put one callback straight into the store (e.g. at a chosen ``received_at``)."""
    import hashlib
    import json
    import time

    from store import get_store

    cid = fields.pop("call_id", None) or call_id()
    payload = fields.pop("payload", None) or {
        "eventType": event_type,
        "callId": cid,
        "cause": fields.get("cause"),
        "n": time.perf_counter_ns(),
    }
    record = {
        "route": event_type,
        "method": "POST",
        "event_type": event_type,
        "call_id": cid,
        "from_number": "+12025550100",
        "to_number": "+12025550123",
        "direction": "outbound",
        "payload": payload,
        "payload_hash": hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest(),
        "reply_status": 204 if event_type == "disconnect" else 200,
        "received_at": time.time(),
        **fields,
    }
    with app.app_context():
        outcome, _ = get_store().record_callback(record)
        assert outcome == "inserted"
        return get_store().events_for_call(cid)[-1]["id"]
