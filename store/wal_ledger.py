"""How far a SQLite WAL is known to be on disk, shared by every process of a server.

With FULL, each worker's fsync thread makes its committed callbacks durable by fsyncing the
WAL.  An fsync flushes every page of the file, the other workers' commits too, but a worker
cannot know that, so both workers used to fsync for the same pages.  This ledger tells
them: a file beside the database (``<database>.synced``) holds three counters, mapped
into every process's memory:

``committed``  callback commits so far; a writer adds one after its COMMIT returned, while
               it still holds the writers' turn (so the counter only counts commits whose
               pages the OS already has)
``synced``     a value of ``committed`` read before an fsync of the WAL that then succeeded
``failed``     a value of ``committed`` read after an fsync of the WAL failed: Linux reports
               a lost writeback once, so a later fsync may succeed without those pages

A commit numbered ``n`` is on disk once ``synced >= n``.  An fsync is made by one process
at a time (an flock on the ledger); a process that waited for another's fsync finds its
commit covered and skips its own.  ``synced`` only grows after a successful fsync, and
``committed`` only after a commit, so a stale read of either asks for one fsync more, never
one less.  A commit numbered up to ``failed`` is never taken as on disk.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import struct
import threading
from collections.abc import Callable, Iterator

_COUNTER = struct.Struct("<Q")
COMMITTED, SYNCED, FAILED = 0, 8, 16  # byte offsets of the counters
SIZE = 24


class WalLedger:
    """One process's view of the ledger file at ``path``, opened and mapped at once (raises
    OSError).  Make a new one in a forked child: an flock taken through a descriptor
    inherited from the parent would be the parent's lock."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(self._fd).st_size < SIZE:
                os.ftruncate(self._fd, SIZE)  # zeros; a race with another process writes zeros too
            self._view = mmap.mmap(self._fd, SIZE)
        except BaseException:
            os.close(self._fd)
            raise
        self._thread_lock = threading.Lock()  # an flock does not exclude threads of one process
        with self._exclusive():
            # A synced counter ahead of the commits (the file written by something else)
            # would let commits skip their fsync: start it over from the commits.
            for counter in (SYNCED, FAILED):
                if self._read(counter) > self._read(COMMITTED):
                    _COUNTER.pack_into(self._view, counter, self._read(COMMITTED))

    def _read(self, offset: int) -> int:
        value: int = _COUNTER.unpack_from(self._view, offset)[0]
        return value

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        with self._thread_lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # the holder is in an fsync: wait for it
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def committed(self) -> int:
        """Count a commit that just returned (call holding the writers' turn); its number."""
        number = self._read(COMMITTED) + 1
        _COUNTER.pack_into(self._view, COMMITTED, number)
        return number

    def sync(self, fsync: Callable[[], None], through: int | None = None) -> bool:
        """Make the commits numbered up to ``through`` durable, with ``fsync()`` unless an
        fsync that began after them has already succeeded (None: fsync in any case, for
        commits the ledger does not count).  Whether ``fsync`` was called; what it raises
        propagates, and then every commit so far is marked as not known to be on disk:
        OSError for those from now on."""
        if through is not None and self._read(SYNCED) >= through > self._read(FAILED):
            return False
        with self._exclusive():
            if through is not None and through <= self._read(FAILED):
                raise OSError(errno.EIO, "an fsync of the WAL failed since this commit")
            if through is not None and self._read(SYNCED) >= through:
                return False  # the fsync we waited for covered it
            covered = self._read(COMMITTED)
            try:
                fsync()
            except BaseException:
                # Its pages, and those of any commit made meanwhile, may be lost.
                failed = max(self._read(COMMITTED), self._read(FAILED))
                _COUNTER.pack_into(self._view, FAILED, failed)
                raise
            if covered > self._read(SYNCED):
                _COUNTER.pack_into(self._view, SYNCED, covered)
            return True

    def close(self) -> None:
        """Unmap and close (in the process that opened it)."""
        self._view.close()
        os.close(self._fd)
