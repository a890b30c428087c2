"""S1: two app servers (two gunicorn masters, tests.servers' runner) on one PostgreSQL.

Callbacks of one call spread over both servers, duplicates delivered to both are stored
once, the click-to-call limits count across both, and the dashboard and JSON API of either
server show every event.  D1: /healthz through gunicorn (200 on PostgreSQL, 503 when the
database is on a closed port).
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.callbacks.helpers import answer_event, call_event, disconnect_event
from tests.calls.fake_bandwidth import FakeBandwidth, Reply, created_call
from tests.pg import fresh_postgres_url
from tests.reliability.harness import (
    TALLY,
    Http,
    account,
    api_events,
    bandwidth_env,
    click_to_call,
    deliver,
    flask_cli,
    login,
    new_prefix,
    reset,
    serve,
    sqlite_env,
    stored_counts,
)
from tests.servers import closed_port, gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CALLS = 24
NO_CONTROL_SOCKET = {"GUNICORN_CMD_ARGS": "--no-control-socket"}


@pytest.fixture(scope="module")
def fake_bandwidth():
    fake = FakeBandwidth()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def pair(tmp_path_factory, fake_bandwidth):
    """Two servers as behind a load balancer: same settings, own spool, one database."""
    with fresh_postgres_url() as url:
        shared = {
            **sqlite_env(tmp_path_factory.mktemp("shared")),
            **bandwidth_env(fake_bandwidth.base_url),
            "DATABASE_URL": url,
            "PUBLIC_BASE_URL": "http://127.0.0.1:8999",  # the balancer's address
            "TRUSTED_HOSTS": "",
            "TRUSTED_PROXIES": "0",
            **NO_CONTROL_SOCKET,
        }
        flask_cli(shared, "store", "migrate")  # once, before either server starts
        envs = [
            {**shared, "SPOOL_PATH": str(tmp_path_factory.mktemp(name) / "spool.jsonl")}
            for name in ("one", "two")
        ]
        with contextlib.ExitStack() as stack:
            bases = [stack.enter_context(gunicorn(env, workers=2)) for env in envs]
            yield bases, shared


@pytest.mark.row("S1")
def test_callbacks_spread_over_two_servers_are_all_stored_once(pair):
    (one, two), env = pair
    prefix = new_prefix("S1")
    statuses: list[int] = []
    lock = threading.Lock()

    def call(index: int) -> list[dict]:
        cid = f"{prefix}-{index}"
        first, second = (one, two) if index % 2 else (two, one)
        answer = answer_event(callId=cid)
        gather = call_event("gather", callId=cid, digits="1")
        ended = disconnect_event(callId=cid)
        got = []
        with Http() as http:
            got.append(deliver(http, first, "answer", answer).status_code)
            got.append(deliver(http, second, "gather", gather).status_code)
            # The disconnect is delivered to both servers at once (a retry after a timeout).
            results: list[int] = []

            def race(base: str) -> None:
                with Http() as own:
                    results.append(deliver(own, base, "disconnect", ended).status_code)

            racers = [threading.Thread(target=race, args=(base,)) for base in (one, two)]
            for racer in racers:
                racer.start()
            for racer in racers:
                racer.join(timeout=30)
            got += results
        with lock:
            statuses.extend(got)
        return [answer, gather, ended]

    with ThreadPoolExecutor(max_workers=6) as pool:
        delivered = [p for batch in pool.map(call, range(CALLS)) for p in batch]
    assert statuses == [s for s in statuses if s in (200, 204)] and len(statuses) == 4 * CALLS
    counts = stored_counts(env["DATABASE_URL"], prefix)
    assert counts == {f"{prefix}-{i}": 3 for i in range(CALLS)}  # duplicates collapsed
    answers = [p for p in delivered if p["eventType"] == "answer"]
    stored, lost, _ = account(answers, stored_counts(env["DATABASE_URL"], prefix, "answer"))
    TALLY.events(acked=len(delivered), stored=len(delivered), lost=lost)
    assert lost == 0 and stored == CALLS
    # Either server's JSON API shows every event of every call, in the same order.
    with Http() as http:
        for index in range(0, CALLS, 5):
            cid = f"{prefix}-{index}"
            seen = [
                [(e["eventType"], e["id"]) for e in api_events(http, base, cid)]
                for base in (one, two)
            ]
            assert seen[0] == seen[1]
            assert [kind for kind, _ in seen[0]] == ["answer", "gather", "disconnect"]
    TALLY.note(
        f"{CALLS} calls x 3 events over 2 servers (disconnect sent to both), all stored once"
    )


@pytest.mark.row("S1")
def test_dashboard_on_either_server_shows_every_event(pair):
    (one, two), env = pair
    cid = f"{new_prefix('S1')}-dash"
    with Http() as http:
        assert deliver(http, one, "answer", answer_event(callId=cid)).status_code == 200
        ended = disconnect_event(callId=cid, cause="rejected")
        assert deliver(http, two, "disconnect", ended).status_code == 204
        login(http, one)  # one login; the same SECRET_KEY makes it valid on both
        for base in (one, two):
            page = http.get(f"{base}/dashboard/calls/{cid}")
            assert page.status_code == 200
            assert page.text.count('class="entry ') == 2
            listing = http.get(f"{base}/dashboard?cause=rejected")
            assert cid in listing.text
    TALLY.events(acked=2, stored=sum(stored_counts(env["DATABASE_URL"], cid).values()), lost=0)


@pytest.mark.row("S1")
def test_click_to_call_limit_holds_in_total_across_both_servers(pair, fake_bandwidth):
    """CLICK_TO_CALL_RATE_PER_ADDRESS (5/hour): counters in the shared database."""
    (one, two), _ = pair
    reset(fake_bandwidth)
    fake_bandwidth.script(*(Reply(201, created_call(callId=f"c-s1-{n}")) for n in range(5)))
    statuses = []
    for index in range(8):
        with Http() as visitor:
            base = (one, two)[index % 2]
            statuses.append(click_to_call(visitor, base, f"+1202555015{index}").status_code)
    assert sorted(statuses) == [303] * 5 + [429] * 3
    assert fake_bandwidth.count == 5
    reset(fake_bandwidth)


@pytest.mark.row("D1")
def test_healthz_through_gunicorn(pair, tmp_path):
    (one, two), _ = pair
    with Http() as http:
        for base in (one, two):
            reply = http.get(f"{base}/healthz")
            assert reply.status_code == 200
            assert reply.json() == {"spooled": False, "status": "ok"}
            assert reply.headers["Cache-Control"] == "no-store"
        dead = {
            **sqlite_env(tmp_path),
            **bandwidth_env(f"http://127.0.0.1:{closed_port()}/api/v2"),
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed_port()}/none",
        }
        with serve(dead, tmp_path, workers=1, name="dead") as server:
            reply = http.get(f"{server.base}/healthz")
            assert reply.status_code == 503
            assert reply.json()["status"] == "store unavailable"
