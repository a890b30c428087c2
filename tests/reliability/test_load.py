"""Load held (L1-L4): the real app under gunicorn, short bounded loads, correctness only.

Throughput and p99 are printed in the summary, never asserted (bench/ measures them).
"""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
import requests

import bxml
from callbacks.tags import decode_state
from tests.callbacks.helpers import answer_event, basic_auth, disconnect_event
from tests.conftest import DASHBOARD_PASSWORD, DASHBOARD_USER
from tests.reliability.harness import (
    JSON,
    TALLY,
    Http,
    account,
    new_prefix,
    run_load,
    stored_counts,
)

pytestmark = pytest.mark.slow

SECONDS = 3.0
THREADS = 4


def _check_and_tally(result, url: str, prefix: str, route: str) -> None:
    counts = stored_counts(url, prefix, route)
    stored, lost, doubled = account(result.acked, counts)
    TALLY.events(acked=len(result.acked), stored=stored, lost=lost)
    TALLY.note(result.summary())
    assert result.sent > 0
    assert result.refused == [], result.refused[:3]
    assert result.errors == [], result.errors[:3]
    assert lost == 0
    assert doubled == []


@pytest.mark.row("L1")
def test_disconnect_load_is_all_acknowledged_and_stored(main_server, main_env):
    prefix = new_prefix("L1")
    result = run_load(
        main_server.base,
        "disconnect",
        lambda i: disconnect_event(callId=f"{prefix}-{i}"),
        threads=THREADS,
        seconds=SECONDS,
    )
    _check_and_tally(result, main_env["DATABASE_URL"], prefix, "disconnect")


@pytest.mark.row("L2")
def test_answer_load_gets_the_golden_bxml_and_is_stored(main_server, main_env, tmp_path):
    from app import create_app

    golden_app = create_app(
        {
            **{k: v for k, v in main_env.items() if k != "DATABASE_URL"},
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'golden.db'}",
            "SPOOL_PATH": str(tmp_path / "golden.jsonl"),
        }
    )
    golden = golden_app.test_client().post(
        "/callbacks/answer",
        data=json.dumps(answer_event(callId="c-golden")),
        headers={**JSON, **basic_auth()},
        base_url="http://127.0.0.1",  # TRUSTED_HOSTS
    )
    assert golden.status_code == 200
    prefix = new_prefix("L2")
    result = run_load(
        main_server.base,
        "answer",
        lambda i: answer_event(callId=f"{prefix}-{i}"),
        threads=THREADS,
        seconds=SECONDS,
        keep_bodies=True,
    )
    _check_and_tally(result, main_env["DATABASE_URL"], prefix, "answer")
    # Every reply is the same document: the golden one, and the hardened parser reads it.
    # Only the signed tag differs: its state is bound to each call (and carries its time).
    signed = re.compile(rb"st2c\.[A-Za-z0-9_.-]+")
    assert {signed.sub(b"SIGNED", body) for body in result.bodies} == {
        signed.sub(b"SIGNED", golden.data)
    }
    [golden_tag] = [verb.text for verb in bxml.parse(golden.data) if verb.name == "Tag"]
    state = decode_state(golden_tag, main_env["SECRET_KEY"], call_id="c-golden")
    assert state == {"step": "department", "_flow": "demo-ivr"}
    assert bxml.parse(golden.data) == bxml.parse(golden.data.decode())
    assert sum(result.bodies.values()) == len(result.acked)


@pytest.mark.row("L3")
def test_dashboard_api_polled_during_load_never_sees_a_locked_database(
    main_server, main_env, main_operator
):
    prefix = new_prefix("L3")
    polls: list[tuple[str, int, str]] = []
    basic = (DASHBOARD_USER, DASHBOARD_PASSWORD)
    base = main_server.base

    def poll(result) -> None:
        # At least five rounds, however slow the loaded machine answers: the checks below
        # are about what the polls see, not how fast they come back.
        deadline = time.monotonic() + SECONDS
        rounds = 0
        with Http() as http:
            while time.monotonic() < deadline or rounds < 5:
                rounds += 1
                with result.lock:  # one snapshot: was this call acknowledged when asked?
                    acked = bool(result.acked)
                    latest = result.acked[-1]["callId"] if acked else f"{prefix}-0"
                for url, session, auth in (
                    (f"{base}/api/disconnects?cause=busy&limit=20", http, basic),
                    (f"{base}/api/calls/{latest}/events", http, basic),
                    (f"{base}/dashboard", main_operator, None),
                ):
                    reply = session.get(url, auth=auth)
                    polls.append((url, reply.status_code, reply.text))
                    if url.endswith("/events") and acked and reply.status_code == 200:
                        assert reply.json()["events"], f"acknowledged {latest} is not shown"
                time.sleep(0.2)  # about 5 polls per second of each kind

    result = run_load(
        base,
        "disconnect",
        lambda i: disconnect_event(callId=f"{prefix}-{i}"),
        threads=THREADS,
        seconds=SECONDS,
        during=poll,
    )
    _check_and_tally(result, main_env["DATABASE_URL"], prefix, "disconnect")
    TALLY.note(f"{len(polls)} dashboard/API polls during the load")
    assert len(polls) >= 3 * 5
    assert [p[:2] for p in polls if p[1] != 200] == []
    assert not [p[0] for p in polls if "database is locked" in p[2]]
    assert "database is locked" not in main_server.logs()


@pytest.mark.row("L4")
def test_unauthenticated_probe_then_retry(main_server, main_env):
    """Bandwidth's challenge flow: a probe without credentials (401 + WWW-Authenticate:
    Basic, nothing stored), then the same request with them (stored)."""
    prefix = new_prefix("L4")
    base = main_server.base
    lock = threading.Lock()
    retried: list[dict] = []
    probes_only: list[dict] = []
    bad: list[str] = []
    counter = iter(range(1000))
    deadline = time.monotonic() + SECONDS

    def pairs() -> None:
        with Http() as http:
            while time.monotonic() < deadline:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                payload = disconnect_event(callId=f"{prefix}-{index}")
                body = json.dumps(payload)
                try:
                    probe = http.post(f"{base}/callbacks/disconnect", data=body, headers=JSON)
                    challenge = probe.headers.get("WWW-Authenticate", "")
                    if probe.status_code != 401 or not challenge.startswith("Basic realm="):
                        bad.append(f"probe {probe.status_code} {challenge!r}")
                        continue
                    if index % 10 == 9:  # Bandwidth gave up on this one: never retried
                        with lock:
                            probes_only.append(payload)
                        continue
                    retry = http.post(
                        f"{base}/callbacks/disconnect",
                        data=body,
                        headers={**JSON, **basic_auth()},
                    )
                except requests.RequestException as exc:
                    bad.append(repr(exc))
                    continue
                if retry.status_code != 204:
                    bad.append(f"retry {retry.status_code}")
                with lock:
                    retried.append(payload)

    threads = [threading.Thread(target=pairs) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SECONDS + 30)
    counts = stored_counts(main_env["DATABASE_URL"], prefix)
    stored, lost, doubled = account(retried, counts)
    TALLY.events(acked=len(retried), stored=stored, lost=lost)
    TALLY.note(f"{len(retried) + len(probes_only)} probes, {len(retried)} retries")
    assert bad == []
    assert len(retried) > 10
    assert lost == 0 and doubled == []
    assert not [p["callId"] for p in probes_only if counts.get(p["callId"])]
    assert sum(counts.values()) == len(retried)
