"""The callback write path: group commit on a thread of its own, and the spool as the way out.

Each process has its commit thread (one by default: SQLite's writers take turns anyway, and
on PostgreSQL one commit at a time gathers more callbacks in each; store.core
PG_COMMIT_THREADS).  A request thread queues its row and waits; a commit thread takes
everything queued (up to GROUP_MAX rows) and commits it in one transaction, so under load
one commit (and, in durable mode, one fsync) carries many callbacks; while callbacks come
in bursts, a commit waits up to LINGER_SECONDS for as many as the last one carried
(without a separate fsync).  A request thread never touches
the database itself, so it never waits longer than its deadline (the busy timeout): past
it, it writes its row to the spool (fsynced) and answers.  Should the commit finish later
after all, the row is in the database and in the spool, and the replay's unique key makes
the spool's copy a no-op: stored once.

When a commit fails because the database is away, the rows still waiting are spooled
together (one fsync), and for a while every worker of the server spools at once, then one
callback at a time tries the database (store.outage); when one row is at fault (bad
data), each row is tried on its own.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .connections import Database
from .engine import current_pid
from .errors import DB_ERRORS, Broken, StoreUnavailable, line_specific
from .inserts import SPOOLED, CallbackResult, EventInserts, reply_dict
from .outage import OutageBoard
from .rows import clean_key, event_row
from .spool import Spool

log = logging.getLogger(__name__)

GROUP_MAX = 64  # callbacks per group-commit transaction
# How long a commit waits for the rest of a burst before it starts: while callbacks come
# together, it waits for as many as the last commit carried (PostgreSQL's commit_delay,
# with the last batch for commit_siblings), so that one commit carries them.  Not with a
# separate fsync (SQLite FULL): the commits made while an fsync runs share the next one
# already, and the wait only delayed them (no gain in A/B runs, where NORMAL and
# PostgreSQL gained 5-20%).
LINGER_SECONDS = 0.001


@dataclass
class CommitHooks:
    """Calls into the commit thread, for tests (all None in production).

    ``before_batch(rows)`` before the transaction; ``in_transaction(row)`` after each
    row's insert, before the commit (before the statement, when one statement inserts and
    commits: EventInserts.one_statement); ``after_commit(rows)`` after the commit, before
    the callers are told.
    """

    before_batch: Callable[[list[dict[str, Any]]], None] | None = None
    in_transaction: Callable[[Mapping[str, Any]], None] | None = None
    after_commit: Callable[[list[dict[str, Any]]], None] | None = None


class _Pending:
    """One callback row waiting for the commit thread."""

    __slots__ = ("abandoned", "claimed", "deadline", "done", "error", "result", "row", "settled")

    def __init__(self, row: dict[str, Any], deadline: float) -> None:
        self.row = row
        self.deadline = deadline
        self.done = threading.Lock()
        self.done.acquire()  # released once settled
        self.settled = False
        self.abandoned = False  # its caller stopped waiting (and spooled the row itself)
        self.claimed = False  # the commit thread is spooling it: its caller waits for that
        self.result: CallbackResult | None = None
        self.error: StoreUnavailable | None = None

    def outcome(self) -> CallbackResult:
        if self.error is not None:
            raise self.error
        if self.result is None:  # never acknowledge what we cannot account for
            raise StoreUnavailable("the commit ended without storing this callback")
        return self.result


# A committed batch waiting for the fsync: its rows, their results, its commit's number in
# the WAL ledger (None: not counted, so it needs an fsync of its own).
Committed = tuple[list[_Pending], list[CallbackResult], int | None]


class _Committer:
    """One process's commit thread and the rows queued for it.

    With a separate fsync (SQLite FULL) a second thread makes the committed batches
    durable: one fsync for every batch committed meanwhile, while the next one commits.
    """

    def __init__(
        self,
        commit: Callable[[_Committer, list[_Pending]], None],
        sync: Callable[[_Committer, list[Committed]], None] | None,
        threads: int,
        board: OutageBoard,
    ) -> None:
        self.pid = current_pid()
        lock = threading.Lock()
        self.cond = threading.Condition(lock)  # the commit threads wait on it
        self.sync_cond = threading.Condition(lock)  # the fsync thread waits on it
        self.queue: list[_Pending] = []
        self.unsynced: list[Committed] = []  # committed, waiting for the fsync
        self.busy: dict[int, float] = {}  # commit thread -> when its running commit started
        self.lingers = sync is None  # see LINGER_SECONDS
        self.burst = 1  # rows in the last batch: a commit waits briefly for as many
        self.lingering = 0  # the queue length a lingering commit thread waits for
        # After a commit failed because the database is away (locked, refused, hung): no
        # new attempt for a while, then one callback at a time tries it; shared with the
        # other workers of the server where the board's file can be used (outage.py).
        self.board = board
        self.stopping = False
        self._commit = commit
        self._sync = sync
        self.threads = [
            threading.Thread(target=self._run, args=(n,), name="store-group-commit", daemon=True)
            for n in range(max(1, threads))
        ]
        for thread in self.threads:
            thread.start()
        self.sync_thread: threading.Thread | None = None
        if sync is not None:
            self.sync_thread = threading.Thread(
                target=self._run_sync, name="store-group-fsync", daemon=True
            )
            self.sync_thread.start()

    def to_sync(
        self, batch: list[_Pending], results: list[CallbackResult], seq: int | None
    ) -> None:
        with self.cond:
            self.unsynced.append((batch, results, seq))
            self.sync_cond.notify()

    def _run_sync(self) -> None:
        assert self._sync is not None
        while True:
            with self.cond:
                while not self.unsynced and not (self.stopping and self._commits_done()):
                    self.sync_cond.wait()
                if not self.unsynced:
                    return
                committed, self.unsynced = self.unsynced, []
            try:
                self._sync(self, committed)
            except BaseException as exc:  # the thread must live on; nobody is acknowledged
                log.exception("fsync of committed callbacks failed")
                for batch, _, _ in committed:
                    self.settle(batch, None, StoreUnavailable(f"fsync failed: {exc}"))

    def submit(self, pending: _Pending, stalled_after: float) -> str | None:
        """Queue ``pending`` (None), or say why its caller should spool it at once: every
        commit thread has been in its commit for over ``stalled_after`` seconds (the
        database hangs), or the database failed lately and is not to be tried yet, or
        another callback is trying it (waiting would only spend the caller's time)."""
        with self.cond:
            busy = self.busy
            now = time.monotonic()
            if len(busy) == len(self.threads) and now - max(busy.values()) > stalled_after:
                if not self.board.is_down():
                    # The other workers need not each find the hang with a callback's wait:
                    # it is an outage until that commit ends (answered, or failed).
                    self.board.failed()
                return "the database has been stuck in a commit"
            refusal = self.board.refusal(now)  # a read of memory while the database answers
            if refusal is not None:
                return refusal
            self.queue.append(pending)
            if len(self.queue) == 1 or len(self.queue) == self.lingering:
                # Else a commit thread has been woken for the queue already, or they are
                # all committing and take it next: a wake-up costs the caller its time.
                self.cond.notify()
            return None

    def abandon(self, pending: _Pending) -> bool:
        """The caller stops waiting; False when its outcome is already decided."""
        with self.cond:
            if pending.settled or pending.claimed:
                return False
            pending.abandoned = True
            if pending in self.queue:
                self.queue.remove(pending)
            return True

    def settle(
        self,
        batch: list[_Pending],
        result: CallbackResult | list[CallbackResult] | None,
        error: StoreUnavailable | None = None,
    ) -> None:
        results = result if isinstance(result, list) else [result] * len(batch)
        woken = []
        with self.cond:
            for pending, outcome in zip(batch, results, strict=True):
                if pending.settled or pending.abandoned:
                    continue
                pending.result, pending.error, pending.settled = outcome, error, True
                woken.append(pending)
        for pending in woken:
            pending.done.release()

    def claim(self, batch: list[_Pending]) -> list[_Pending]:
        """The rows of ``batch`` whose callers still wait, now to be spooled by the commit
        thread (so that a caller giving up meanwhile does not spool its row a second time)."""
        with self.cond:
            waiting = [p for p in batch if not (p.settled or p.abandoned)]
            for pending in waiting:
                pending.claimed = True
            return waiting

    def depth(self) -> int:
        with self.cond:
            unsynced = sum(len(batch) for batch, _, _ in self.unsynced)
            return len(self.queue) + len(self.busy) + unsynced

    def _commits_done(self) -> bool:
        """The commit threads have ended (call holding the lock)."""
        return self.ended == len(self.threads)

    ended = 0  # commit threads that have ended (after stop())

    def stop(self, timeout: float) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        for thread in self.threads:
            thread.join(timeout)
        if self.sync_thread is not None:
            self.sync_thread.join(timeout)

    def _run(self, number: int) -> None:
        while True:
            with self.cond:
                while not self.queue and not self.stopping:
                    self.cond.wait()
                if not self.queue:
                    self.ended += 1
                    self.sync_cond.notify()
                    return
                if self.lingers and len(self.queue) < self.burst and not self.stopping:
                    self.lingering = min(self.burst, GROUP_MAX)
                    self.cond.wait(LINGER_SECONDS)
                    self.lingering = 0
                    if not self.queue:  # another commit thread took them
                        continue
                batch = self.queue[:GROUP_MAX]
                del self.queue[:GROUP_MAX]
                self.burst = len(batch)
                self.busy[number] = time.monotonic()
            try:
                self._commit(self, batch)
            except BaseException as exc:  # the thread must live on; nobody is acknowledged
                log.exception("group commit failed")
                self.settle(batch, None, StoreUnavailable(f"group commit failed: {exc}"))
            finally:
                with self.cond:
                    del self.busy[number]


class CallbackWriter:
    """``record(record)``: commit one callback with others, or spool it; bounded wait."""

    def __init__(
        self, database: Database, spool: Spool, busy_timeout: float, commit_threads: int
    ) -> None:
        self.db = database
        self.commit_threads = commit_threads
        self.spool = spool
        self.busy_timeout = busy_timeout
        # After a failed commit, callbacks go to the spool without trying the database for
        # this long, in every worker of the server (a long lock or an outage would otherwise
        # hold each one the full busy timeout, and a few such callbacks take every thread).
        self.retry_after = busy_timeout
        self.inserts = EventInserts(database.dialect)
        self.hooks = CommitHooks()
        # Called on the commit thread after rows were stored (the spool's replay).
        self.after_stored: Callable[[], None] = lambda: None
        # Called after rows were spooled (the spool's replay, on a timer).
        self.after_spooled: Callable[[], None] = lambda: None
        self._committer: _Committer | None = None
        self._board: tuple[int, OutageBoard] | None = None  # this process's, and its pid
        self._committer_lock = threading.Lock()

    def record(self, record: Mapping[str, Any], timeout: float | None = None) -> CallbackResult:
        row = event_row(record)
        wait = self.busy_timeout if timeout is None else max(0.0, float(timeout))
        committer = self._committer_for_process()
        pending = _Pending(row, time.monotonic() + wait)
        refused = committer.submit(pending, stalled_after=self.busy_timeout)
        if refused is not None:
            self.spool_rows([row], TimeoutError(refused))
            return SPOOLED
        if pending.done.acquire(timeout=wait):
            return pending.outcome()
        if committer.abandon(pending):
            self.spool_rows([row], TimeoutError(f"not committed within {wait:g} s"))
            return SPOOLED
        pending.done.acquire()  # settled just now, or being spooled for us
        return pending.outcome()

    def queue_depth(self) -> int:
        """Callbacks of this process queued or being committed."""
        committer = self._committer
        return 0 if committer is None or committer.pid != current_pid() else committer.depth()

    def stop(self, timeout: float = 30.0) -> None:
        committer, self._committer = self._committer, None
        if committer is not None and committer.pid == current_pid():
            committer.stop(timeout)
        with self._committer_lock:
            board, self._board = self._board, None
        if board is not None and board[0] == current_pid():
            board[1].close()

    def database_answered(self) -> None:
        """The database took rows another way (the spool's replay): the outage is over, for
        every worker of the server."""
        with self._committer_lock:
            board = self._board_locked()
        board.answered()

    def _board_locked(self) -> OutageBoard:
        """This process's outage board (call holding _committer_lock); a forked child opens
        its own (an flock through the parent's descriptor would be the parent's)."""
        if self._board is None or self._board[0] != current_pid():
            # Beside the spool, which the workers of a server share.
            board = OutageBoard(self.spool.path + ".outage", self.retry_after)
            self._board = (current_pid(), board)
        return self._board[1]

    def _committer_for_process(self) -> _Committer:
        committer = self._committer
        if committer is not None and committer.pid == current_pid():
            return committer
        with self._committer_lock:
            committer = self._committer
            if committer is None or committer.pid != current_pid():
                # New, or forked (the parent's thread did not come along).
                sync = self._sync_batches if self.db.wal_path is not None else None
                committer = self._committer = _Committer(
                    self._commit_batch, sync, self.commit_threads, self._board_locked()
                )
            return committer

    # --- on the commit thread ----------------------------------------------------------

    def _commit_batch(self, committer: _Committer, batch: list[_Pending]) -> None:
        rows = [pending.row for pending in batch]
        hooks = self.hooks
        if hooks.before_batch is not None:
            hooks.before_batch(rows)
        deadline = max(pending.deadline for pending in batch)
        failure: BaseException | None = None
        for attempt in (0, 1):
            try:
                results = self.db.raw_write(
                    self._store_all(rows),
                    deadline,
                    sync=False,
                    autocommit=self.inserts.one_statement(rows),
                )
            except Broken as exc:
                failure = exc
                if attempt == 0:
                    log.info("store connection was broken, retrying: %s", exc)
                    continue
            except Exception as exc:
                failure = exc
            else:
                committer.board.answered()  # a read of memory unless it was down
                if self.db.wal_path is None:
                    self._finish(committer, [(batch, results, None)])
                else:
                    committer.to_sync(batch, results, self.db.last_commit())
                return
            break
        assert failure is not None
        rows_at_fault = line_specific(failure)
        if rows_at_fault:
            committer.board.answered()  # it answered: the rows were at fault
        else:
            # Spool at once for the board's hold (the writer's retry_after), then let one
            # callback at a time try it.
            committer.board.failed()
        if len(batch) > 1 and rows_at_fault:
            log.info("group commit of %d callbacks failed, one by one: %s", len(batch), failure)
            for pending in batch:
                self._commit_batch(committer, [pending])
            return
        self._spool_waiting(committer, batch, failure)

    def _sync_batches(self, committer: _Committer, committed: list[Committed]) -> None:
        """On the fsync thread: one fsync makes every batch committed so far durable (none,
        when another worker's fsync already did)."""
        seqs = [seq for _, _, seq in committed]
        through = None if None in seqs else max(seq for seq in seqs if seq is not None)
        try:
            self.db.sync_wal(through)
        except OSError as exc:  # committed, but not known to be on disk: spool them too
            for batch, _, _ in committed:
                self._spool_waiting(committer, batch, exc)
            return
        self._finish(committer, committed)

    def _finish(self, committer: _Committer, committed: list[Committed]) -> None:
        after_commit = self.hooks.after_commit
        for batch, results, _ in committed:
            if after_commit is not None:
                after_commit([pending.row for pending in batch])
            committer.settle(batch, results)
        self.after_stored()

    def _spool_waiting(
        self, committer: _Committer, batch: list[_Pending], failure: BaseException
    ) -> None:
        waiting = committer.claim(batch)
        if not waiting:  # e.g. the server cancelled a statement its callers gave up on
            log.warning(
                "commit of %d callback(s) failed after they were spooled: %s", len(batch), failure
            )
            return
        try:
            self.spool_rows([pending.row for pending in waiting], failure)
        except StoreUnavailable as exc:
            committer.settle(waiting, None, exc)
        else:
            committer.settle(waiting, SPOOLED)

    def _store_all(self, rows: list[dict[str, Any]]) -> Callable[[Any], list[CallbackResult]]:
        store_events = self.inserts.store_events
        in_transaction = self.hooks.in_transaction
        return lambda cursor: store_events(cursor, rows, in_transaction)

    def spool_rows(self, rows: list[dict[str, Any]], cause: BaseException) -> None:
        """Append rows to the spool with one fsync; StoreUnavailable when it cannot."""
        if not rows:
            return
        if isinstance(cause, (*DB_ERRORS, TimeoutError)):
            log.warning("store unavailable, spooling %d event(s): %s", len(rows), cause)
        else:
            log.error("unexpected store error, spooling %d event(s)", len(rows), exc_info=cause)
        try:
            lines = [
                json.dumps(
                    {
                        "v": 1,
                        "kind": "callback",
                        "db": self.db.identity,
                        "database": self.db.name,
                        "row": row,
                    },
                    separators=(",", ":"),
                )
                for row in rows
            ]
            self.spool.append_many(lines)
        except Exception as exc:
            log.error("spool %s not writable: %s", self.spool.path, exc)
            raise StoreUnavailable(
                f"database unavailable ({cause.__class__.__name__}) and spool not writable: {exc}"
            ) from exc
        self.after_spooled()

    # --- reads -------------------------------------------------------------------------

    def find(self, route: str, payload_hash: str) -> dict[str, Any] | None:
        params = {"route": clean_key(route) or "", "payload_hash": clean_key(payload_hash) or ""}
        for attempt in (0, 1):
            try:
                return reply_dict(self.db.raw_read_one(self.inserts.sql["reply"], params))
            except Broken as exc:
                if attempt:
                    log.warning("store unavailable for a duplicate check: %s", exc)
                else:
                    log.info("store connection was broken, retrying: %s", exc)
            except DB_ERRORS as exc:
                log.warning("store unavailable for a duplicate check: %s", exc)
                return None
        return None
