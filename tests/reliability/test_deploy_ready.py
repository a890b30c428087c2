"""Deploy readiness: structured logs without secrets (D2), retention (D3).

(D1, /healthz through gunicorn, is in test_scaleout.py next to the PostgreSQL servers.)
"""

from __future__ import annotations

import base64
import json
import logging
import sys
import time
import uuid
from urllib.parse import urlencode

import pytest

import logsetup
from tests.callbacks.helpers import answer_event, basic_auth, disconnect_event
from tests.conftest import CALLBACK_PASSWORD, CALLBACK_USER, DASHBOARD_PASSWORD
from tests.reliability.harness import TALLY, Http, csrf_token, deliver, stored_counts

REQUIRED_KEYS = {"timestamp", "level", "logger", "message"}


def json_lines(text: str) -> list[dict]:
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))  # every JSON-looking line must be JSON
    return found


def logs_once_logged(server, *wanted: tuple[str, str], timeout: float = 30.0) -> str:
    """The server's logs once a request line for each (method, path) is in them (each
    worker flushes per record, at the end of the request)."""
    deadline = time.monotonic() + timeout
    while True:
        logs = server.logs()
        seen = set()
        for line in logs.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # not JSON, or a line still being written
            if isinstance(entry, dict) and entry.get("logger") == logsetup.REQUEST_LOGGER:
                seen.add((entry.get("method"), entry.get("path")))
        if set(wanted) <= seen:
            return logs
        assert time.monotonic() < deadline, f"never logged: {set(wanted) - seen}"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.row("D2")
def test_logs_hold_no_credentials_no_query_strings_and_no_numbers(main_server, main_env):
    tag = f"tag-{uuid.uuid4().hex}"
    caller, callee = "+13125550111", "+13125550122"
    wrong_password = f"wrong-{uuid.uuid4().hex[:8]}"
    posted = answer_event(callId=f"c-d2-{uuid.uuid4().hex[:8]}")
    got = disconnect_event(callId=f"c-d2-{uuid.uuid4().hex[:8]}", tag=tag)
    got.update({"from": caller, "to": callee})
    base = main_server.base
    with Http() as http:
        assert deliver(http, base, "answer", posted).status_code == 200
        query = urlencode(got)
        reply = http.get(f"{base}/callbacks/disconnect?{query}", headers=basic_auth())
        assert reply.status_code == 204
        # Bandwidth's unauthenticated probe: refused, so it is logged (without the query).
        assert http.get(f"{base}/callbacks/disconnect?{query}").status_code == 401
        # A failed dashboard login: its password is in a form body, never in a log.
        page = http.get(f"{base}/dashboard/login")
        http.post(
            f"{base}/dashboard/login",
            data={"csrf_token": csrf_token(page.text), "username": "x", "password": wrong_password},
        )
    assert stored_counts(main_env["DATABASE_URL"], got["callId"]) == {got["callId"]: 1}
    TALLY.events(acked=2, stored=2, lost=0)
    logs = logs_once_logged(
        main_server, ("GET", "/callbacks/disconnect"), ("POST", "/dashboard/login")
    )
    token = base64.b64encode(f"{CALLBACK_USER}:{CALLBACK_PASSWORD}".encode()).decode()
    for secret in (
        CALLBACK_PASSWORD,
        DASHBOARD_PASSWORD,
        main_env["SECRET_KEY"],
        main_env["BW_PASSWORD"],
        wrong_password,
        token,
        "Authorization:",
        tag,
        caller,
        callee,
        caller.replace("+", "%2B"),
        query,
    ):
        assert secret not in logs
    lines = json_lines(logs)
    assert lines and all(REQUIRED_KEYS <= set(line) for line in lines)
    requests_logged = [line for line in lines if line["logger"] == logsetup.REQUEST_LOGGER]
    assert all("?" not in line["path"] for line in requests_logged)
    assert {"method": "GET", "path": "/callbacks/disconnect", "status": 401}.items() <= next(
        line
        for line in reversed(requests_logged)
        if line["path"] == "/callbacks/disconnect" and line["method"] == "GET"
    ).items()
    # Accepted callbacks are stored events (status, latency, reply): no second log line.
    assert not any(
        line["path"].startswith("/callbacks/") and line["status"] < 400 for line in requests_logged
    )
    assert any(line["path"] == "/dashboard/login" for line in requests_logged)
    stamp = lines[-1]["timestamp"]
    assert time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S") and stamp.endswith("Z")


