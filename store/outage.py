"""Whether the database is away, shared by the worker processes of one server.

After a commit failed for want of the database (a lock held past the busy timeout, a
refused or cancelled connection), callbacks go straight to the spool for ``hold`` seconds;
then one callback at a time tries the database again (the probe), until a commit succeeds.
The workers of a server share this state through a file beside the spool
(``<spool>.outage``), mapped into each one's memory: one worker's failure spares the others
their own discovery of it (each would spend a callback's whole busy timeout on it), and
one callback probes for the whole server, not one per worker.  Two numbers, in seconds of
``time.monotonic()`` (CLOCK_MONOTONIC on Linux: the same clock in every process of a host):

``down_until``   0 while the database answers; else no callback tries it before then
``probe_until``  a probe's claim: it ends when the probe's commit does, or lapses then (a
                 probe that hangs, or whose worker died, must not stop probing for good)

A read takes no lock (the healthy path reads memory: no system call); a change takes an
flock on the file, and a thread lock (an flock does not exclude the threads of one
process).  A stale or torn read costs one callback a spool write it did not need, or a try
of the database, never a callback.  When the file cannot be opened or mapped, the state
lives in this process's memory: each worker finds an outage on its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import mmap
import os
import struct
import threading
import time
from collections.abc import Iterator

log = logging.getLogger(__name__)

_TIME = struct.Struct("<d")
DOWN_UNTIL, PROBE_UNTIL = 0, 8  # byte offsets
SIZE = 16
# A probe's claim outlives its commit's bounds: PostgreSQL cancels a statement one second
# past the busy timeout (connections.STATEMENT_TIMEOUT_MARGIN), SQLite's wait ends with it.
PROBE_MARGIN = 2.0

FAILED_LATELY = "the database failed a moment ago"
PROBING = "the database failed; another callback is trying it"


class OutageBoard:
    """One process's view of the outage state in the file at ``path`` (None, or a file that
    cannot be used: this process's memory only).  Make a new one in a forked child: an
    flock taken through a descriptor inherited from the parent would be the parent's."""

    def __init__(self, path: str | None, hold: float, claim: float | None = None) -> None:
        self.path = path
        self.hold = hold  # seconds of spooling at once after a failure
        self.claim = hold + PROBE_MARGIN if claim is None else claim  # a probe's claim
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._view: mmap.mmap | bytearray = bytearray(SIZE)
        if path is not None:
            try:
                self._open(path)
            except (OSError, ValueError) as exc:  # once per process and store, not per callback
                log.warning(
                    "outage file %s not usable (each worker finds an outage on its own): %s",
                    path,
                    exc,
                )

    @property
    def shared(self) -> bool:
        """Whether the state is in the file (shared with the other workers)."""
        return isinstance(self._view, mmap.mmap)

    def _open(self, path: str) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < SIZE:
                os.ftruncate(fd, SIZE)  # zeros: up; a race with another worker writes zeros too
            view = mmap.mmap(fd, SIZE)
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._view = fd, view
        with self._exclusive():
            # A time further ahead than this server ever sets is from before a reboot (the
            # clock started over) or from something else: the database is not known down.
            now = time.monotonic()
            if not self._read(DOWN_UNTIL) <= now + self.hold:
                self._write(DOWN_UNTIL, 0.0)
            if not self._read(PROBE_UNTIL) <= now + self.claim:
                self._write(PROBE_UNTIL, 0.0)

    def _read(self, offset: int) -> float:
        value: float = _TIME.unpack_from(self._view, offset)[0]
        return value

    def _write(self, offset: int, value: float) -> None:
        _TIME.pack_into(self._view, offset, value)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        with self._lock:
            fd = self._fd
            try:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)  # held for a few writes to memory
            except OSError:  # without it, at worst two probes at once
                fd = None
            try:
                yield
            finally:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def is_down(self) -> bool:
        return self._read(DOWN_UNTIL) != 0.0

    def refusal(self, now: float) -> str | None:
        """None: try the database (it answers, or this callback is now the probe); else
        why the callback goes to the spool at once."""
        if self._read(DOWN_UNTIL) == 0.0:
            return None
        if now < self._read(DOWN_UNTIL):
            return FAILED_LATELY
        if now < self._read(PROBE_UNTIL):
            return PROBING
        with self._exclusive():  # claim the probe, unless another process just did
            down_until = self._read(DOWN_UNTIL)
            if down_until == 0.0:
                return None
            if now < down_until:
                return FAILED_LATELY
            if now < self._read(PROBE_UNTIL):
                return PROBING
            self._write(PROBE_UNTIL, now + self.claim)
            return None

    def failed(self) -> None:
        """A commit failed for want of the database: no tries for ``hold`` seconds, then a
        probe (any claim is over: this may have been the probe)."""
        with self._exclusive():
            self._write(DOWN_UNTIL, time.monotonic() + self.hold)
            self._write(PROBE_UNTIL, 0.0)

    def answered(self) -> None:
        """A commit succeeded (or failed for its rows): the database answers."""
        if self._read(DOWN_UNTIL) == 0.0 and self._read(PROBE_UNTIL) == 0.0:
            return
        with self._exclusive():
            self._write(DOWN_UNTIL, 0.0)
            self._write(PROBE_UNTIL, 0.0)

    def close(self) -> None:
        """Let go of the file (in the process that opened it).  A caller still holding this
        board goes on with a copy of the state in this process's memory; the mapping goes
        when the last read of it has returned (the mmap's own reference count)."""
        with self._lock:
            fd, self._fd = self._fd, None
            self._view = bytearray(self._view[:SIZE])
        if fd is not None:
            os.close(fd)
