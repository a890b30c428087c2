"""The workers' turn to write a SQLite database: an flock on a file beside it.

SQLite lets one writer in at a time and makes the others wait in its busy handler, which
sleeps in steps and lets a newcomer overtake a writer that has waited long.  Our writers
queue on this lock instead (the threads of one process on a thread lock first, in
connections.Database.writer_turn), and are served in turn.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import time

from .engine import current_pid

log = logging.getLogger(__name__)


class WritersLock:
    """One process's descriptor of ``path`` and its flock (held by one thread at a time:
    the caller serialises its threads)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = 0
        self.held = False

    def forget(self) -> None:
        """After a fork: the parent's descriptor shares its lock; open our own."""
        self._fd = None
        self.held = False

    def acquire(self, deadline: float) -> bool:
        """Take the lock before ``deadline`` (sqlite3.OperationalError past it); False when
        this process cannot have the file (its folder is gone: SQLite will say so).

        Should the file be deleted or replaced while a worker holds it open, a worker
        opening it anew would lock another file and both would write at once: so the lock
        counts only on the file now at the path, else it is opened again."""
        while True:
            fd = self._open()
            if fd is None:
                return False
            flock_until(fd, deadline)
            held = os.fstat(fd)
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                current = None
            if current is not None and (current.st_dev, current.st_ino) == (
                held.st_dev,
                held.st_ino,
            ):
                self.held = True
                return True
            log.warning("writers' lock file %s was replaced: opening it again", self.path)
            os.close(fd)  # lets go of the flock on the old file
            self._fd = None

    def release(self) -> None:
        self.held = False
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def held_here(self) -> bool:
        """Whether this process (not a parent before a fork) holds the lock."""
        return self.held and self._fd is not None and self._pid == current_pid()

    def _open(self) -> int | None:
        if self._fd is None or self._pid != current_pid():
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                return None
            self._pid = os.getpid()
        return self._fd


def flock_until(fd: int, deadline: float) -> None:
    """An exclusive flock, or sqlite3.OperationalError at ``deadline``.

    Tried without blocking first (the usual case under our own writers' turn); then
    polled, since flock itself cannot time out.
    """
    pause = 0.0002
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise sqlite3.OperationalError(
                    "database is locked (other workers' writers past the timeout)"
                ) from None
        time.sleep(pause)
        pause = min(pause * 2, 0.002)