@pytest.mark.row("D2")
def test_json_formatter_redacts_configured_secrets():
    from flask import Flask

    app = Flask(__name__)
    app.config.update(
        CALLBACK_PASSWORD="cb-secret-1234",
        DASHBOARD_PASSWORD="dash-secret-5678",
        CALLBACK_CREDENTIALS="old:rotated-secret-9",
        SECRET_KEY="signing-key-abcd",
    )
    before = logging.getLogger().handlers[:]
    logsetup.init_app(app)  # under pytest the root logger is configured: left alone
    assert logging.getLogger().handlers == before
    formatter = logsetup.JsonFormatter()
    try:
        raise RuntimeError("connect failed for user:cb-secret-1234")
    except RuntimeError:
        record = logging.LogRecord(
            "store.core", logging.ERROR, __file__, 1, "auth %s and %s",
            ("dash-secret-5678", "rotated-secret-9"), sys.exc_info(),
        )  # fmt: skip
    entry = json.loads(formatter.format(record))
    assert entry["message"] == "auth [redacted] and [redacted]"
    assert "cb-secret-1234" not in entry["exception"] and "[redacted]" in entry["exception"]
    assert entry["level"] == "ERROR" and entry["logger"] == "store.core"
    assert REQUIRED_KEYS <= set(entry)


@pytest.mark.row("D3")
def test_purge_deletes_what_is_past_retention(app_config):
    """``flask store purge`` end to end (CLI runner, the real app): --days N, and the
    EVENT_RETENTION_DAYS default."""
    from app import create_app
    from store import get_store
    from tests.reliability.harness import scalar

    app = create_app({**app_config, "EVENT_RETENTION_DAYS": 30})
    client = app.test_client()
    url = app_config["DATABASE_URL"]
    ids = {age: f"c-d3-{age}-{uuid.uuid4().hex[:6]}" for age in ("old", "mid", "new")}
    for cid in ids.values():
        auth = {"Content-Type": "application/json", **basic_auth()}
        for route, payload in (("answer", answer_event), ("disconnect", disconnect_event)):
            reply = client.post(
                f"/callbacks/{route}", data=json.dumps(payload(callId=cid)), headers=auth
            )
            assert reply.status_code in (200, 204)
    client.post("/callbacks/disconnect", data=b"{", headers=auth)  # a rejected request
    with app.app_context():
        get_store().record_outbound_attempt("attempt-old", {"to": "+12025550123"})
    day = 86400
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        for age, days in (("old", 40), ("mid", 31)):
            conn.execute(
                text("UPDATE events SET received_at = received_at - :s WHERE call_id = :c"),
                {"s": days * day, "c": ids[age]},
            )
        conn.execute(
            text("UPDATE rejected_requests SET received_at = received_at - :s"), {"s": 40 * day}
        )
        conn.execute(
            text("UPDATE outbound_calls SET created_at = created_at - :s"), {"s": 40 * day}
        )
    engine.dispose()
    runner = app.test_cli_runner()

    result = runner.invoke(args=["store", "purge", "--days", "35"])
    assert result.exit_code == 0, result.output
    assert "Purged 4 row(s) older than 35 day(s)" in result.output  # 2 events, 1 + 1
    counts = {age: len(stored_counts(url, cid)) for age, cid in ids.items()}
    assert counts == {"old": 0, "mid": 1, "new": 1}

    result = runner.invoke(args=["store", "purge"])  # EVENT_RETENTION_DAYS = 30
    assert result.exit_code == 0, result.output
    assert "Purged 2 row(s) older than 30 day(s)" in result.output
    assert stored_counts(url, ids["mid"]) == {}
    assert stored_counts(url, ids["new"]) == {ids["new"]: 2}
    reply = client.get(
        f"/api/calls/{ids['old']}/events", headers=basic_auth("operator", "dashboard-secret")
    )
    assert reply.get_json()["events"] == []
    # The per-cause counts keep their history (they hold no numbers).
    assert int(scalar(url, "SELECT count FROM disconnect_totals WHERE cause = 'busy'")) == 3

    refused = runner.invoke(args=["store", "purge", "--days", "-1"])
    assert refused.exit_code != 0
    assert stored_counts(url, ids["new"]) == {ids["new"]: 2}
    get_store(app).dispose()
