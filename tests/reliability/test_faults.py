"""Faults survived (F1-F12), against real gunicorn servers on 127.0.0.1.

In every case: nothing acknowledged is lost, no call is placed twice (requests counted at
the fake Bandwidth API), and the outcome is visible (the dashboard, the JSON API, the
click-to-call progress endpoint, or the store's outbound row).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

import bxml
from callbacks import decode_state
from callbacks.redact import mask_passwords
from tests.callbacks.helpers import answer_event, disconnect_event
from tests.calls.fake_bandwidth import FakeBandwidth, Reply, created_call
from tests.conftest import CALLBACK_PASSWORD
from tests.reliability.harness import (
    TALLY,
    Http,
    Server,
    account,
    api_events,
    bandwidth_env,
    click_to_call,
    deliver,
    flask_cli,
    login,
    new_prefix,
    resend,
    reset,
    rows,
    run_load,
    serve,
    sqlite_env,
    stored_counts,
)
from tests.servers import closed_port

pytestmark = pytest.mark.slow

SECRET = "reliability-secret-key"  # harness.sqlite_env's SECRET_KEY
SAFE_SPEECH = "We are sorry, something went wrong. Goodbye."
THREADS = 4


def wait_for_workers(server: Server, count: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(server.workers()) >= count:
            server.wait_up()
            return
        time.sleep(0.1)
    raise AssertionError(f"{server.name} has {server.workers()} workers, wanted {count}")


def assert_safe_document(reply: requests.Response) -> None:
    assert reply.status_code == 200, reply.text[:300]
    assert reply.headers["Content-Type"] == "application/xml; charset=utf-8"
    document = bxml.parse(reply.content)
    assert [verb.name for verb in document] == ["SpeakSentence", "Hangup"]
    assert document[0].text == SAFE_SPEECH


def no_stack_trace(reply: requests.Response) -> bool:
    return "Traceback" not in reply.text and 'File "' not in reply.text


def tally_acked(acked: list[dict], url: str, prefix: str, route: str | None = None) -> None:
    counts = stored_counts(url, prefix, route)
    stored, lost, doubled = account(acked, counts)
    TALLY.events(acked=len(acked), stored=stored, lost=lost)
    assert lost == 0, "acknowledged but lost"
    assert doubled == [], "stored twice"


# --- F1-F3: worker deaths on the main server --------------------------------------------------


@pytest.mark.row("F1")
def test_worker_sigkill_under_load_loses_nothing_acknowledged(main_server, main_env):
    prefix = new_prefix("F1")
    kills: list[int] = []

    def kill_workers(result) -> None:
        for at in (1.0, 2.2):
            time.sleep(max(0.0, at - result.seconds_elapsed()))
            workers = main_server.workers()
            assert workers, "no worker to kill"
            victim = workers[len(kills) % len(workers)]
            main_server.signal_pid(victim, signal.SIGKILL)
            kills.append(victim)

    result = run_load(
        main_server.base,
        "disconnect",
        lambda i: disconnect_event(callId=f"{prefix}-{i}"),
        threads=THREADS,
        seconds=3.5,
        during=kill_workers,
    )
    TALLY.note(f"{len(kills)} workers SIGKILLed; {result.summary()}")
    # Bandwidth resends what was not acknowledged; each copy collapses into one row.
    unacked = [payload for payload, *_ in result.errors + result.refused]
    never = resend(main_server.base, "disconnect", unacked)
    assert never == []
    assert len(kills) == 2
    assert [status for _, status, _ in result.refused if status >= 500] == []
    everything = result.acked + unacked
    tally_acked(everything, main_env["DATABASE_URL"], prefix)
    counts = stored_counts(main_env["DATABASE_URL"], prefix)
    assert sum(counts.values()) == len(everything)
    wait_for_workers(main_server, 4)


def _arm(main_env: dict[str, str], point: str, call_id: str) -> Path:
    crash = Path(main_env["STORE_TEST_CRASH_FILE"])
    crash.write_text(f"{point} {call_id}")
    return crash


@pytest.mark.row("F2")
def test_crash_between_insert_and_commit(main_server, main_env):
    payload = disconnect_event(callId=new_prefix("F2"))
    crash = _arm(main_env, "before-commit", payload["callId"])
    with Http() as http:
        with pytest.raises(requests.ConnectionError):
            deliver(http, main_server.base, "disconnect", payload)  # no 2xx: the worker died
        assert not crash.exists()
        assert stored_counts(main_env["DATABASE_URL"], payload["callId"]) == {}
        assert deliver(http, main_server.base, "disconnect", payload).status_code == 204
        assert deliver(http, main_server.base, "disconnect", payload).status_code == 204
        assert len(api_events(http, main_server.base, payload["callId"])) == 1
    tally_acked([payload], main_env["DATABASE_URL"], payload["callId"])
    wait_for_workers(main_server, 4)


@pytest.mark.row("F3")
def test_crash_after_commit_before_the_reply(main_server, main_env):
    payload = answer_event(callId=new_prefix("F3"))
    crash = _arm(main_env, "after-commit", payload["callId"])
    with Http() as http:
        with pytest.raises(requests.ConnectionError):
            deliver(http, main_server.base, "answer", payload)
        assert not crash.exists()
        assert stored_counts(main_env["DATABASE_URL"], payload["callId"]) == {payload["callId"]: 1}
        again = deliver(http, main_server.base, "answer", payload)
        assert again.status_code == 200
        bxml.parse(again.content)
        [event] = api_events(http, main_server.base, payload["callId"])
        # The redelivery got the stored reply: sent with the password, which the API masks.
        assert f'password="{CALLBACK_PASSWORD}"' in again.text
        assert mask_passwords(again.text) == event["replyBody"]
    tally_acked([payload], main_env["DATABASE_URL"], payload["callId"])
    wait_for_workers(main_server, 4)


# --- F4 and F11: a locked SQLite file; an unreachable Bandwidth --------------------------------

LOCKER = """
import select, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
select.select([sys.stdin], [], [], float(sys.argv[2]))  # until told (or at most N s)
db.execute("COMMIT")
"""


@pytest.fixture(scope="module")
def locked(tmp_path_factory):
    """STORE_BUSY_TIMEOUT=0.3 s, and outbound calls to a closed port."""
    directory = tmp_path_factory.mktemp("locked")
    env = {
        **sqlite_env(directory),
        **bandwidth_env(f"http://127.0.0.1:{closed_port()}/api/v2"),
        "STORE_BUSY_TIMEOUT": "0.3",
    }
    with serve(env, directory, name="locked") as server:
        yield server, env, directory


@pytest.mark.row("F4")
def test_locked_database_spools_then_replays_exactly_once(locked):
    server, env, _ = locked
    prefix = new_prefix("F4")
    db_file = env["DATABASE_URL"].removeprefix("sqlite:///")
    with Http() as http:
        warm = disconnect_event(callId=f"{prefix}-warm")
        assert deliver(http, server.base, "disconnect", warm).status_code == 204
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, db_file, "20"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout is not None
        assert locker.stdout.readline().strip() == "locked"
        locked_at = time.monotonic()
        payloads = [
            (answer_event if i % 4 == 0 else disconnect_event)(callId=f"{prefix}-{i}")
            for i in range(8)
        ]
        replies: list[tuple[dict, int, float, str]] = []

        def send(batch: list[dict]) -> None:
            with Http() as http:
                for payload in batch:
                    route = payload["eventType"]
                    begun = time.monotonic()
                    reply = deliver(http, server.base, route, payload)
                    replies.append(
                        (payload, reply.status_code, time.monotonic() - begun, reply.text)
                    )

        senders = [threading.Thread(target=send, args=(payloads[i::2],)) for i in range(2)]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join(timeout=30)
        held = time.monotonic() - locked_at
        assert locker.poll() is None, "the lock must be held until every callback is answered"
        spool = Path(env["SPOOL_PATH"])
        assert len(spool.read_text().splitlines()) == 8  # (replayed once the lock is gone)
        assert locker.stdin is not None
        locker.stdin.write("release\n")
        locker.stdin.flush()
        assert locker.wait(timeout=30) == 0
    finally:
        if locker.poll() is None:
            locker.kill()
            locker.wait()
        for pipe in (locker.stdin, locker.stdout):
            if pipe is not None:
                pipe.close()
    # Every callback was answered while the lock was still held (asserted above): spooled,
    # not waiting for the database.
    assert sorted(status for _, status, _, _ in replies) == [200, 200] + [204] * 6
    # A commit that was waiting when the lock went may store a spooled row first; the
    # replay then finds it stored.  Either way each is stored once.
    flask_cli(env, "store", "replay-spool")
    assert "Replayed 0 spooled event(s)" in flask_cli(env, "store", "replay-spool")
    assert not spool.exists()
    expected = {payload["callId"]: 1 for payload in [warm, *payloads]}
    assert stored_counts(env["DATABASE_URL"], prefix) == expected
    tally_acked([warm, *payloads], env["DATABASE_URL"], prefix)
    took = max(t for _, _, t, _ in replies)
    TALLY.note(
        f"8 callbacks spooled under a {held:.1f} s lock (slowest {took:.2f} s), replayed once"
    )


@pytest.mark.row("F11")
def test_connection_refused_places_no_call_and_says_so(locked):
    server, env, _ = locked
    with Http() as visitor:
        begun = time.monotonic()
        reply = click_to_call(visitor, server.base, "+12025550171")
        took = time.monotonic() - begun
    assert reply.status_code == 503
    assert "cannot place calls right now" in reply.text
    [attempt] = rows(env["DATABASE_URL"], "SELECT * FROM outbound_calls")
    assert attempt["outcome"] == "failed"
    assert attempt["call_id"] is None
    assert "could not connect" in attempt["error"]
    TALLY.note(f"refused in {took:.2f} s; outbound row outcome=failed")


# --- F5 and F12 (store down): the database file cannot be opened -------------------------------


@pytest.mark.row("F5")
def test_unwritable_database_spools_then_replays_exactly_once(tmp_path):
    blocker = tmp_path / "db"
    blocker.write_text("a file where the database directory should be")
    env = {
        **sqlite_env(tmp_path),
        "DATABASE_URL": f"sqlite:///{blocker / 'events.db'}",
        "VOICE_BACKEND": "bandwidth",
        **bandwidth_env(f"http://127.0.0.1:{closed_port()}/api/v2"),
    }
    prefix = new_prefix("F5")
    payloads = [
        (answer_event if i % 3 == 0 else disconnect_event)(callId=f"{prefix}-{i}") for i in range(6)
    ]
    fallback = answer_event(callId=f"{prefix}-fallback")
    with serve(env, tmp_path, name="unwritable") as server, Http() as http:
        health = http.get(f"{server.base}/healthz")
        assert health.status_code == 503
        for payload in payloads:
            reply = deliver(http, server.base, payload["eventType"], payload)
            assert reply.status_code in (200, 204), reply.text[:300]
            assert no_stack_trace(reply)
        # F12: the fallback route answers with the database gone.
        assert_safe_document(deliver(http, server.base, "answer-fallback", fallback))
        health = http.get(f"{server.base}/healthz").json()
        assert health == {"spooled": True, "status": "store unavailable"}
        assert "Traceback" not in server.logs()

        # The disk is fixed; the spool goes into the database once.
        blocker.unlink()
        blocker.mkdir()
        assert "Replayed 7 spooled event(s)" in flask_cli(env, "store", "replay-spool")
        assert "Replayed 0 spooled event(s)" in flask_cli(env, "store", "replay-spool")
        assert http.get(f"{server.base}/healthz").json() == {"spooled": False, "status": "ok"}
        assert [e["route"] for e in api_events(http, server.base, fallback["callId"])] == [
            "answer-fallback"
        ]
    tally_acked([*payloads, fallback], env["DATABASE_URL"], prefix)


@pytest.fixture(scope="module")
def everything_down(tmp_path_factory):
    """Database: PostgreSQL on a closed port; spool: under a file.  Fallback failure mode."""
    directory = tmp_path_factory.mktemp("down")
    (directory / "blocker").write_text("not a directory")
    env = {
        **sqlite_env(directory),
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed_port()}/none",
        "SPOOL_PATH": str(directory / "blocker" / "spool.jsonl"),
        "ANSWER_FAILURE_MODE": "fallback",
        **bandwidth_env(f"http://127.0.0.1:{closed_port()}/api/v2"),
    }
    with serve(env, directory, name="down") as server:
        yield server


@pytest.mark.row("F12")
def test_fallback_route_serves_with_database_and_spool_gone(everything_down):
    payload = answer_event(callId=new_prefix("F12"))
    with Http() as http:
        primary = deliver(http, everything_down.base, "answer", payload)
        # Not acknowledged (so not lost): Bandwidth goes to answerFallbackUrl.
        assert primary.status_code == 503
        assert no_stack_trace(primary)
        assert_safe_document(deliver(http, everything_down.base, "answer-fallback", payload))
        lost = deliver(http, everything_down.base, "disconnect", disconnect_event())
        assert lost.status_code == 503 and no_stack_trace(lost)


# --- F6-F10, F12: the app with test knobs, and a fake Bandwidth --------------------------------


@pytest.fixture(scope="module")
def fake_bandwidth():
    fake = FakeBandwidth()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def knobs_env(tmp_path_factory, fake_bandwidth):
    directory = tmp_path_factory.mktemp("knobs")
    return directory, {
        **sqlite_env(directory),
        **bandwidth_env(fake_bandwidth.base_url),
        "RELIABILITY_FAULTY_ANSWER": "1",
        "RELIABILITY_VOICE_TIMEOUT": "1,1.5",
        "RELIABILITY_CONFIG": json.dumps(
            {"CLICK_TO_CALL_RATE_PER_ADDRESS": "100/hour", "CLICK_TO_CALL_DESTINATION_COOLDOWN": 0}
        ),
    }


KNOBS_APP = "tests.reliability.harness_app:create_app()"


@pytest.fixture(scope="module")
def knobs(knobs_env):
    directory, env = knobs_env
    with serve(env, directory, app=KNOBS_APP, name="knobs") as server:
        yield server, env


@pytest.fixture(scope="module")
def knobs_operator(knobs):
    server, _ = knobs
    with Http() as http:
        login(http, server.base)
        yield http


@pytest.fixture
def bandwidth(fake_bandwidth):
    reset(fake_bandwidth)
    yield fake_bandwidth
    reset(fake_bandwidth)


def _attempt(env: dict[str, str], sent: dict) -> dict:
    attempt_id = decode_state(sent["tag"], SECRET)["_attempt"]
    [row] = rows(
        env["DATABASE_URL"], "SELECT * FROM outbound_calls WHERE attempt_id = :a", a=attempt_id
    )
    return row


def _progress(visitor: Http, base: str, reply: requests.Response) -> str:
    assert reply.status_code == 303, reply.text[:300]
    status = visitor.get(base + reply.headers["Location"] + "/status")
    assert status.status_code == 200
    return str(status.json()["state"])


@pytest.mark.row("F7")
def test_429_twice_then_201_is_exactly_three_requests(knobs, knobs_operator, bandwidth):
    server, env = knobs
    bandwidth.script(
        Reply(
            429, {"description": "Account call creation rate limit exceeded"}, {"Retry-After": "1"}
        ),
        Reply(
            429, {"description": "Account call creation rate limit exceeded"}, {"Retry-After": "1"}
        ),
        Reply(201, created_call(callId="c-f7-created")),
    )
    with Http() as visitor:
        begun = time.monotonic()
        reply = click_to_call(visitor, server.base, "+12025550172")
        took = time.monotonic() - begun
        assert _progress(visitor, server.base, reply) == "queued"
    assert bandwidth.count == 3
    assert len({r.body for r in bandwidth.received}) == 1  # the same request, resent
    assert took >= 1.9  # both Retry-After waits
    row = _attempt(env, bandwidth.received[0].json())
    assert (row["outcome"], row["call_id"]) == ("created", "c-f7-created")
    page = knobs_operator.get(f"{server.base}/dashboard/calls/c-f7-created")
    assert page.status_code == 200
    assert '<span class="badge">created</span>' in page.text
    TALLY.note(f"3 requests, created after {took:.1f} s")


@pytest.mark.row("F8")
def test_429_with_a_huge_retry_after_refuses_at_once(knobs, bandwidth):
    server, env = knobs
    workers = server.workers()
    bandwidth.script(Reply(429, {"description": "rate limit"}, {"Retry-After": "3600"}))
    with Http() as visitor:
        reply = click_to_call(visitor, server.base, "+12025550173")
    # Answered (not timed out waiting an hour), after one request.
    assert reply.status_code == 503
    assert "try again in a minute" in reply.text
    assert bandwidth.count == 1
    assert _attempt(env, bandwidth.received[0].json())["outcome"] == "rate_limited"
    assert server.workers() == workers  # no worker was timed out or killed


@pytest.mark.row("F9")
def test_500_is_one_request_and_an_unknown_outcome(knobs, bandwidth):
    server, env = knobs
    bandwidth.script(Reply(500, {"type": "internal-error", "description": "boom"}))
    with Http() as visitor:
        reply = click_to_call(visitor, server.base, "+12025550174")
        assert _progress(visitor, server.base, reply) == "unknown"
    # Creating the call is synchronous: a resend would have been sent before the visitor's
    # request was answered.
    assert bandwidth.count == 1  # never resent: the call may exist
    row = _attempt(env, bandwidth.received[0].json())
    assert row["outcome"] == "unknown"


def _timed_out_call(knobs, bandwidth, number: str, call_id: str):
    server, _ = knobs
    bandwidth.script(Reply(201, created_call(callId=call_id), delay=2.5))
    visitor = Http()
    begun = time.monotonic()
    reply = click_to_call(visitor, server.base, number)
    took = time.monotonic() - begun
    return visitor, reply, took


@pytest.mark.row("F10")
def test_read_timeout_is_one_request_and_an_unknown_outcome(knobs, knobs_operator, bandwidth):
    server, env = knobs
    visitor, reply, took = _timed_out_call(knobs, bandwidth, "+12025550175", "c-f10-late")
    with visitor:
        assert _progress(visitor, server.base, reply) == "unknown"
    assert took >= 1.4  # the read timeout
    # The visitor's request ended after the timeout: a resend would have been sent by then.
    assert bandwidth.count == 1
    sent = bandwidth.received[0].json()
    assert _attempt(env, sent)["outcome"] == "unknown"  # flagged for reconciliation
    # The call did exist: its answer callback settles the attempt, shown on the dashboard.
    with Http() as http:
        answer = deliver(
            http, server.base, "answer", answer_event(callId="c-f10-late", tag=sent["tag"])
        )
        assert answer.status_code == 200
    assert _attempt(env, sent)["outcome"] == "created"
    page = knobs_operator.get(f"{server.base}/dashboard/calls/c-f10-late")
    assert '<span class="badge">created</span>' in page.text


@pytest.mark.row("F10")
def test_visitor_follows_a_call_whose_create_timed_out(knobs, bandwidth):
    """place_call hands the attempt id to the caller with OutcomeUnknown, so the visitor's
    progress page says "unknown", then follows the call once its callback arrives."""
    server, _ = knobs
    visitor, reply, _ = _timed_out_call(knobs, bandwidth, "+12025550176", "c-f10-visitor")
    with visitor:
        assert _progress(visitor, server.base, reply) == "unknown"
        sent = bandwidth.received[0].json()
        with Http() as http:
            answer_payload = answer_event(callId="c-f10-visitor", tag=sent["tag"])
            assert deliver(http, server.base, "answer", answer_payload).status_code == 200
        assert _progress(visitor, server.base, reply) == "answered"


@pytest.mark.row("F12")
def test_failing_answer_handler_gets_the_safe_document_and_the_fallback_works(knobs):
    server, env = knobs
    payload = answer_event(callId=f"c-fail-{uuid.uuid4().hex[:12]}")
    with Http() as http:
        assert_safe_document(deliver(http, server.base, "answer", payload))
        assert_safe_document(deliver(http, server.base, "answer-fallback", payload))
        answer, fallback = api_events(http, server.base, payload["callId"])
    assert (answer["route"], fallback["route"]) == ("answer", "answer-fallback")
    assert "RuntimeError: the answer handler failed" in answer["error"]
    assert fallback["error"] is None
    tally_acked([payload], env["DATABASE_URL"], payload["callId"], "answer")


# --- F6: graceful restart under load -----------------------------------------------------------


def _slow_answer(base: str, call_id: str, out: list) -> threading.Thread:
    def run() -> None:
        with Http() as http:
            try:
                out.append(deliver(http, base, "answer", answer_event(callId=call_id)).status_code)
            except requests.RequestException as exc:
                out.append(repr(exc))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.row("F6")
def test_graceful_reload_and_shutdown_under_load(knobs_env):
    directory, env = knobs_env
    env = {**env, "DATABASE_URL": f"sqlite:///{directory / 'f6.db'}"}
    prefix = new_prefix("F6")
    slow_ids = [f"c-slow-{prefix}-hup", f"c-slow-{prefix}-term"]
    slow_status: list = []
    everything: list[dict] = []
    with serve(env, directory, app=KNOBS_APP, name="f6") as server:
        old_workers = server.workers()

        def reload(result) -> None:
            time.sleep(0.8)
            slow = _slow_answer(server.base, slow_ids[0], slow_status)
            time.sleep(0.3)
            server.signal(signal.SIGHUP)  # new workers; old ones finish what they hold
            slow.join(timeout=30)

        hup = run_load(
            server.base,
            "disconnect",
            lambda i: disconnect_event(callId=f"{prefix}-hup-{i}"),
            threads=3,
            seconds=3.0,
            during=reload,
        )
        wait_for_workers(server, 2)
        deadline = time.monotonic() + 10
        while set(server.workers()) & set(old_workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not set(server.workers()) & set(old_workers), "the old workers did not go"
        unacked = [p for p, *_ in hup.errors + hup.refused]
        assert resend(server.base, "disconnect", unacked) == []
        everything += hup.acked + unacked

        def shutdown(result) -> None:
            time.sleep(0.5)
            slow = _slow_answer(server.base, slow_ids[1], slow_status)
            time.sleep(0.3)
            server.signal(signal.SIGTERM)
            slow.join(timeout=35)

        term = run_load(
            server.base,
            "disconnect",
            lambda i: disconnect_event(callId=f"{prefix}-term-{i}"),
            threads=3,
            seconds=2.0,
            during=shutdown,
        )
        assert server.process is not None
        assert server.process.wait(timeout=40) == 0
    assert slow_status == [200, 200], "an in-flight request was cut off"
    everything += term.acked
    # Every acknowledged event was stored before the old server went away.
    counts = stored_counts(env["DATABASE_URL"], prefix)
    assert not [p["callId"] for p in term.acked if not counts.get(p["callId"])]
    # The server comes back; Bandwidth's resends of the rest are stored once.
    unacked = [p for p, *_ in term.errors + term.refused]
    with serve(env, directory, app=KNOBS_APP, name="f6-again") as again:
        assert resend(again.base, "disconnect", unacked) == []
    everything += unacked
    tally_acked(everything, env["DATABASE_URL"], prefix)
    slow_rows = stored_counts(env["DATABASE_URL"], "c-slow-" + prefix)
    assert slow_rows == {slow_ids[0]: 1, slow_ids[1]: 1}
    TALLY.note(
        f"HUP: {hup.summary()}; TERM: {term.summary()}; "
        f"{len(hup.errors) + len(term.errors)} unacknowledged resent"
    )
    assert re.search(r"Handling signal: hup", server.logs(), re.IGNORECASE)
