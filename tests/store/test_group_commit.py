"""Group commit and the SQLite hot-path connection (``store`` runs on SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from store import core

from .conftest import make_record
from .test_store import count_rows


def slow_first_batch(store, monkeypatch, hold: threading.Event) -> list[int]:
    """Make the first commit wait for ``hold``, so that the callers behind it queue up;
    returns the list the batch sizes are recorded in."""
    sizes: list[int] = []
    commit_batch = store._commit_batch

    def recording(batch):
        sizes.append(len(batch))
        if len(sizes) == 1:
            assert hold.wait(timeout=10)
        return commit_batch(batch)

    monkeypatch.setattr(store, "_commit_batch", recording)
    return sizes


def record_all(store, records) -> list[tuple[str, dict | None]]:
    outcomes: list = [None] * len(records)

    def record(index: int) -> None:
        outcomes[index] = store.record_callback(records[index])

    threads = [threading.Thread(target=record, args=(i,)) for i in range(len(records))]
    threads[0].start()
    queued(store, 0)  # the first leads, and holds its commit
    for thread in threads[1:]:
        thread.start()
    return outcomes, threads


def queued(store, count: int) -> None:
    """Wait until a leader is committing and ``count`` callers wait behind it."""
    deadline = time.monotonic() + 10
    group = store._group
    while not (group.leading and len(group.queue) == count):
        assert time.monotonic() < deadline, "callers did not queue"
        time.sleep(0.01)


def test_callbacks_arriving_together_share_one_transaction(store, monkeypatch):
    hold = threading.Event()
    sizes = slow_first_batch(store, monkeypatch, hold)
    twin = make_record(call_id="c-twin")
    records = [make_record(call_id=f"c-group-{n}") for n in range(12)] + [twin, dict(twin)]
    outcomes, threads = record_all(store, records)
    queued(store, len(records) - 1)  # every other caller waits behind the held commit
    hold.set()
    for thread in threads:
        thread.join(timeout=10)

    assert sizes[0] == 1 and sizes[1] == len(records) - 1  # all the others in one batch
    assert [outcome[0] for outcome in outcomes[:12]] == ["inserted"] * 12
    assert sorted(outcome[0] for outcome in outcomes[12:]) == ["duplicate", "inserted"]
    duplicate = next(outcome for outcome in outcomes[12:] if outcome[0] == "duplicate")
    assert duplicate[1]["reply_status"] == twin["reply_status"]
    assert count_rows(store) == 13
    assert len(store.events_for_call("c-twin")) == 1
    assert store.cause_counts() == {"hangup": 13}


def test_a_row_the_database_refuses_does_not_sink_its_batch(store, monkeypatch):
    hold = threading.Event()
    sizes = slow_first_batch(store, monkeypatch, hold)
    store_event = store._store_event

    def refusing(cursor, row):
        if row["call_id"] == "c-refused":
            raise ValueError("refused by the database")
        return store_event(cursor, row)

    monkeypatch.setattr(store, "_store_event", refusing)
    records = [make_record(call_id=f"c-fine-{n}") for n in range(3)]
    records.insert(2, make_record(call_id="c-refused"))
    records.insert(0, make_record(call_id="c-first"))
    outcomes, threads = record_all(store, records)
    queued(store, len(records) - 1)
    hold.set()
    for thread in threads:
        thread.join(timeout=10)

    assert sizes[1] == 4  # the batch failed as a whole, then went one row at a time
    by_call = {
        record["call_id"]: outcome[0] for record, outcome in zip(records, outcomes, strict=True)
    }
    assert by_call.pop("c-refused") == "spooled"
    assert set(by_call.values()) == {"inserted"}
    assert count_rows(store) == 4
    assert len(Path(store.spool.path).read_text().splitlines()) == 1


def test_a_caller_whose_leader_is_stuck_spools_its_row(make_store, monkeypatch):
    store = make_store(busy_timeout=0.1)
    monkeypatch.setattr(core, "GROUP_WAIT_MARGIN", 0.2)
    hold = threading.Event()
    slow_first_batch(store, monkeypatch, hold)
    stuck, waiting = make_record(call_id="c-stuck"), make_record(call_id="c-waiting")
    outcomes, threads = record_all(store, [stuck, waiting])
    threads[1].join(timeout=10)
    assert outcomes[1] == ("spooled", None)  # gave up after busy_timeout * 2 + margin
    hold.set()
    threads[0].join(timeout=10)
    assert outcomes[0] == ("inserted", None)
    # The leader's commit replayed the spool: the waiting row is stored once, from there.
    assert len(store.events_for_call("c-waiting")) == 1
    assert store.replay_spool() == 0
    # The waiter left the queue, so nobody is left leading a group that has no leader (a
    # caller queued behind a ghost leader would give up and spool, not insert).
    assert not store._group.leading and not store._group.queue
    assert store.record_callback(make_record(call_id="c-next")) == ("inserted", None)


def test_a_lone_callback_commits_at_once(store, monkeypatch):
    sizes: list[int] = []
    commit_batch = store._commit_batch
    monkeypatch.setattr(store, "_commit_batch", lambda b: sizes.append(len(b)) or commit_batch(b))
    for n in range(3):
        assert store.record_callback(make_record(call_id=f"c-alone-{n}"))[0] == "inserted"
    assert sizes == [1, 1, 1]


# --- SQLite: one hot-path connection per process ---------------------------------------------


sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])  # PostgreSQL uses its pool


def sqlite_store(make_store):
    store = make_store()
    assert store.is_sqlite
    return store


@sqlite_only
def test_callbacks_are_written_on_one_connection(make_store):
    store = sqlite_store(make_store)
    store.record_callback(make_record(call_id="c-hot"))
    state = store._current()
    hot = state.hot
    assert hot is not None
    store.record_callback(make_record(call_id="c-hot-2"))
    assert state.hot is hot
    assert hot.execute("SELECT count(*) FROM events").fetchone()[0] == 2


@sqlite_only
def test_a_broken_hot_connection_is_replaced(make_store):
    store = sqlite_store(make_store)
    store.record_callback(make_record(call_id="c-before"))
    state = store._current()
    broken = state.hot
    broken.close()  # as if the connection died under us
    assert store.record_callback(make_record(call_id="c-after")) == ("inserted", None)
    assert state.hot is not None and state.hot is not broken
    assert len(store.events_for_call("c-after")) == 1


@sqlite_only
def test_dispose_closes_the_hot_connection(make_store):
    store = sqlite_store(make_store)
    store.record_callback(make_record(call_id="c-dispose"))
    hot = store._current().hot
    store.dispose()
    with pytest.raises(Exception, match="closed"):
        hot.execute("SELECT 1")
    assert len(store.events_for_call("c-dispose")) == 1  # a fresh engine and connection


@sqlite_only
def test_sqlite_connections_are_set_up_for_the_hot_path(make_store):
    store = sqlite_store(make_store)
    store.record_callback(make_record(call_id="c-pragmas"))
    hot = store._current().hot
    assert hot.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert hot.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == core.WAL_AUTOCHECKPOINT_PAGES
    assert hot.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def new_file_being_written(path: str):
    """A new (rollback-journal) database with a write transaction open on it."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (1)")
    return holder


