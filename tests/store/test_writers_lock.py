"""The workers' turn to write: one flock on the file beside the database, also when that
file is deleted or replaced while a worker holds it."""

from __future__ import annotations

import sqlite3
import time

import pytest

from store.writers_lock import WritersLock


@pytest.fixture
def locks(tmp_path):
    path = str(tmp_path / "events.db.writers")
    made = [WritersLock(path), WritersLock(path)]
    yield made
    for lock in made:
        lock.release()


def soon() -> float:
    return time.monotonic() + 0.05


def test_one_worker_at_a_time(locks):
    first, second = locks
    assert first.acquire(soon())
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        second.acquire(soon())
    first.release()
    assert second.acquire(soon())


def test_a_worker_holding_a_deleted_file_locks_the_new_one_next_time(locks, tmp_path):
    first, second = locks
    assert first.acquire(soon())
    (tmp_path / "events.db.writers").unlink()  # e.g. someone cleaning the folder
    assert second.acquire(soon())  # a new file: the turn that was running cannot be helped
    second.release()
    first.release()
    assert first.acquire(soon())  # must take the file now at the path, not its old one
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        second.acquire(soon())


def test_a_replaced_file_is_opened_again(locks, tmp_path):
    first, second = locks
    assert first.acquire(soon())
    first.release()
    path = tmp_path / "events.db.writers"
    replacement = tmp_path / "other"
    replacement.write_bytes(b"")
    replacement.replace(path)
    assert second.acquire(soon())
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        first.acquire(soon())


def test_without_its_folder_there_is_no_lock(tmp_path):
    lock = WritersLock(str(tmp_path / "gone" / "events.db.writers"))
    assert lock.acquire(soon()) is False
    assert not lock.held_here()
