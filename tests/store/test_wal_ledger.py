"""One fsync serves every worker's commits (SQLite FULL), and never one too few.

Two WalLedger objects on one file stand for two workers: each has its own descriptor (so
their flocks exclude each other) and its own mapping of the same counters.
"""

from __future__ import annotations

import os
import struct
import threading

import pytest

from store.connections import Database
from store.engine import normalize_url
from store.wal_ledger import COMMITTED, SYNCED, WalLedger

from .conftest import make_record
from .test_durability import record_fsyncs


class Fsyncs:
    """An fsync stand-in that counts its calls, or fails, or waits to be let go."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail: OSError | None = None
        self.entered = threading.Event()
        self.release: threading.Event | None = None

    def __call__(self) -> None:
        self.calls += 1
        self.entered.set()
        if self.release is not None:
            assert self.release.wait(30)
        if self.fail is not None:
            raise self.fail


@pytest.fixture
def ledgers(tmp_path):
    path = str(tmp_path / "events.db.synced")
    made = [WalLedger(path), WalLedger(path)]
    yield made
    for ledger in made:
        ledger.close()


def test_commits_are_numbered_across_workers(ledgers):
    first, second = ledgers
    assert [first.committed(), second.committed(), first.committed()] == [1, 2, 3]


def test_an_fsync_covers_the_other_workers_earlier_commits(ledgers):
    first, second = ledgers
    early = first.committed()
    late = second.committed()
    fsync = Fsyncs()
    assert second.sync(fsync, late) is True
    assert first.sync(fsync, early) is False  # made durable by the second worker's fsync
    assert fsync.calls == 1


def test_a_commit_after_the_last_fsync_gets_its_own(ledgers):
    first, second = ledgers
    fsync = Fsyncs()
    assert second.sync(fsync, second.committed()) is True
    assert first.sync(fsync, first.committed()) is True
    assert fsync.calls == 2


def test_a_failed_fsync_leaves_the_commit_not_on_disk(ledgers):
    first, second = ledgers
    seq = first.committed()
    failing = Fsyncs()
    failing.fail = OSError(5, "I/O error")
    with pytest.raises(OSError):
        second.sync(failing, seq)
    fsync = Fsyncs()
    with pytest.raises(OSError):  # another fsync would not bring its lost pages back
        first.sync(fsync, seq)
    assert fsync.calls == 0


def test_without_a_number_it_always_fsyncs_and_covers_what_was_counted(ledgers):
    first, second = ledgers
    seq = first.committed()
    fsync = Fsyncs()
    assert second.sync(fsync) is True  # a commit the ledger does not count
    assert second.sync(fsync) is True
    assert first.sync(fsync, seq) is False
    assert fsync.calls == 2


def test_a_worker_waits_for_the_fsync_in_progress_and_skips_its_own(ledgers):
    first, second = ledgers
    early = first.committed()
    slow = Fsyncs()
    slow.release = threading.Event()
    syncing = threading.Thread(target=second.sync, args=(slow, second.committed()))
    syncing.start()
    assert slow.entered.wait(30)  # the second worker is inside its fsync, holding the ledger
    own = Fsyncs()
    outcome: list[bool] = []
    waiting = threading.Thread(target=lambda: outcome.append(first.sync(own, early)))
    waiting.start()
    slow.release.set()
    syncing.join(30)
    waiting.join(30)
    assert outcome == [False] and own.calls == 0 and slow.calls == 1


def test_a_commit_made_during_an_fsync_is_not_covered_by_it(ledgers):
    first, second = ledgers
    slow = Fsyncs()
    slow.release = threading.Event()
    syncing = threading.Thread(target=second.sync, args=(slow, second.committed()))
    syncing.start()
    assert slow.entered.wait(30)
    during = first.committed()  # its pages may have come after the fsync started
    slow.release.set()
    syncing.join(30)
    fsync = Fsyncs()
    assert first.sync(fsync, during) is True
    assert fsync.calls == 1


def test_a_ledger_whose_synced_count_is_ahead_starts_over(tmp_path):
    path = tmp_path / "events.db.synced"
    path.write_bytes(struct.pack("<QQ", 3, 1000))  # written by something else
    ledger = WalLedger(str(path))
    try:
        seq = ledger.committed()
        fsync = Fsyncs()
        assert ledger.sync(fsync, seq) is True
    finally:
        ledger.close()
    assert struct.unpack_from("<Q", path.read_bytes(), SYNCED)[0] == seq
    assert struct.unpack_from("<Q", path.read_bytes(), COMMITTED)[0] == seq


def test_the_ledger_file_is_private(tmp_path):
    path = tmp_path / "events.db.synced"
    WalLedger(str(path)).close()
    assert os.stat(path).st_mode & 0o077 == 0


# --- through the store ------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"])
def test_two_workers_stores_each_fsync_their_own_later_commits(make_store, monkeypatch):
    first, second = make_store(), make_store()
    first.migrate()
    synced = record_fsyncs(monkeypatch)
    assert first.record_callback(make_record(call_id="c-ledger-1")).outcome == "inserted"
    assert second.record_callback(make_record(call_id="c-ledger-2")).outcome == "inserted"
    assert first.record_callback(make_record(call_id="c-ledger-3")).outcome == "inserted"
    assert len(synced) == 3  # each commit came after the previous fsync


def test_a_commit_covered_by_another_workers_fsync_is_acknowledged_without_one(
    tmp_path, monkeypatch
):
    url = normalize_url(f"sqlite:///{tmp_path / 'events.db'}")
    first, second = (Database(url, busy_timeout=2.0, sqlite_synchronous="FULL") for _ in "ab")
    try:
        first.migrate()
        first.raw_write(lambda cursor: None, sync=False)
        early = first.last_commit()
        second.raw_write(lambda cursor: None, sync=False)
        synced = record_fsyncs(monkeypatch)
        second.sync_wal(second.last_commit())  # the later commit's fsync covers both
        first.sync_wal(early)
        assert synced == [str(tmp_path / "events.db-wal")]
        assert early is not None and second.last_commit() == early + 1
    finally:
        first.dispose()
        second.dispose()


def test_commits_are_not_counted_without_full(tmp_path):
    url = normalize_url(f"sqlite:///{tmp_path / 'events.db'}")
    database = Database(url, busy_timeout=2.0, sqlite_synchronous="NORMAL")
    try:
        database.migrate()
        database.raw_write(lambda cursor: None)
        assert database.last_commit() is None
        assert not (tmp_path / "events.db.synced").exists()
    finally:
        database.dispose()


def test_after_a_failed_fsync_a_later_one_does_not_vouch_for_the_earlier_commits(ledgers):
    """Linux reports a writeback error once: after the first worker's fsync failed (and
    its pages may be lost), the second worker's fsync, through a descriptor opened since,
    succeeds.  The commits made before the failure are then never taken as on disk; the
    ones after it are."""
    first, second = ledgers
    early = first.committed()
    also_early = second.committed()
    failing = Fsyncs()
    failing.fail = OSError(5, "I/O error")
    with pytest.raises(OSError):
        first.sync(failing, early)
    fsync = Fsyncs()  # "succeeds": the error was reported already
    with pytest.raises(OSError):
        second.sync(fsync, also_early)
    with pytest.raises(OSError):
        first.sync(fsync, early)  # covered by that fsync, but not on disk for all we know
    later = first.committed()
    assert second.sync(fsync, second.committed()) is True
    assert first.sync(fsync, later) is False


def test_a_ledger_that_cannot_be_opened_is_said_once_and_each_commit_fsyncs(
    tmp_path, monkeypatch, caplog
):
    (tmp_path / "events.db.synced").mkdir()  # not a file: the ledger cannot map it
    url = normalize_url(f"sqlite:///{tmp_path / 'events.db'}")
    database = Database(url, busy_timeout=2.0, sqlite_synchronous="FULL")
    try:
        database.migrate()
        synced = record_fsyncs(monkeypatch)
        with caplog.at_level("WARNING", logger="store.connections"):
            for _ in range(3):
                database.raw_write(lambda cursor: None)
        assert len(synced) == 3  # no ledger: every commit makes its own fsync
        said = [r.getMessage() for r in caplog.records if "WAL ledger" in r.getMessage()]
        assert len(said) == 1 and "not usable" in said[0]  # once, not on every commit
    finally:
        database.dispose()