def test_switching_to_wal_waits_for_a_connection_writing_the_new_file(tmp_path):
    """SQLite refuses the switch at once while another connection writes; enable_wal waits
    (several workers opening a new database together)."""
    path = str(tmp_path / "new.db")
    holder = new_file_being_written(path)
    other = sqlite3.connect(path, isolation_level=None, timeout=5)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        other.execute("PRAGMA journal_mode = WAL")  # the busy timeout is not consulted
    timer = threading.Timer(0.2, lambda: holder.execute("COMMIT"))
    started = time.monotonic()
    timer.start()
    core.enable_wal(other.cursor(), busy_timeout=30.0)  # returns once the writer commits
    timer.join()
    assert time.monotonic() - started >= 0.2  # it waited for the commit
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    holder.close()
    other.close()


def test_switching_to_wal_gives_up_after_the_busy_timeout(tmp_path):
    path = str(tmp_path / "new.db")
    holder = new_file_being_written(path)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    failures: list[BaseException] = []

    def switch() -> None:
        try:
            core.enable_wal(other.cursor(), busy_timeout=0.3)
        except sqlite3.OperationalError as exc:
            failures.append(exc)

    started = time.monotonic()
    switching = threading.Thread(target=switch)
    switching.start()
    switching.join(timeout=60)  # a deadline for a hang, not a speed requirement
    assert not switching.is_alive(), "enable_wal never gave up"
    assert time.monotonic() - started >= 0.3
    assert len(failures) == 1 and "locked" in str(failures[0])
    holder.close()
    other.close()
