"""Outages: the spool takes accepted callbacks and the replay stores each exactly once."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time

import pytest

from store import StoreUnavailable

from .conftest import make_record, wait_until


def spool_lines(store) -> list[dict]:
    with open(store.spool.path, encoding="utf-8") as spool:
        return [json.loads(line) for line in spool if line.strip()]


def spool_outage(make_store, dead_url, records) -> None:
    """Record ``records`` while the database is unreachable: all must be spooled.  Returns
    once the outage's hold is over, so the next callback of a store on this spool tries the
    database (the stores of one spool share the outage, as a server's workers do)."""
    dead = make_store(dead_url, busy_timeout=0.2)
    for record in records:
        assert dead.record_callback(record) == ("spooled", None)
    held_until = time.monotonic() + 0.2
    wait_until(lambda: time.monotonic() > held_until)


# --- the database is unreachable ----------------------------------------------------------


def test_unreachable_database_spools_and_replays_once(make_store, dead_url):
    records = [make_record(call_id="c-out", cause="busy"), make_record(event_type="answer")]
    spool_outage(make_store, dead_url, records)
    store = make_store()
    lines = spool_lines(store)
    assert [line["row"]["call_id"] for line in lines] == ["c-out", records[1]["call_id"]]
    assert all("authorization" not in json.dumps(line).lower() for line in lines)

    assert store.replay_spool() == 2
    assert not store.spool.pending()
    assert store.replay_spool() == 0
    [event] = store.events_for_call("c-out")
    assert event["payload"] == records[0]["payload"]
    assert event["received_at"] == pytest.approx(records[0]["received_at"])
    assert store.cause_counts() == {"busy": 1}
    # the original delivery, resent after recovery, is a duplicate with the stored reply
    assert store.record_callback(records[0])[0] == "duplicate"


def test_duplicates_spooled_twice_are_stored_once(make_store, dead_url):
    record = make_record(call_id="c-twice", cause="timeout")
    spool_outage(make_store, dead_url, [record, dict(record)])
    store = make_store()
    assert len(spool_lines(store)) == 2
    assert store.replay_spool() == 1
    assert len(store.events_for_call("c-twice")) == 1
    assert store.cause_counts() == {"timeout": 1}


def test_replay_skips_events_already_stored(make_store, dead_url):
    record = make_record(call_id="c-both")
    store = make_store()
    assert store.record_callback(record)[0] == "inserted"
    spool_outage(make_store, dead_url, [record])
    assert store.replay_spool() == 0
    assert len(store.events_for_call("c-both")) == 1
    assert store.cause_counts() == {"hangup": 1}


def test_replay_runs_after_the_next_successful_record(make_store, dead_url):
    spooled = make_record(call_id="c-auto-1")
    spool_outage(make_store, dead_url, [spooled])
    store = make_store()
    store.migrate()  # first use already done: only the next record triggers the replay
    assert store.record_callback(make_record(call_id="c-auto-2"))[0] == "inserted"
    # The commit thread replays after telling the caller.
    wait_until(lambda: not store.spool.pending())
    assert len(store.events_for_call("c-auto-1")) == 1


def test_replay_runs_at_first_use(make_store, dead_url):
    spool_outage(make_store, dead_url, [make_record(call_id="c-first")])
    store = make_store()
    assert len(store.events_for_call("c-first")) == 1
    assert not store.spool.pending()


def test_replay_while_database_is_down_keeps_the_spool(make_store, dead_url):
    spool_outage(make_store, dead_url, [make_record(call_id="c-keep")])
    dead = make_store(dead_url, busy_timeout=0.2)
    with pytest.raises(StoreUnavailable):
        dead.replay_spool()
    store = make_store()
    assert store.spool.pending()
    assert store.replay_spool() == 1


def test_crash_after_rename_loses_nothing(make_store, dead_url, monkeypatch):
    records = [make_record(call_id=f"c-crash-{i}", cause="busy") for i in range(5)]
    spool_outage(make_store, dead_url, records)
    store = make_store()
    store.replay_chunk = 2
    store.migrate()

    def crash_in_second_batch(row):
        if row["call_id"] == "c-crash-2":  # the first row of the second batch of two
            raise RuntimeError("simulated crash mid-replay")

    monkeypatch.setattr(store.hooks, "in_transaction", crash_in_second_batch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        store.replay_spool()
    # the first batch committed; the renamed file is still there
    assert os.path.exists(store.spool.replaying_path)
    assert not os.path.exists(store.spool.path)
    monkeypatch.undo()

    # more callbacks spooled meanwhile go to a new spool file
    spool_outage(make_store, dead_url, [make_record(call_id="c-crash-late")])
    assert store.replay_spool() == 4  # 3 left over + the late one
    for i in range(5):
        assert len(store.events_for_call(f"c-crash-{i}")) == 1
    assert len(store.events_for_call("c-crash-late")) == 1
    assert store.cause_counts() == {"busy": 5, "hangup": 1}
    assert not store.spool.pending()


def test_crash_after_commit_before_delete_duplicates_nothing(make_store, dead_url, monkeypatch):
    spool_outage(make_store, dead_url, [make_record(call_id="c-commit", cause="busy")])
    store = make_store()
    store.migrate()

    def crash(path):
        raise RuntimeError("simulated crash after commit")

    monkeypatch.setattr(store.spool, "discard", crash)
    with pytest.raises(RuntimeError):
        store.replay_spool()
    assert len(store.events_for_call("c-commit")) == 1
    monkeypatch.undo()
    assert store.replay_spool() == 0
    assert len(store.events_for_call("c-commit")) == 1
    assert store.cause_counts() == {"busy": 1}
    assert not store.spool.pending()


def test_only_one_replayer_at_a_time(make_store, dead_url):
    spool_outage(make_store, dead_url, [make_record(call_id="c-one")])
    store = make_store()
    with store.spool.replaying() as mine:
        assert mine
        assert store.replay_spool() == 0  # another process holds the replay lock
    assert store.replay_spool() == 1


def test_torn_and_invalid_lines_are_set_aside(make_store, dead_url):
    good = make_record(call_id="c-good")
    spool_outage(make_store, dead_url, [good])
    store = make_store()
    with open(store.spool.path, "ab") as spool:
        spool.write(b'not json at all\n{"v":1,"kind":"callback","row":{"route":')  # torn
    spool_outage(make_store, dead_url, [make_record(call_id="c-after-torn")])
    assert store.replay_spool() == 2
    assert len(store.events_for_call("c-good")) == 1
    assert len(store.events_for_call("c-after-torn")) == 1
    with open(store.spool.bad_path, "rb") as bad:
        assert bad.read().count(b"\n") == 2


def test_spool_write_failure_raises_store_unavailable(make_store, dead_url, tmp_path):
    blocker = tmp_path / "spool-blocker"
    blocker.write_text("a file where the spool directory should be\n")
    dead = make_store(dead_url, busy_timeout=0.2, spool_path=str(blocker / "spool.jsonl"))
    with pytest.raises(StoreUnavailable):
        dead.record_callback(make_record())


def test_concurrent_spool_appends_never_interleave(make_store, dead_url):
    dead = make_store(dead_url, busy_timeout=0.2)
    big = "x" * 20_000  # larger than a pipe buffer: a torn write would show

    def spool_many(worker: int) -> None:
        for i in range(10):
            record = make_record(call_id=f"w{worker}-{i}", error_detail=big)
            assert dead.record_callback(record)[0] == "spooled"

    threads = [threading.Thread(target=spool_many, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    lines = spool_lines(dead)
    assert len(lines) == 40
    assert len({line["row"]["call_id"] for line in lines}) == 40


# --- SQLite-specific faults ---------------------------------------------------------------


sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


@sqlite_only
def test_sqlite_locked_past_busy_timeout_spools(make_store, db_url):
    store = make_store(busy_timeout=0.2)
    store.migrate()
    holder = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("INSERT INTO rate_limits VALUES ('held', 0, 1, 0)")
        started = time.monotonic()
        assert store.record_callback(make_record(call_id="c-locked")) == ("spooled", None)
        # It waited for the busy timeout, then gave up (spooled) instead of waiting on.
        assert time.monotonic() - started >= 0.15
        assert spool_lines(store)[0]["row"]["call_id"] == "c-locked"
        # reads still work under WAL while the writer holds the lock
        assert store.events_for_call("c-locked") == []
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # Stored once: by the replay, or by the commit that went on once the lock was free
    # (the replay then finds it stored).
    store.replay_spool()
    assert store.replay_spool() == 0
    assert len(store.events_for_call("c-locked")) == 1


@sqlite_only
def test_a_spool_replays_only_into_the_database_it_was_written_for(
    make_store, db_url, tmp_path, caplog
):
    ours = make_store(busy_timeout=0.2)
    ours.migrate()
    # Another server's settings (or a shell without DATABASE_URL) on the same spool file.
    other = make_store(f"sqlite:///{tmp_path / 'other.db'}")
    other.migrate()
    holder = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        assert ours.record_callback(make_record(call_id="c-ours")) == ("spooled", None)
        assert spool_lines(ours)[0]["database"] == db_url
        with caplog.at_level("WARNING", logger="store.replay"):
            assert other.replay_spool() == 0
        assert other.events_for_call("c-ours") == []
        assert [line["row"]["call_id"] for line in spool_lines(ours)] == ["c-ours"]
        assert f"acknowledged for another database ({db_url})" in caplog.text
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    ours.replay_spool()
    assert len(ours.events_for_call("c-ours")) == 1
    assert not ours.spool.pending()


@sqlite_only
def test_sqlite_read_only_database_spools(make_store, db_url):
    writable = make_store()
    writable.migrate()
    path = db_url.removeprefix("sqlite:///")
    # Opened read-only by SQLite itself: fails even for root, unlike chmod.
    read_only = make_store(f"sqlite:///file:{path}?mode=ro&uri=true", busy_timeout=0.2)
    assert read_only.record_callback(make_record(call_id="c-ro")) == ("spooled", None)
    assert read_only.health() is True  # readable, just not writable
    assert writable.replay_spool() == 1
    assert len(writable.events_for_call("c-ro")) == 1


@sqlite_only
def test_sqlite_query_only_database_spools(make_store):
    store = make_store(busy_timeout=0.2)
    store.migrate()
    engine = store.engine
    from sqlalchemy import event

    def refuse_writes(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA query_only = ON")

    engine.dispose()
    event.listen(engine, "connect", refuse_writes)
    assert store.record_callback(make_record(call_id="c-query-only")) == ("spooled", None)
    event.remove(engine, "connect", refuse_writes)
    store.dispose()  # every connection goes, the hot-path one too
    assert store.replay_spool() == 1


@sqlite_only
def test_sqlite_directory_replaced_by_a_file_spools(make_store, tmp_path):
    folder = tmp_path / "instance"
    folder.mkdir()
    url = f"sqlite:///{folder / 'events.db'}"
    store = make_store(url, busy_timeout=0.2)
    store.migrate()
    store.dispose()
    shutil.rmtree(folder)
    folder.write_text("the instance folder was replaced by a file\n")
    assert store.record_callback(make_record(call_id="c-gone")) == ("spooled", None)
    assert store.health() is False
    folder.unlink()
    folder.mkdir()
    assert store.replay_spool() == 1  # a fresh database, migrated on first use
    assert len(store.events_for_call("c-gone")) == 1


@sqlite_only
@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores file permissions"
)
def test_sqlite_read_only_directory_spools(make_store, tmp_path):  # pragma: no cover - root CI
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        store = make_store(f"sqlite:///{folder / 'events.db'}", busy_timeout=0.2)
        assert store.record_callback(make_record(call_id="c-chmod")) == ("spooled", None)
    finally:
        folder.chmod(0o700)


# --- PostgreSQL-specific faults -----------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
def test_postgres_connections_killed_by_the_server_are_replaced(make_store, caplog):
    """Pooled connections terminated by the server (a restart) are retried, not spooled."""
    import psycopg

    from tests.pg import postgres_test_url

    store = make_store()
    conninfo = postgres_test_url().set(query={}).render_as_string(hide_password=False)

    def kill_pooled_connections() -> None:
        engine = store.engine
        pooled = [engine.raw_connection() for _ in range(max(1, engine.pool.checkedin()))]
        pids = [conn.driver_connection.info.backend_pid for conn in pooled]
        for conn in pooled:
            conn.close()
        with psycopg.connect(conninfo, autocommit=True) as admin:
            for pid in pids:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            deadline = time.monotonic() + 30
            while admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
            ).fetchone()[0]:
                assert time.monotonic() < deadline, "the backends did not end"
                time.sleep(0.02)

    assert store.record_callback(make_record(call_id="c-pg-1"))[0] == "inserted"
    kill_pooled_connections()
    with caplog.at_level("INFO", logger="store"):
        assert store.record_callback(make_record(call_id="c-pg-2"))[0] == "inserted"
    assert "retrying" in caplog.text
    caplog.clear()
    kill_pooled_connections()
    with caplog.at_level("INFO", logger="store"):
        assert store.find_callback("/callbacks/disconnect", "0" * 64) is None
    assert "retrying" in caplog.text
    assert store.record_callback(make_record(call_id="c-pg-3"))[0] == "inserted"
    assert not store.spool.pending()
    assert "spooling" not in caplog.text


def test_the_spool_is_replayed_when_the_database_is_back_without_another_callback(make_store):
    """Spooled during an outage, stored once it ends, though no callback comes after it."""
    store = make_store(busy_timeout=0.2, spool_retry_seconds=0.2)
    store.migrate()
    tries = []

    def database_away(row):  # the commit, then the timer's first replay, fail
        tries.append(row["call_id"])
        if len(tries) <= 2:
            raise sqlite3.OperationalError("database is locked")

    store.hooks.in_transaction = database_away
    record = make_record(call_id="c-timer")
    assert store.record_callback(record) == ("spooled", None)
    # Nothing else is recorded: the timer tries again, and again after a failed try.
    wait_until(lambda: not store.spool.pending())
    assert tries == ["c-timer"] * 3
    assert len(store.events_for_call("c-timer")) == 1
