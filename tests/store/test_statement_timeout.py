"""PostgreSQL's statement_timeout: the server ends a store statement that runs too long.

A statement the server itself makes slow (a trigger sleeping in pg_sleep until the test
lets it go: no lock, so lock_timeout has no say, and the connection stays alive, so
keepalives have none) is cancelled by the server, in its own words; its callbacks, already
spooled by their callers, are stored exactly once by the replay.  Work slow by nature
(migrations, purges, exports) is exempt: each test shows the same statement cut off
elsewhere first.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from store import StoreUnavailable, connections, schema
from store.connections import STATEMENT_TIMEOUT_MARGIN
from store.engine import normalize_url

from .conftest import make_record, wait_until
from .test_stalls import BUSY, MARGIN, assert_each_stored_once, load, stored_per_call

pytestmark = pytest.mark.postgres
on_postgres = pytest.mark.parametrize("backend", ["postgres"])  # the store fixtures' backend

CANCELLED = "canceling statement due to statement timeout"  # the server's own words
# The server's stall: longer than every wait of these tests, so that only the statement
# timeout can end it in time.
STALL = 60.0
QUICK = 0.2  # the busy timeout of the exemption tests: a short statement timeout to outlast
QUICK_BOUND = QUICK + STATEMENT_TIMEOUT_MARGIN
OUTLAST = f"SELECT pg_sleep({QUICK_BOUND + 0.5})"  # a statement longer than that bound


def sleeping_trigger(store: Any, operation: str, condition: str, seconds: float) -> None:
    """Make the server take ``seconds`` over each row of ``operation`` on events that
    meets ``condition`` (in the test's schema), or until :func:`release` is called."""
    with store.engine.begin() as conn:
        conn.execute(text("CREATE TABLE stalling (on_purpose boolean)"))
        conn.execute(text("INSERT INTO stalling VALUES (true)"))
        # Short sleeps, each followed by a fresh look at the switch (a new snapshot per
        # query in READ COMMITTED), so the stall can end when the test is done.
        conn.execute(
            text(
                "CREATE FUNCTION stall() RETURNS trigger LANGUAGE plpgsql AS $$"
                " DECLARE until timestamptz := clock_timestamp()"
                f" + make_interval(secs => {seconds}); BEGIN"
                " WHILE clock_timestamp() < until AND EXISTS (SELECT FROM stalling) LOOP"
                " PERFORM pg_sleep(0.05); END LOOP; RETURN COALESCE(NEW, OLD); END $$"
            )
        )
        conn.execute(
            text(
                f"CREATE TRIGGER stall BEFORE {operation} ON events FOR EACH ROW"
                f" WHEN ({condition}) EXECUTE FUNCTION stall()"
            )
        )


def release(store: Any) -> None:
    """End every stall now, and the trigger."""
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM stalling"))
    with store.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER stall ON events"))


def show(cursor: Any) -> str:
    cursor.execute("SHOW statement_timeout")
    return str(cursor.fetchone()[0])


@on_postgres
@pytest.mark.parametrize("event_type", ["disconnect", "answer"])
def test_a_statement_the_server_stalls_is_cancelled_and_its_callbacks_replayed_once(
    make_store, caplog, event_type
):
    caplog.set_level(logging.WARNING, logger="store.group_commit")
    store = make_store(busy_timeout=BUSY)
    store.migrate()
    assert store.record_callback(make_record(call_id="c-before")).outcome == "inserted"
    sleeping_trigger(store, "INSERT", "NEW.call_id LIKE 'slow-%'", STALL)

    try:
        tally = load(store, "slow", event_type)
        assert tally.outcomes == {"spooled": len(tally.acknowledged)}
        # The server ends the stalled statements: the commit threads are free again long
        # before the stall would have ended by itself.
        wait_until(
            lambda: store.commit_queue_depth() == 0, BUSY + STATEMENT_TIMEOUT_MARGIN + MARGIN
        )
        assert any(CANCELLED in record.getMessage() for record in caplog.records)
        assert stored_per_call(store, "slow") == {}  # each cancelled statement rolled back
    finally:
        release(store)
    # The database failed a moment ago: callbacks spool at once for a busy timeout, then
    # one tries the database again and is stored.
    after = (make_record(call_id=f"c-after-{n}") for n in range(1000))
    wait_until(lambda: store.record_callback(next(after)).outcome == "inserted", MARGIN)
    assert_each_stored_once(store, tally, "slow")


@on_postgres
def test_every_store_connection_carries_the_derived_statement_timeout(make_store, db_url):
    store = make_store(busy_timeout=1.5)
    store.migrate()
    derived = f"{int((1.5 + STATEMENT_TIMEOUT_MARGIN) * 1000)}ms"
    assert derived == "2500ms"
    db = connections.Database(normalize_url(db_url), busy_timeout=1.5, sqlite_synchronous="FULL")
    stack = contextlib.ExitStack()
    stack.callback(db.dispose)
    # The callback path: a transaction, one autocommit statement, the duplicate check.
    assert db.raw_write(show) == derived
    assert db.raw_write(show, autocommit=True) == derived
    assert db.raw_read_one("SHOW statement_timeout", {})[0] == derived
    with db.reading() as conn:  # the dashboard's reads are bounded as well
        assert conn.execute(text("SHOW statement_timeout")).scalar() == derived
    with store.long_statements():
        with db.writing() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "0"
        assert db.raw_write(show) == derived  # callbacks are never exempt
    with store.engine.connect() as conn:
        with store.long_statements():
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "0"
            conn.commit()
        # The exemption ended with its transaction: the same connection is bounded again.
        assert conn.execute(text("SHOW statement_timeout")).scalar() == derived
    stack.close()


@on_postgres
def test_a_migration_runs_past_the_statement_timeout(make_store, monkeypatch):
    store = make_store(busy_timeout=QUICK)
    store.migrate()
    with pytest.raises(OperationalError, match="statement timeout"), store.engine.connect() as c:
        c.execute(text(OUTLAST))  # elsewhere, this statement is cut off
    slow_version = schema.SCHEMA_VERSION + 1
    monkeypatch.setitem(schema.MIGRATIONS, slow_version, lambda conn: conn.execute(text(OUTLAST)))
    monkeypatch.setattr(connections, "SCHEMA_VERSION", slow_version)
    store.migrate()
    with store.engine.connect() as conn:
        applied = conn.execute(text("SELECT max(version) FROM schema_version")).scalar()
    assert applied == slow_version


@on_postgres
def test_a_purge_runs_past_the_statement_timeout(make_store):
    store = make_store(busy_timeout=QUICK)
    store.migrate()
    old = make_record(call_id="c-old", received_at=1_000_000.0)
    assert store.record_callback(old, timeout=MARGIN).outcome == "inserted"
    sleeping_trigger(store, "DELETE", "true", QUICK_BOUND + 0.5)
    with pytest.raises(OperationalError, match="statement timeout"), store.engine.begin() as c:
        c.execute(text("DELETE FROM events WHERE call_id = 'c-old'"))  # cut off elsewhere
    assert store.events_for_call("c-old")
    assert store.purge(1) >= 1
    assert store.events_for_call("c-old") == []


def test_an_export_reads_past_the_statement_timeout_where_the_list_cannot(app_config):
    from app import create_app
    from tests.dashboard.conftest import login
    from tests.pg import fresh_postgres_url

    with contextlib.ExitStack() as stack:
        app_config["DATABASE_URL"] = stack.enter_context(fresh_postgres_url())
        app_config["STORE_BUSY_TIMEOUT"] = QUICK
        app = create_app(app_config)
        store = app.extensions["store"]
        stack.callback(store.dispose)
        client = app.test_client()
        assert login(client).status_code == 303
        disconnects = store.disconnects

        def slow_disconnects(*args: Any, **kwargs: Any) -> Any:
            try:
                with store.engine.connect() as conn:  # a read the size of a large export's
                    conn.execute(text(OUTLAST))
            except OperationalError as exc:  # as the store's own queries report it
                raise StoreUnavailable(f"store unavailable: {exc}") from exc
            return disconnects(*args, **kwargs)

        store.disconnects = slow_disconnects
        assert client.get("/api/disconnects").status_code == 503  # cancelled
        export = client.get("/dashboard/disconnects.json")
        assert export.status_code == 200
        assert export.get_json()["disconnects"] == []


@on_postgres
def test_a_network_that_stops_acknowledging_is_given_up_on_as_an_idle_one_is(make_store):
    store = make_store()
    with store.engine.connect() as conn:
        settings = {
            option.keyword.decode(): option.val.decode()
            for option in conn.connection.driver_connection.pgconn.info
            if option.val is not None
        }
    # Keepalives end an idle connection to a vanished host after 10 + 3 x 5 s; a statement
    # whose bytes are never acknowledged is ended by the kernel after as long.
    assert (settings["keepalives_idle"], settings["keepalives_count"]) == ("10", "3")
    assert settings["keepalives_interval"] == "5"
    assert settings["tcp_user_timeout"] == "25000"
