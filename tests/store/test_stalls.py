"""Bounded latency when the database stalls: locked, hung, refused, under concurrent load.

Every callback is answered within the busy timeout plus a wide margin (the machine is
shared), while the stall is still going on (it ends only after every answer is in), and
every acknowledged callback is stored exactly once after the replay: lost 0, duplicated 0.
"""

from __future__ import annotations

import collections
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

import bxml
from store import Store, StoreUnavailable, get_store
from store.schema import events
from tests.callbacks.helpers import Bandwidth, answer_event

from .conftest import make_record, wait_until
from .stall_proxy import StallingProxy

BUSY = 1.0  # the store's busy timeout in these tests
MARGIN = 10.0  # wide: a shared 2-core machine can pause a thread for seconds
THREADS = 16
EACH = 3

postgres_only = [pytest.mark.postgres, pytest.mark.parametrize("backend", ["postgres"])]
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


@dataclass
class Tally:
    acknowledged: list[str] = field(default_factory=list)  # callIds answered without error
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    slowest: float = 0.0


def load(store: Store, prefix: str, event_type: str = "disconnect") -> Tally:
    """THREADS callers at once, EACH callbacks apiece, as the request threads would be."""
    tally = Tally()
    lock = threading.Lock()

    def caller(thread: int) -> None:
        for n in range(EACH):
            record = make_record(call_id=f"{prefix}-{thread}-{n}", event_type=event_type)
            started = time.monotonic()
            result = store.record_callback(record)
            took = time.monotonic() - started
            with lock:
                tally.acknowledged.append(record["call_id"])
                tally.outcomes[result.outcome] += 1
                tally.slowest = max(tally.slowest, took)

    threads = [threading.Thread(target=caller, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(tally.acknowledged) == THREADS * EACH
    return tally


def stored_per_call(store: Store, prefix: str) -> dict[str, int]:
    query = (
        select(events.c.call_id, func.count())
        .where(events.c.call_id.like(f"{prefix}-%"))
        .group_by(events.c.call_id)
    )
    with store.engine.connect() as conn:
        return {call_id: int(count) for call_id, count in conn.execute(query)}


def replayed(store: Store) -> bool:
    """One replay; False while the database still refuses it (e.g. a commit that was
    stuck holds the rows' keys until it ends)."""
    try:
        store.replay_spool()
    except StoreUnavailable:
        return False
    return True


def assert_each_stored_once(store: Store, tally: Tally, prefix: str) -> None:
    """After the replay: every acknowledged callback once (lost 0, duplicated 0)."""
    wait_until(lambda: replayed(store))
    wait_until(lambda: len(stored_per_call(store, prefix)) == len(tally.acknowledged))
    stored = stored_per_call(store, prefix)
    assert sorted(stored) == sorted(tally.acknowledged)  # lost: 0
    assert set(stored.values()) == {1}  # duplicated: 0
    assert store.replay_spool() == 0
    assert not store.spool.pending()


@contextmanager
def sqlite_held(path: str) -> Iterator[None]:
    """Another process's view: a write transaction holding SQLite's lock, and a writer of
    another worker holding our writers' lock file."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    turn = os.open(path + ".writers", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("INSERT INTO rate_limits VALUES ('held', 0, 1, 0)")
        fcntl.flock(turn, fcntl.LOCK_EX)
        yield
    finally:
        os.close(turn)
        holder.execute("ROLLBACK")
        holder.close()


def proxied(url: str, proxy: StallingProxy) -> str:
    return (
        make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    )


@contextmanager
def postgres_behind_proxy(db_url: str) -> Iterator[tuple[StallingProxy, str]]:
    target = make_url(db_url)
    with StallingProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
        yield proxy, proxied(db_url, proxy)


@sqlite_only
def test_a_held_sqlite_lock_spools_within_the_busy_timeout(make_store, db_url):
    store = make_store(busy_timeout=BUSY)
    store.migrate()  # the first use's migration is not what this test times
    assert store.record_callback(make_record(call_id="c-before-lock")).outcome == "inserted"
    with sqlite_held(db_url.removeprefix("sqlite:///")):
        tally = load(store, "c-locked")
        assert tally.slowest < BUSY + MARGIN
        assert tally.outcomes == {"spooled": THREADS * EACH}
    assert_each_stored_once(store, tally, "c-locked")


def past(moment: float) -> None:
    """Wait until the monotonic clock is past ``moment`` (before checking that something
    now happens, never before checking that it does not)."""
    wait_until(lambda: time.monotonic() > moment)


@sqlite_only
def test_after_a_failed_commit_callbacks_spool_without_waiting_for_the_database(make_store, db_url):
    store = make_store(busy_timeout=BUSY)
    store.migrate()
    tried: list[str] = []  # the callIds of every commit attempt
    store.hooks.before_batch = lambda rows: tried.extend(row["call_id"] for row in rows)
    with sqlite_held(db_url.removeprefix("sqlite:///")):
        assert store.record_callback(make_record(call_id="c-outage-0")).outcome == "spooled"
        failed = time.monotonic()
        assert tried == ["c-outage-0"]  # it waited for the database, then spooled
        for n in range(1, 6):
            assert store.record_callback(make_record(call_id=f"c-outage-{n}")).outcome == (
                "spooled"
            )
        assert tried == ["c-outage-0"]  # within a busy timeout of the failure: not tried
        past(failed + BUSY)
        # Then a callback tries the database again (and, still locked, waits it out).
        assert store.record_callback(make_record(call_id="c-outage-6")).outcome == "spooled"
        probed = time.monotonic()
        assert tried == ["c-outage-0", "c-outage-6"]
    past(probed + BUSY)
    assert store.record_callback(make_record(call_id="c-outage-7")).outcome == "inserted"
    wait_until(lambda: replayed(store) and not store.spool.pending())
    assert stored_per_call(store, "c-outage") == {f"c-outage-{n}": 1 for n in range(8)}


@sqlite_only
def test_during_an_outage_one_callback_at_a_time_tries_the_database(make_store, db_url):
    store = make_store(busy_timeout=BUSY)
    store.migrate()
    tried: list[str] = []
    store.hooks.before_batch = lambda rows: tried.extend(row["call_id"] for row in rows)
    with sqlite_held(db_url.removeprefix("sqlite:///")):
        assert store.record_callback(make_record(call_id="c-before-load")).outcome == "spooled"
        tally = load(store, "c-probe")
        assert tally.outcomes == {"spooled": THREADS * EACH}
        assert tally.slowest < BUSY + MARGIN
    # Each attempt holds its caller for the busy timeout and is followed by a busy timeout
    # without any: over the load, a few at most.  Before, every callback tried it.
    assert len(tried) - 1 < THREADS * EACH // 2
    assert_each_stored_once(store, tally, "c-probe")


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.postgres
# A disconnect commits in a transaction of several statements, an answer (batched with
# other answers) in one INSERT in autocommit: the stall hits either.
@pytest.mark.parametrize("event_type", ["disconnect", "answer"])
def test_a_hung_postgres_connection_spools_within_the_busy_timeout(make_store, db_url, event_type):
    with postgres_behind_proxy(db_url) as (proxy, url):
        store = make_store(url, busy_timeout=BUSY)
        store.migrate()  # the schema's DDL is not what this test times
        assert store.record_callback(make_record(call_id="c-before-hang")).outcome == "inserted"
        proxy.stall()
        tally = load(store, "c-hung", event_type)
        assert tally.slowest < BUSY + MARGIN
        assert tally.outcomes == {"spooled": THREADS * EACH}
        # Still hung: a commit stuck past the busy timeout sends new callbacks to the spool.
        assert store.record_callback(make_record(call_id="c-hung-late")).outcome == "spooled"
        tally.acknowledged.append("c-hung-late")
        proxy.resume()
        # The stuck commit goes through now; its rows were spooled too, and stay single.
        assert_each_stored_once(store, tally, "c-hung")
        store.dispose()


def test_a_refused_database_spools_at_once_and_replays_later(make_store, dead_url):
    refused = make_store(dead_url, busy_timeout=BUSY)
    tally = load(refused, "c-refused")
    assert tally.slowest < BUSY + MARGIN
    assert tally.outcomes == {"spooled": THREADS * EACH}
    assert_each_stored_once(make_store(), tally, "c-refused")


# --- the fallback route answers with the store down --------------------------------------

FALLBACK_BUSY = 30.0  # the busy timeout of these apps: the fallback must not wait for it
FALLBACK_WAIT = 0.5  # what the README promises: the fallback waits at most this for the store


def fallback_answers(app_config: dict, database_url: str, monkeypatch) -> Store:
    """POST answer-fallback to an app whose store is stalled; returns that store (to be
    disposed once the stall is over)."""
    from app import create_app

    application = create_app(
        {**app_config, "DATABASE_URL": database_url, "STORE_BUSY_TIMEOUT": FALLBACK_BUSY}
    )
    stalled = get_store(application)
    # The bound is what the route asks the store for (the store keeps to it: the tests
    # above), not a wall-clock limit on this shared machine.
    waits: list[float | None] = []
    record_callback = stalled.record_callback

    def recording(record, *, timeout=None):
        waits.append(timeout)
        return record_callback(record, timeout=timeout)

    monkeypatch.setattr(stalled, "record_callback", recording)
    bandwidth = Bandwidth(application.test_client())
    started = time.monotonic()
    reply = bandwidth.post("answer-fallback", answer_event())
    assert time.monotonic() - started < FALLBACK_BUSY  # did not wait for the store
    assert reply.status_code == 200
    assert [verb.name for verb in bxml.parse(reply.data)] == ["SpeakSentence", "Hangup"]
    assert len(waits) == 1 and waits[0] is not None and 0 < waits[0] <= FALLBACK_WAIT
    assert stalled.spool.pending()  # acknowledged: kept in the spool
    return stalled


def test_the_fallback_answers_while_sqlite_is_locked(app_config, tmp_path, monkeypatch):
    url = app_config["DATABASE_URL"]
    from app import create_app

    with create_app(app_config).app_context():  # the schema, so there is a lock to hold
        get_store().migrate()
        get_store().dispose()
    with sqlite_held(url.removeprefix("sqlite:///")):
        stalled = fallback_answers(app_config, url, monkeypatch)
    stalled.dispose()


@pytest.mark.postgres
def test_the_fallback_answers_while_postgres_hangs(app_config, monkeypatch):
    from tests.pg import fresh_postgres_url

    with fresh_postgres_url() as db_url, postgres_behind_proxy(db_url) as (proxy, url):
        schema = Store(url, spool_path=app_config["SPOOL_PATH"] + ".schema")
        schema.migrate()
        schema.dispose()
        proxy.stall()
        try:
            stalled = fallback_answers(app_config, url, monkeypatch)
        finally:
            proxy.resume()
        stalled.dispose()


def test_the_fallback_answers_while_the_database_refuses(app_config, dead_url, monkeypatch):
    fallback_answers(app_config, dead_url, monkeypatch).dispose()
