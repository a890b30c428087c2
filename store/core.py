"""The Store: durable callback events, the spool, and the small tables other features share.

One code path for SQLite (the embedded default) and PostgreSQL, in SQLAlchemy Core.  This
class is a thin front; the work is done by one module per job:

* :mod:`store.engine`        engine set-up (shared with the sandbox), durability settings
* :mod:`store.connections`   one process's connections, migrations, the writers' turn
* :mod:`store.writers_lock`  the workers' turn to write SQLite (an flock beside it)
* :mod:`store.group_commit`  the callback write path: group commit with a bounded wait
* :mod:`store.inserts`       the callback insert and its named results
* :mod:`store.spool`, :mod:`store.replay`   the outage spool and its exactly-once replay
* :mod:`store.outage`        whether the database is away, shared by the workers
* :mod:`store.queries`       the dashboard's reads and the rejected-requests log
* :mod:`store.outbound`      outbound call attempts
* :mod:`store.retention`     rate limits and purge
* :mod:`store.sessions`      dashboard logins (logout ends them everywhere)
* :mod:`store.alerts`        alert rules' failure counts and the alerts sent
* :mod:`store.refusals`      refused callbacks: the credential-failure log, refused calls
* :mod:`store.categories`    failure categories (pure: names, priority, a call's category)

Durability: "stored" means on stable storage before the callback is answered.  SQLite
runs ``synchronous=FULL`` by default (the commit fsyncs the WAL); NORMAL is faster and
survives a killed process but not a power cut or an OS crash.  PostgreSQL commits with
``synchronous_commit=on``.  A callback the database cannot take within the busy timeout
goes to the spool, fsynced, and is replayed exactly once later; on PostgreSQL the server
cancels a statement still running a second after that (``statement_timeout``), so a stalled
statement does not keep a commit thread and a connection.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, NamedTuple, ParamSpec, TypeVar

from sqlalchemy import Engine

from .alerts import AlertState
from .connections import Database
from .engine import (
    SQLITE_SYNCHRONOUS,
    SYNCHRONOUS_LEVELS,
    enable_wal,
    long_statements,
    normalize_url,
)
from .errors import DB_ERRORS, StoreUnavailable
from .group_commit import CallbackWriter, CommitHooks
from .inserts import CallbackResult, Outcome
from .outbound import OutboundAttempts
from .queries import Queries
from .refusals import Refusals
from .replay import RETRY_FIRST_SECONDS, Replayer
from .retention import Housekeeping
from .rows import canonical_json, event_row
from .sessions import OperatorSessions
from .spool import Spool

__all__ = [
    "DB_ERRORS",
    "CallbackResult",
    "CommitHooks",
    "Durability",
    "Outcome",
    "Store",
    "StoreUnavailable",
    "canonical_json",
    "enable_wal",
    "event_row",
    "normalize_url",
]


P = ParamSpec("P")
R = TypeVar("R")


def forward(
    component: str, method: Callable[Concatenate[Any, P], R]
) -> Callable[Concatenate[Any, P], R]:
    """A Store method that calls ``method`` on the Store's ``component`` (same signature
    and docstring, for help() and type checkers)."""
    name = method.__name__

    @functools.wraps(method)
    def forwarded(self: Any, *args: P.args, **kwargs: P.kwargs) -> R:
        return getattr(getattr(self, component), name)(*args, **kwargs)  # type: ignore[no-any-return]

    return forwarded


# Per process.  A batch of plain callbacks is one statement and one round trip
# (EventInserts.one_statement), so one commit in flight keeps up, and fewer threads gather
# more callbacks per commit: 2 against 4 threads per worker gave 12-27% less PostgreSQL CPU
# per callback, and with each worker on CPUs of its own (gunicorn.conf.py), 1 against 2
# gave 8% more callbacks per second (bench/bench_callbacks.py, paired rounds: 5 of 6 won).
PG_COMMIT_THREADS = 1


class Durability(NamedTuple):
    """What a commit promises, as read back from the database itself."""

    backend: str  # "sqlite" or "postgresql"
    setting: str  # SQLite: PRAGMA synchronous (FULL, NORMAL...); PostgreSQL: synchronous_commit
    wal_fsync: bool  # SQLite FULL: the store fsyncs the WAL after each commit, outside the lock
    on_stable_storage: bool  # a commit is on disk before the callback is answered


class Store:
    """Durable event store over SQLite or PostgreSQL, with a local spool for outages."""

    def __init__(
        self,
        url: str,
        *,
        spool_path: str,
        busy_timeout: float = 5.0,
        rejected_limit: int = 1000,
        sqlite_synchronous: str = "FULL",
        commit_threads: int | None = None,
        spool_retry_seconds: float = RETRY_FIRST_SECONDS,
    ) -> None:
        self.url = normalize_url(url)
        backend = self.url.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
        synchronous = str(sqlite_synchronous).upper()
        if synchronous not in SQLITE_SYNCHRONOUS:
            raise ValueError(f"sqlite_synchronous must be one of {', '.join(SQLITE_SYNCHRONOUS)}")
        self.backend = backend
        self.is_sqlite = backend == "sqlite"
        self.sqlite_synchronous = synchronous
        self.busy_timeout = max(0.0, float(busy_timeout))
        self.rejected_limit = int(rejected_limit)
        self.spool = Spool(spool_path)
        self.spool_path = self.spool.path
        self._db = Database(
            self.url, busy_timeout=self.busy_timeout, sqlite_synchronous=synchronous
        )
        if commit_threads is None:
            # SQLite has one writer at a time; PostgreSQL could commit several batches at
            # once, but one at a time gathers more callbacks in each (PG_COMMIT_THREADS).
            commit_threads = 1 if self.is_sqlite else PG_COMMIT_THREADS
        self._writer = CallbackWriter(self._db, self.spool, self.busy_timeout, commit_threads)
        self._replayer = Replayer(self._db, self.spool, self._writer.inserts, self._writer.hooks)
        self._db.on_ready = lambda: self._replayer.auto_replay(force=True)
        self._writer.after_stored = self._replayer.after_stored
        self._writer.after_spooled = self._replayer.spooled
        self._replayer.retry_first = spool_retry_seconds
        self._replayer.answered = self._writer.database_answered
        self._queries = Queries(self._db, self.rejected_limit)
        self._outbound = OutboundAttempts(self._db)
        self._housekeeping = Housekeeping(self._db)
        self._sessions = OperatorSessions(self._db)
        self._alerts = AlertState(self._db)
        self._refusals = Refusals(self._db)

    def __repr__(self) -> str:
        return f"Store({self.url.render_as_string(hide_password=True)!r})"

    # --- engine, schema, durability ----------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether this process has made its engine (nothing connects before first use)."""
        return self._db.connected

    @property
    def engine(self) -> Engine:
        """This process's engine (made on first use), for tools and tests."""
        return self._db.state().engine

    @property
    def hooks(self) -> CommitHooks:
        """Calls into the commit thread, installed by tests (crash injection, pauses)."""
        return self._writer.hooks

    @property
    def replay_chunk(self) -> int:
        return self._replayer.chunk

    @replay_chunk.setter
    def replay_chunk(self, lines: int) -> None:
        self._replayer.chunk = int(lines)

    def migrate(self) -> None:
        """Create or upgrade the schema; safe to run any number of times, from any server."""
        self._db.migrate()

    def ensure_search_index(self) -> bool:
        """Create the text search index if an earlier migration could not; whether search
        is indexed (see store.search)."""
        from .search import ensure_index

        # CREATE INDEX reads every stored disconnect: minutes on a large store.
        with long_statements(), self.engine.begin() as conn:
            return ensure_index(conn)

    def long_statements(self) -> contextlib.AbstractContextManager[None]:
        """Within it, this thread's reads and writes (not callbacks) may run as long as they
        need: PostgreSQL's statement timeout (the busy timeout + 1 s) does not cut them off.
        For work that is slow by nature: exports, bulk loads."""
        return long_statements()

    def durability(self) -> Durability:
        """The durability of a callback commit, as this process's configuration makes it,
        read back from a connection of the engine callbacks are committed with (SQLite:
        PRAGMA synchronous, whose FULL is NORMAL plus our fsync of the WAL; PostgreSQL:
        synchronous_commit).  A read: it waits for no writer."""
        query = "PRAGMA synchronous" if self.is_sqlite else "SHOW synchronous_commit"
        try:
            setting = str(self._db.raw_read_one(query, {})[0])
        except DB_ERRORS as exc:
            raise StoreUnavailable(f"store unavailable: {exc}") from exc
        if self.is_sqlite:
            setting = SYNCHRONOUS_LEVELS.get(int(setting), setting)
            wal_fsync = self._db.wal_path is not None
            durable = wal_fsync or setting in ("FULL", "EXTRA")
            return Durability("sqlite", setting, wal_fsync, durable)
        durable = setting in ("on", "remote_write", "remote_apply")
        return Durability("postgresql", setting, False, durable)

    def leave_spool_alone(self) -> None:
        """Never replay the spool by itself in this process (a read-only command such as
        ``flask store status``); :meth:`replay_spool` still does when asked."""
        self._db.on_ready = lambda: None

    def dispose(self) -> None:
        """Stop this process's commit thread and close its connections (next use reconnects)."""
        self._writer.stop()
        self._replayer.join(timeout=30)
        self._db.dispose()

    def health(self) -> bool:
        """True when ``SELECT 1`` works; never raises."""
        return self._db.health()

    # --- callbacks ---------------------------------------------------------------------

    def record_callback(
        self, record: Mapping[str, Any], *, timeout: float | None = None
    ) -> CallbackResult:
        """Commit one accepted callback (or spool it) and say which: a :class:`CallbackResult`.

        ``(Outcome.inserted, None)``, ``(Outcome.duplicate, stored_reply)`` or
        ``(Outcome.spooled, None)``; the outcomes equal their plain strings.  Returns within
        ``timeout`` seconds (default: the busy timeout) plus a spool write, whatever the
        database does.  Raises StoreUnavailable when neither the database nor the spool
        can take it.
        """
        return self._writer.record(record, timeout)

    def commit_queue_depth(self) -> int:
        """Callbacks of this process waiting for (or in) a commit."""
        return self._writer.queue_depth()

    # --- forwarded as they are: see each module for the details -----------------------

    find_callback = forward("_writer", CallbackWriter.find)
    replay_spool = forward("_replayer", Replayer.replay)
    record_rejected = forward("_queries", Queries.record_rejected)
    rejected = forward("_queries", Queries.rejected)
    stored_callbacks = forward("_queries", Queries.stored_callbacks)
    events_for_call = forward("_queries", Queries.events_for_call)
    events_for_parent_call = forward("_queries", Queries.events_for_parent_call)
    events_for_conference = forward("_queries", Queries.events_for_conference)
    replies_naming = forward("_queries", Queries.replies_naming)
    disconnects = forward("_queries", Queries.disconnects)
    cause_counts = forward("_queries", Queries.cause_counts)
    failures_over_time = forward("_queries", Queries.failures_over_time)
    failures_by_bucket = forward("_queries", Queries.failures_by_bucket)
    record_outbound_attempt = forward("_outbound", OutboundAttempts.record_outbound_attempt)
    settle_outbound = forward("_outbound", OutboundAttempts.settle_outbound)
    outbound_for_call = forward("_outbound", OutboundAttempts.outbound_for_call)
    outbound_attempt = forward("_outbound", OutboundAttempts.outbound_attempt)
    unsettled_outbound = forward("_outbound", OutboundAttempts.unsettled_outbound)
    not_placed = forward("_outbound", OutboundAttempts.not_placed)
    last_not_placed = forward("_outbound", OutboundAttempts.last_not_placed)
    hit_rate_limit = forward("_housekeeping", Housekeeping.hit_rate_limit)
    rate_limit_hits = forward("_housekeeping", Housekeeping.rate_limit_hits)
    refund_rate_limit = forward("_housekeeping", Housekeeping.refund_rate_limit)
    start_session = forward("_sessions", OperatorSessions.start_session)
    session_active = forward("_sessions", OperatorSessions.session_active)
    revoke_sessions = forward("_sessions", OperatorSessions.revoke_sessions)
    purge = forward("_housekeeping", Housekeeping.purge)
    add_alert_counts = forward("_alerts", AlertState.add_alert_counts)
    alert_count = forward("_alerts", AlertState.alert_count)
    claim_alert = forward("_alerts", AlertState.claim_alert)
    finish_alert = forward("_alerts", AlertState.finish_alert)
    alert_firings = forward("_alerts", AlertState.alert_firings)
    prune_alerts = forward("_alerts", AlertState.prune_alerts)
    record_refusal = forward("_refusals", Refusals.record_refusal)
    credential_failures = forward("_refusals", Refusals.credential_failures)
    refusals_since = forward("_refusals", Refusals.refusals_since)
    refused_calls = forward("_refusals", Refusals.refused_calls)
    refused_call = forward("_refusals", Refusals.refused_call)
    refused_counts = forward("_refusals", Refusals.refused_counts)
    refused_over_time = forward("_refusals", Refusals.refused_over_time)
    category_counts = forward("_queries", Queries.category_counts)
    call_failures = forward("_queries", Queries.call_failures)
    categories_over_time = forward("_queries", Queries.categories_over_time)
