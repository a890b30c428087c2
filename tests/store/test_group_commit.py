"""Group commit and the SQLite hot-path connection (``store`` runs on SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from store.connections import WAL_AUTOCHECKPOINT_PAGES, Database
from store.engine import enable_wal, normalize_url

from .conftest import make_record
from .test_store import count_rows


class HeldCommits:
    """The first commit waits for ``hold``, so that the callers behind it queue up."""

    def __init__(self, store) -> None:
        self.hold = threading.Event()
        self.entered = threading.Event()  # the first commit is waiting
        self.sizes: list[int] = []  # rows per commit
        store.hooks.before_batch = self._before_batch

    def _before_batch(self, rows) -> None:
        self.sizes.append(len(rows))
        if len(self.sizes) == 1:
            self.entered.set()
            assert self.hold.wait(timeout=30)


def record_all(store, held: HeldCommits, records) -> tuple[list, list[threading.Thread]]:
    outcomes: list = [None] * len(records)

    def record(index: int) -> None:
        outcomes[index] = store.record_callback(records[index])

    threads = [threading.Thread(target=record, args=(i,)) for i in range(len(records))]
    threads[0].start()
    assert held.entered.wait(timeout=10)  # the first one's commit is held
    for thread in threads[1:]:
        thread.start()
    return outcomes, threads


def queued(store, count: int) -> None:
    """Wait until ``count`` callbacks are in the commit (1) or queued behind it."""
    deadline = time.monotonic() + 10
    while store.commit_queue_depth() != count:
        assert time.monotonic() < deadline, "callers did not queue"
        time.sleep(0.01)


# Disconnects commit in a transaction of several statements; on PostgreSQL other callbacks
# commit as one INSERT of the batch (EventInserts.one_statement).
@pytest.mark.parametrize("event_type", ["disconnect", "answer"])
def test_callbacks_arriving_together_share_one_transaction(make_store, event_type):
    store = make_store(busy_timeout=30, commit_threads=1)
    held = HeldCommits(store)
    twin = make_record(call_id="c-twin", event_type=event_type)
    group = [make_record(call_id=f"c-group-{n}", event_type=event_type) for n in range(12)]
    records = [*group, twin, dict(twin)]
    outcomes, threads = record_all(store, held, records)
    queued(store, len(records))  # every other caller waits behind the held commit
    held.hold.set()
    for thread in threads:
        thread.join(timeout=30)

    assert held.sizes[0] == 1 and held.sizes[1] == len(records) - 1  # all the others in one batch
    assert [outcome[0] for outcome in outcomes[:12]] == ["inserted"] * 12
    assert sorted(outcome.outcome for outcome in outcomes[12:]) == ["duplicate", "inserted"]
    duplicate = next(outcome for outcome in outcomes[12:] if outcome[0] == "duplicate")
    assert duplicate.reply["reply_status"] == twin["reply_status"]
    assert duplicate.reply["reply_body"] == twin["reply_body"]
    assert count_rows(store) == 13
    assert len(store.events_for_call("c-twin")) == 1
    assert store.cause_counts() == ({"hangup": 13} if event_type == "disconnect" else {})


def burst_of_three(store) -> HeldCommits:
    """Commit one callback, then three together (the last commit carried three)."""
    held = HeldCommits(store)
    outcomes, threads = record_all(
        store, held, [make_record(call_id=f"c-burst-{n}") for n in range(4)]
    )
    queued(store, 4)
    held.hold.set()
    for thread in threads:
        thread.join(timeout=30)
    assert held.sizes == [1, 3]
    assert [outcome[0] for outcome in outcomes] == ["inserted"] * 4
    return held


# NORMAL: no separate fsync (PostgreSQL has none either).
def test_after_a_burst_a_commit_waits_for_as_many_callbacks(make_store, monkeypatch):
    from store import group_commit

    # Long enough that only the last of the three arriving can end the wait (a wait to the
    # end would outlast the busy timeout: the callers would spool).
    monkeypatch.setattr(group_commit, "LINGER_SECONDS", 600.0)
    store = make_store(busy_timeout=5, commit_threads=1, sqlite_synchronous="NORMAL")
    held = burst_of_three(store)
    results: list = []
    first = threading.Thread(
        target=lambda: results.append(store.record_callback(make_record(call_id="c-next-0")))
    )
    first.start()
    queued(store, 1)  # alone in the queue: its commit waits for two more
    rest = [
        threading.Thread(
            target=lambda n=n: results.append(
                store.record_callback(make_record(call_id=f"c-next-{n}"))
            )
        )
        for n in (1, 2)
    ]
    for thread in rest:
        thread.start()
    for thread in (first, *rest):
        thread.join(timeout=30)
    assert [result[0] for result in results] == ["inserted"] * 3
    assert held.sizes == [1, 3, 3]

    # Once a commit carried one callback, the next lone one does not wait (600 s would
    # outlast its busy timeout: it would be spooled).
    monkeypatch.setattr(group_commit, "LINGER_SECONDS", 0.01)
    assert store.record_callback(make_record(call_id="c-alone-0"))[0] == "inserted"
    monkeypatch.setattr(group_commit, "LINGER_SECONDS", 600.0)
    assert store.record_callback(make_record(call_id="c-alone-1"))[0] == "inserted"
    assert held.sizes[3:] == [1, 1]
    assert count_rows(store) == 9


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite FULL's fsync thread
def test_with_a_separate_fsync_a_commit_does_not_wait_for_a_burst(make_store, monkeypatch):
    from store import group_commit

    monkeypatch.setattr(group_commit, "LINGER_SECONDS", 600.0)  # were it to wait: spooled
    store = make_store(busy_timeout=5, commit_threads=1)  # FULL, the default
    held = burst_of_three(store)
    assert store.record_callback(make_record(call_id="c-alone")).outcome == "inserted"
    assert held.sizes == [1, 3, 1]


def test_a_row_the_database_refuses_does_not_sink_its_batch(make_store):
    store = make_store(busy_timeout=30, commit_threads=1)
    held = HeldCommits(store)

    def refusing(row):
        if row["call_id"] == "c-refused":
            raise ValueError("refused by the database")

    store.hooks.in_transaction = refusing
    records = [make_record(call_id=f"c-fine-{n}") for n in range(3)]
    records.insert(2, make_record(call_id="c-refused"))
    records.insert(0, make_record(call_id="c-first"))
    outcomes, threads = record_all(store, held, records)
    queued(store, len(records))
    held.hold.set()
    for thread in threads:
        thread.join(timeout=30)

    assert held.sizes[1:] == [4, 1, 1, 1, 1]  # the batch failed as a whole, then row by row
    by_call = {
        record["call_id"]: outcome[0] for record, outcome in zip(records, outcomes, strict=True)
    }
    assert by_call.pop("c-refused") == "spooled"
    assert set(by_call.values()) == {"inserted"}
    assert count_rows(store) == 4
    # Spooled; and if a replay came by since, refused again and set aside for people.
    kept = [Path(path) for path in (store.spool.path, store.spool.bad_path)]
    assert sum(len(path.read_text().splitlines()) for path in kept if path.exists()) == 1


def test_callers_of_a_stuck_commit_spool_their_rows_and_each_is_stored_once(make_store):
    store = make_store(busy_timeout=0.3, commit_threads=1)
    held = HeldCommits(store)
    stuck, waiting = make_record(call_id="c-stuck"), make_record(call_id="c-waiting")
    outcomes, threads = record_all(store, held, [stuck, waiting])
    for thread in threads:
        thread.join(timeout=30)
    # Both gave up after the busy timeout: the held commit had one, the queue the other.
    assert outcomes == [("spooled", None), ("spooled", None)]
    assert len(Path(store.spool.path).read_text().splitlines()) == 2
    # While the commit hangs past the busy timeout, a new callback spools at once.
    assert store.record_callback(make_record(call_id="c-meanwhile"), timeout=30).outcome == (
        "spooled"
    )
    held.hold.set()
    queued(store, 0)  # the held commit went on
    # The next commit replays the spool; the unique key keeps the row the held commit
    # stored and its spooled copy as one.
    assert store.record_callback(make_record(call_id="c-next"), timeout=30)[0] == "inserted"
    store.replay_spool()
    for call_id in ("c-stuck", "c-waiting", "c-meanwhile", "c-next"):
        assert len(store.events_for_call(call_id)) == 1
    assert count_rows(store) == 4
    assert not store.spool.pending()


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
def test_with_several_commit_threads_postgres_commits_batches_at_once(make_store):
    store = make_store(busy_timeout=30, commit_threads=2)  # the default is one (PG_COMMIT_THREADS)
    held = HeldCommits(store)
    records = [make_record(call_id=f"c-parallel-{n}") for n in range(4)]
    outcomes, threads = record_all(store, held, records)
    for thread in threads[1:]:
        thread.join(timeout=30)
    # Committed by the other threads while the first commit is held.
    assert [outcome.outcome for outcome in outcomes[1:]] == ["inserted"] * 3
    held.hold.set()
    threads[0].join(timeout=30)
    assert outcomes[0] == ("inserted", None)
    assert count_rows(store) == 4


def test_a_transaction_after_one_statement_batches_still_rolls_back(make_store):
    """PostgreSQL commits a batch of plain callbacks as one statement in autocommit; the
    connection goes back to the pool in transaction mode, so a disconnect (a transaction of
    several statements) that fails halfway leaves nothing behind."""
    store = make_store(commit_threads=1)
    store.migrate()
    for n in range(3):
        plain = make_record(event_type="answer", call_id=f"c-plain-{n}")
        assert store.record_callback(plain).outcome == "inserted"

    def refusing(row):
        if row["call_id"] == "c-halfway":
            raise ValueError("refused after its insert")

    store.hooks.in_transaction = refusing
    assert store.record_callback(make_record(call_id="c-halfway")).outcome == "spooled"
    assert store.events_for_call("c-halfway") == []
    assert store.cause_counts() == {}
    assert count_rows(store) == 3


def test_a_lone_callback_commits_at_once(store):
    sizes: list[int] = []
    store.hooks.before_batch = lambda rows: sizes.append(len(rows))
    for n in range(3):
        assert store.record_callback(make_record(call_id=f"c-alone-{n}"))[0] == "inserted"
    assert sizes == [1, 1, 1]


def test_results_are_named_values_equal_to_plain_strings(store):
    result = store.record_callback(make_record(call_id="c-named"))
    assert result.outcome is result[0]
    assert result == ("inserted", None) and result.outcome == "inserted"
    assert {result.outcome: 1} == {"inserted": 1}


# --- SQLite: one hot-path connection per process ---------------------------------------------


sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])  # PostgreSQL uses its pool


@pytest.fixture
def database(tmp_path):
    """The connections module on its own, on a SQLite file of this test."""
    url = normalize_url(f"sqlite:///{tmp_path / 'events.db'}")
    made = Database(url, busy_timeout=2.0, sqlite_synchronous="FULL")
    made.migrate()
    yield made
    made.dispose()


def count_events(cursor) -> int:
    cursor.execute("SELECT count(*) FROM events")
    return int(cursor.fetchone()[0])


def connection_of(cursor) -> sqlite3.Connection:
    return cursor.connection


def test_writes_go_through_one_connection_per_process(database):
    first = database.raw_write(connection_of)
    second = database.raw_write(connection_of)
    assert first is second
    assert database.raw_write(count_events) == 0


def test_a_broken_write_connection_is_replaced(database):
    broken = database.raw_write(connection_of)
    broken.close()  # as if the connection died under us
    with pytest.raises(Exception, match="closed"):
        database.raw_write(count_events)
    fresh = database.raw_write(connection_of)
    assert fresh is not broken
    assert database.raw_write(count_events) == 0


def test_dispose_closes_the_write_connection(database):
    written = database.raw_write(connection_of)
    database.dispose()
    with pytest.raises(Exception, match="closed"):
        written.execute("SELECT 1")
    assert database.raw_write(count_events) == 0  # a fresh engine and connection


def test_sqlite_write_connections_are_set_up_for_the_hot_path(database):
    hot = database.raw_write(connection_of)
    assert hot.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert hot.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == WAL_AUTOCHECKPOINT_PAGES
    assert hot.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    # FULL: commits without an fsync under the lock; raw_write fsyncs the WAL after it.
    assert hot.execute("PRAGMA synchronous").fetchone()[0] == 1
    assert database.wal_path is not None


@sqlite_only
def test_a_broken_connection_under_the_store_is_replaced(make_store):
    store = make_store()
    store.record_callback(make_record(call_id="c-before"))
    store.engine.dispose()  # every pooled connection goes; the write path copes
    assert store.record_callback(make_record(call_id="c-after")) == ("inserted", None)
    assert len(store.events_for_call("c-after")) == 1


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
    enable_wal(other.cursor(), busy_timeout=30.0)  # returns once the writer commits
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
            enable_wal(other.cursor(), busy_timeout=0.3)
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
