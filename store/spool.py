"""The local spool: accepted callbacks written to a file while the database is unavailable.

Files next to ``path`` (``spool.jsonl`` by default):

``spool.jsonl``             one JSON object per line, appended under ``spool.jsonl.lock``
``spool.jsonl.replaying``   the batch being replayed (renamed from spool.jsonl atomically)
``spool.jsonl.replay-lock`` held for a whole replay, so one process replays at a time
``spool.jsonl.bad``         lines that can never be stored (torn or invalid), kept for people

A writer appends with ``flush()`` + ``os.fsync()`` while holding an exclusive ``flock`` on
the lock file, so lines from several workers never interleave.  The replayer renames the
spool under the same lock (new callbacks start a new file), stores every line, commits, and
only then deletes the renamed file.  A crash at any point leaves the file to be replayed
again; the database's unique key turns the second pass into no-ops.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator


def _fsync_dir(path: str) -> None:
    """Make a created, renamed or removed directory entry durable (best effort)."""
    try:
        fd = os.open(path or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Spool:
    """Append-only JSON-lines file with an atomic hand-over to the replayer."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.directory = os.path.dirname(self.path)
        self.lock_path = self.path + ".lock"
        self.replaying_path = self.path + ".replaying"
        self.replay_lock_path = self.path + ".replay-lock"
        self.bad_path = self.path + ".bad"

    def pending(self) -> bool:
        """True when there is anything to replay (a stat or two, no locks)."""
        return os.path.exists(self.path) or os.path.exists(self.replaying_path)

    def depth(self) -> int:
        """How many callbacks wait to be replayed (lines of the spool and of a batch being
        replayed); read without locks, so a line being appended may be missed once."""
        lines = 0
        for path in (self.path, self.replaying_path):
            try:
                with open(path, "rb") as spooled:
                    for chunk in iter(lambda: spooled.read(1 << 20), b""):
                        lines += chunk.count(b"\n")
            except FileNotFoundError:
                continue
        return lines

    @contextlib.contextmanager
    def _flock(self, lock_path: str, *, blocking: bool = True) -> Iterator[None]:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # BlockingIOError when blocking is False and someone else holds it.
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def append(self, line: str) -> None:
        """Append one line durably (raises OSError when it cannot)."""
        self.append_many([line])

    def append_many(self, lines: list[str]) -> None:
        """Append lines durably with one fsync (raises OSError when it cannot)."""
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        os.makedirs(self.directory, exist_ok=True)
        with self._flock(self.lock_path):
            self._append_locked(self.path, data)

    def _append_locked(self, path: str, data: bytes) -> None:
        created = not os.path.exists(path)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        with open(fd, "ab") as out:  # closes fd
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                # A writer crashed mid-line: end that torn line so ours stays whole.
                out.write(b"\n")
            out.write(data)
            out.flush()
            os.fsync(fd)
        if created:
            _fsync_dir(self.directory)

    @contextlib.contextmanager
    def replaying(self) -> Iterator[bool]:
        """Hold the replay lock; yields False when another process is replaying."""
        os.makedirs(self.directory, exist_ok=True)
        fd = os.open(self.replay_lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
            else:
                yield True
        finally:
            os.close(fd)

    def claim(self) -> str | None:
        """The file to replay next: a leftover batch, or the spool renamed atomically.

        Call while holding :meth:`replaying`.  Returns None when there is nothing to do.
        """
        if os.path.exists(self.replaying_path):
            return self.replaying_path
        with self._flock(self.lock_path):
            if not os.path.exists(self.path):
                return None
            os.replace(self.path, self.replaying_path)
        _fsync_dir(self.directory)
        return self.replaying_path

    def read_lines(self, path: str) -> list[bytes]:
        with open(path, "rb") as batch:
            return [line for line in batch.read().split(b"\n") if line.strip()]

    def quarantine(self, line: bytes) -> None:
        """Keep a line that can never be stored, for a person to look at."""
        with self._flock(self.lock_path):
            self._append_locked(self.bad_path, line.rstrip(b"\n") + b"\n")

    def discard(self, path: str) -> None:
        """Remove a replayed batch (only after its rows are committed)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        _fsync_dir(self.directory)
