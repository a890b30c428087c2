"""Replaying the spool: every spooled callback stored exactly once, when the database is back.

Runs after the first successful migration in a process, after a commit when a spool has
appeared (looked for at most once a second), on a timer after callbacks were spooled (so
the spool is stored when the database is back even if no callback comes), and by
``flask store replay-spool``.  Large spools replay on a thread of their own.  See
:mod:`store.spool` for the file hand-over.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from .categories import SPOOLED
from .connections import SETUP_RETRY_SECONDS, Database
from .engine import current_pid
from .errors import DB_ERRORS, StoreUnavailable, line_specific
from .group_commit import CommitHooks
from .inserts import EventInserts
from .rows import event_row
from .spool import Spool

log = logging.getLogger(__name__)

REPLAY_CHUNK = 500  # spooled lines per replay transaction
SYNC_REPLAY_BYTES = 1 << 20  # larger spools replay in a background thread
AUTO_REPLAY_RETRY_SECONDS = 5.0
SPOOL_CHECK_SECONDS = 1.0
# After spooling, a retry this long after, then at doubling intervals up to the longest:
# the spool is stored when the database is back even if no callback comes to set it off.
RETRY_FIRST_SECONDS = 10.0
RETRY_LONGEST_SECONDS = 60.0


class Spooled(NamedTuple):
    """One spool line, read: its event row (None: the line is unusable) and the database it
    was written for, by identity (None: not known, when the process spooling had not reached
    its database, or the line is older than that) and by URL (for people)."""

    row: dict[str, Any] | None
    database: str | None = None
    database_url: str = "unnamed"


def read_spooled(line: bytes) -> Spooled:
    """One spool line, read (its row None when the line is unusable)."""
    try:
        item = json.loads(line)
        if not isinstance(item, dict) or item.get("kind") != "callback":
            return Spooled(None)
        stored = item["row"]
        if not isinstance(stored, dict) or not stored.get("route"):
            return Spooled(None)
        row = event_row(stored)
    except (ValueError, KeyError, TypeError):
        return Spooled(None)
    # It waited in the spool: the call's story says so (unless it failed worse).
    row["category"] = row["category"] or SPOOLED
    database, url = item.get("db"), item.get("database")
    return Spooled(
        row,
        database if isinstance(database, str) else None,
        url if isinstance(url, str) else "unnamed",
    )


class Replayer:
    """Stores the spool's lines with the callback insert; one process replays at a time."""

    def __init__(
        self, database: Database, spool: Spool, inserts: EventInserts, hooks: CommitHooks
    ) -> None:
        self.db = database
        self.hooks = hooks  # in_transaction(row) runs here too
        self.spool = spool
        self.inserts = inserts
        self.chunk = REPLAY_CHUNK
        self.pending = False  # a replay failed or was skipped: try again later
        # Called when the database took a batch: an outage is over (store.outage).
        self.answered: Callable[[], None] = lambda: None
        self._next_auto = 0.0
        self._next_spool_check = 0.0
        self._thread: threading.Thread | None = None
        self.retry_first = RETRY_FIRST_SECONDS
        # The timer's process, thread, stop and done (it has found the spool empty).
        self._retry: tuple[int, threading.Thread, threading.Event, threading.Event] | None = None

    def replay(self) -> int:
        """Store every spooled event exactly once; returns how many were new."""
        try:
            self.db.ready(notify=False)
            return self._replay()
        except StoreUnavailable:
            raise
        except DB_ERRORS as exc:
            self.pending = True
            raise StoreUnavailable(f"cannot replay the spool: {exc}") from exc

    def after_stored(self) -> None:
        """The database took rows: the time to replay what was spooled while it did not."""
        if self.pending or self._spool_may_exist():
            self.auto_replay()

    def auto_replay(self, *, force: bool = False) -> None:
        if not force and time.monotonic() < self._next_auto:
            return
        if not self.spool.pending():
            self.pending = False
            return
        size = 0
        for path in (self.spool.path, self.spool.replaying_path):
            with contextlib.suppress(OSError):
                size += os.path.getsize(path)
        if size > SYNC_REPLAY_BYTES:
            thread = self._thread
            if thread is None or not thread.is_alive():
                thread = threading.Thread(
                    target=self._replay_quietly, name="store-spool-replay", daemon=True
                )
                self._thread = thread
                thread.start()
            return
        self._replay_quietly()

    def spooled(self) -> None:
        """Rows were just spooled: replay them later, whether or not a callback comes."""
        retry = self._retry
        if (
            retry is not None
            and retry[0] == current_pid()
            and retry[1].is_alive()
            and not retry[3].is_set()
        ):
            return
        stop, done = threading.Event(), threading.Event()
        thread = threading.Thread(
            target=self._retry_until_empty,
            args=(stop, done),
            name="store-spool-retry",
            daemon=True,
        )
        self._retry = (current_pid(), thread, stop, done)
        thread.start()

    def _retry_until_empty(self, stop: threading.Event, done: threading.Event) -> None:
        wait = self.retry_first
        while not stop.wait(wait):
            if self.spool.pending():
                self.auto_replay(force=True)
            if not self.spool.pending():
                done.set()  # from now on a new spool starts a timer of its own
                if not self.spool.pending():  # (unless one was written just now)
                    return
                done.clear()
            wait = min(wait * 2, RETRY_LONGEST_SECONDS)

    def join(self, timeout: float) -> None:
        retry = self._retry
        if retry is not None and retry[0] == current_pid():
            retry[2].set()
            retry[1].join(timeout)
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _spool_may_exist(self) -> bool:
        """Whether to look for a spool to replay: at most once a second (a stat call)."""
        now = time.monotonic()
        if now < self._next_spool_check:
            return False
        self._next_spool_check = now + SPOOL_CHECK_SECONDS
        return os.path.exists(self.spool.path)

    def _replay_quietly(self) -> None:
        try:
            replayed = self._replay()
        except Exception as exc:
            self.pending = True
            self._next_auto = time.monotonic() + AUTO_REPLAY_RETRY_SECONDS
            log.warning("spool replay failed (will retry): %s", exc)
        else:
            if replayed:
                log.info("replayed %d spooled event(s)", replayed)

    def _replay(self) -> int:
        total = 0
        with self.spool.replaying() as mine:
            if not mine:  # another worker is replaying right now
                self.pending = True
                self._next_auto = time.monotonic() + SETUP_RETRY_SECONDS
                return 0
            for _ in range(3):  # the leftover batch, then what arrived meanwhile
                path = self.spool.claim()
                if path is None:
                    break
                stored, foreign = self._replay_file(path)
                total += stored
                if foreign:
                    self._leave_foreign(foreign)
                self.spool.discard(path)
                if foreign:
                    break  # what is left is theirs: not read again at once
            self.pending = self.spool.pending()
        return total

    def _leave_foreign(self, lines: list[tuple[bytes, str]]) -> None:
        """Put back in the spool the lines written for another database (by a server with
        another DATABASE_URL sharing this spool), each with its URL: theirs to replay,
        never ours."""
        self.spool.append_many([line.decode("utf-8").rstrip("\r\n") for line, _ in lines])
        self._next_auto = time.monotonic() + RETRY_LONGEST_SECONDS
        log.warning(
            "%d spooled callback(s) were acknowledged for another database (%s), not this "
            "one (%s): left in the spool %s for a server using it",
            len(lines),
            ", ".join(sorted({url for _, url in lines})),
            self.db.name,
            self.spool.path,
        )

    def _replay_file(self, path: str) -> tuple[int, list[tuple[bytes, str]]]:
        """Store the lines of ``path``: (how many were new, the lines of other databases)."""
        inserted = 0
        batch: list[tuple[bytes, dict[str, Any]]] = []
        foreign: list[tuple[bytes, str]] = []
        ours = self.db.identity
        with open(path, "rb") as lines:
            for line in lines:
                if not line.strip():
                    continue
                spooled = read_spooled(line)
                if spooled.row is None:
                    log.error("unreadable spool line moved to %s", self.spool.bad_path)
                    self.spool.quarantine(line)
                    continue
                if ours is not None and spooled.database not in (None, ours):
                    foreign.append((line, spooled.database_url))
                    continue
                batch.append((line, spooled.row))
                if len(batch) >= self.chunk:
                    inserted += self.replay_batch(batch)
                    batch = []
        if batch:
            inserted += self.replay_batch(batch)
        return inserted, foreign

    def _insert_rows(self, cursor: Any, rows: list[dict[str, Any]]) -> int:
        in_transaction = self.hooks.in_transaction
        inserted = 0
        for row in rows:
            inserted += self.inserts.insert_event(cursor, row) is not None
            if in_transaction is not None:
                in_transaction(row)
        return inserted

    def replay_batch(self, batch: list[tuple[bytes, dict[str, Any]]]) -> int:
        """One transaction per batch; a line that can never be stored is set aside."""
        rows = [row for _, row in batch]
        whole: int | None = None  # None: a line's data was refused
        try:
            whole = self.db.raw_write(functools.partial(self._insert_rows, rows=rows))
        except Exception as exc:
            if not line_specific(exc):
                raise
        self.answered()  # the database answered (a refusal of a line's data too)
        if whole is not None:
            return whole
        inserted = 0
        for line, row in batch:
            try:
                inserted += self.db.raw_write(functools.partial(self._insert_rows, rows=[row]))
            except Exception as exc:
                if not line_specific(exc):
                    raise
                log.error("spool line refused by the database (%s); moved aside", exc)
                self.spool.quarantine(line)
        return inserted
