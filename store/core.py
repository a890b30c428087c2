"""The Store: durable callback events, the spool, and the small tables other features share.

One code path for SQLite (the embedded default) and PostgreSQL, in SQLAlchemy Core.

* Nothing connects at construction.  Each process creates one pooled engine on first use
  and creates a new one when its pid changes (gunicorn forks workers after loading the app).
* The first use in a process migrates the schema (a read when it is current) and replays
  the spool.
* The callback hot path (:meth:`Store.record_callback`) runs statements compiled once per
  Store on a DBAPI connection, with no per-request setup.  Callbacks that arrive together
  are committed together in one transaction (group commit, see :class:`_Group`).  On
  SQLite that connection is one per process, taken in turn (see :meth:`Store._hot`); on
  PostgreSQL it is a pooled one.  Everything else goes through SQLAlchemy Connections.
* SQLite: WAL, ``busy_timeout``, ``synchronous`` (FULL by default), ``foreign_keys=ON`` on
  every connection; the driver's own transaction handling is off and every write
  transaction starts with ``BEGIN IMMEDIATE`` (a deferred transaction that reads first
  can fail at once with "database is locked" in WAL mode; IMMEDIATE waits for the busy
  timeout).  PostgreSQL: ``lock_timeout`` plays the part of the busy timeout.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    literal_column,
    select,
    text,
    union,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url

from .schema import (
    KEY_CHARS,
    MIGRATIONS,
    SCHEMA_VERSION,
    disconnect_rollup,
    disconnect_totals,
    disconnects,
    events,
    operator_sessions,
    outbound_calls,
    rate_limits,
    rejected_requests,
    schema_version,
)
from .spool import Spool

try:  # the PostgreSQL driver is optional for a SQLite-only install
    import psycopg

    _DRIVER_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error)
    _LINE_ERRORS: tuple[type[Exception], ...] = (
        sqlite3.DataError,
        sqlite3.IntegrityError,
        psycopg.DataError,
        psycopg.IntegrityError,
    )
except ImportError:  # pragma: no cover
    _DRIVER_ERRORS = (sqlite3.Error,)
    _LINE_ERRORS = (sqlite3.DataError, sqlite3.IntegrityError)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Errors that mean "the database cannot take this now" (the spool takes it instead).
DB_ERRORS: tuple[type[BaseException], ...] = (sa_exc.SQLAlchemyError, OSError, *_DRIVER_ERRORS)

REJECTED_BODY_BYTES = 2048
REJECTED_REASON_CHARS = 1000
REPLAY_CHUNK = 500  # spooled lines per replay transaction
SYNC_REPLAY_BYTES = 1 << 20  # larger spools replay in a background thread
SETUP_RETRY_SECONDS = 1.0  # hot path: how long to wait before trying to migrate again
AUTO_REPLAY_RETRY_SECONDS = 5.0
GROUP_MAX = 64  # callbacks per group-commit transaction
GROUP_WAIT_MARGIN = 10.0  # seconds past twice the busy timeout before a waiter spools
SPOOL_CHECK_SECONDS = 1.0
# SQLite copies the WAL back into the database (a checkpoint) inside whichever commit
# finds it longer than this many pages; the default, 1000, made every ~90th group commit
# of callbacks a slow one.  With 4000 (a WAL of up to 16 MB) the pages that every commit
# rewrites (the table's last page, page 1) are copied back 4 times less often: measured
# 5-15% more callbacks per second.
WAL_AUTOCHECKPOINT_PAGES = 4000
RATE_LIMIT_PRUNE_SECONDS = 60.0
PURGE_BATCH = 5000
MAX_PAGE = 1000
PG_MIGRATION_LOCK = 0x62_77_5F_73_74_6F_72_65  # pg_advisory_xact_lock key ("bw_store")
UNSETTLED_OUTCOMES = ("pending", "unknown")
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_INT32 = 2**31

EVENT_COLUMNS = tuple(c.name for c in events.columns if c.name != "id")
_EVENT_KEYS = (
    "event_type",
    "call_id",
    "conference_id",
    "parent_call_id",
    "from_number",
    "to_number",
    "cause",
)
_EVENT_TEXT = (
    "event_time",
    "direction",
    "tag",
    "error_message",
    "reply_body",
    "reply_content_type",
    "error_detail",
)


class StoreUnavailable(RuntimeError):
    """The database cannot be used (and, for callbacks, neither can the spool): answer 503."""


# --- value normalisation -----------------------------------------------------------------


def _text(value: Any, limit: int | None = None) -> str | None:
    """A string every backend accepts: no NUL, valid UTF-8, optionally cut to ``limit``."""
    if value is None:
        return None
    out: str = value if isinstance(value, str) else str(value)
    if "\x00" in out:  # PostgreSQL text cannot hold NUL
        out = out.replace("\x00", "\ufffd")
    if not out.isascii():
        try:
            out.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates, e.g. from "\ud800" in JSON
            out = out.encode("utf-8", "replace").decode("utf-8")
    if limit is not None and len(out) > limit:
        out = out[:limit]
    return out


def _key(value: Any) -> str | None:
    """An indexed text value (cut to KEY_CHARS so an insert can never fail on its size)."""
    return _text(value, KEY_CHARS)


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if -_INT32 <= number < _INT32 else None


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, no NaN/Infinity (stored as null), valid UTF-8."""
    try:
        out = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except ValueError:
        return canonical_json(_finite(value))
    if not out.isascii():
        try:
            out.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: keep them, escaped
            out = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return out


def event_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """The ``events`` row for a callback record (also accepts an earlier row, from the spool)."""
    payload = record.get("payload")
    payload_text = _text(payload) if isinstance(payload, str) else canonical_json(payload)
    assert payload_text is not None
    row: dict[str, Any] = {name: _key(record.get(name)) for name in _EVENT_KEYS}
    row.update((name, _text(record.get(name))) for name in _EVENT_TEXT)
    received_at = _float(record.get("received_at"))
    row.update(
        received_at=time.time() if received_at is None else received_at,
        route=_key(record.get("route")) or "",
        method=_text(record.get("method"), 16) or "POST",
        error_id=_key(record.get("error_id")),
        sip_response_code=_int(record.get("sip_response_code")),
        payload=payload_text,
        payload_hash=_key(record.get("payload_hash"))
        or hashlib.sha256(payload_text.encode("utf-8")).hexdigest(),
        reply_status=_int(record.get("reply_status")) or 0,
        latency_ms=_float(record.get("latency_ms")),
    )
    return row


def _writer_lock_path(url: URL) -> str | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database + ".writers"


def hour_bucket(epoch: float) -> int:
    return int(epoch // 3600) * 3600


def enable_wal(cursor: Any, busy_timeout: float) -> None:
    """``PRAGMA journal_mode = WAL``, waiting up to ``busy_timeout`` for other connections.

    Switching a database to WAL needs it to itself, and SQLite answers "database is
    locked" at once instead of calling the busy handler: when several workers open a new
    file together, all but one failed to start (seen in the tests, about 1 in 20).
    """
    deadline = time.monotonic() + busy_timeout
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def normalize_url(url: str | URL) -> URL:
    """postgres://, postgresql:// and postgresql+psycopg:// all mean psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql", "postgres+psycopg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _event_dict(row: Mapping[Any, Any]) -> dict[str, Any]:
    item = dict(row)
    try:
        item["payload"] = json.loads(item["payload"])
    except (TypeError, ValueError):
        pass
    return item


def _reply_dict(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"reply_status": row[0], "reply_body": row[1], "reply_content_type": row[2]}


def _line_specific(exc: BaseException) -> bool:
    """An error caused by one spooled line (bad data), not by the database being away."""
    if isinstance(exc, sa_exc.StatementError):
        exc = exc.orig or exc
    return isinstance(exc, (*_LINE_ERRORS, TypeError, ValueError, KeyError))


def _sqlite_begin(conn: Connection) -> None:
    """SQLAlchemy's documented pysqlite recipe: we emit BEGIN, the driver does not."""
    write = conn.get_execution_options().get("store_write")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


# This process's id, kept current across fork: os.getpid() is a system call, and the hot
# path asks several times per callback whether it has been forked.
_PROCESS = {"pid": os.getpid()}
os.register_at_fork(after_in_child=lambda: _PROCESS.update(pid=os.getpid()))


def _pid() -> int:
    return _PROCESS["pid"]


class _Pending:
    """One callback row waiting in a commit group."""

    __slots__ = ("done", "error", "lead", "outcome", "row")

    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row
        self.done = threading.Lock()
        self.done.acquire()  # released when the outcome is set, or to make this one lead
        self.lead = False
        self.outcome: tuple[str, dict[str, Any] | None] | None = None
        self.error: StoreUnavailable | None = None

    def result(self) -> tuple[str, dict[str, Any] | None]:
        if self.error is not None:
            raise self.error
        if self.outcome is None:  # the leader failed without a word: never acknowledge
            raise StoreUnavailable("the commit group ended without storing this callback")
        return self.outcome


class _Group:
    """The callbacks of one process waiting to be committed, and who leads the next commit.

    Classic group commit without a thread of our own: the first caller to find nobody
    leading commits everything queued (itself included) in one transaction, then hands
    the lead to the oldest caller still waiting, or stands down when none is.  Under load a
    batch holds every callback that arrived during the previous commit, so the per-commit
    cost (SQLite's WAL write, PostgreSQL's round trips and flush) is shared; alone, a
    caller commits at once as before.
    """

    def __init__(self) -> None:
        self.pid = _pid()
        self.lock = threading.Lock()
        self.queue: list[_Pending] = []
        self.leading = False

    def join(self, pending: _Pending) -> bool:
        """Queue ``pending``; True when the caller must lead now."""
        with self.lock:
            self.queue.append(pending)
            if self.leading:
                return False
            self.leading = True
            return True

    def withdraw(self, pending: _Pending) -> bool:
        """Take a caller that gave up waiting out of the queue (False: too late for that)."""
        with self.lock:
            if pending.lead or not any(p is pending for p in self.queue):
                return False
            self.queue.remove(pending)
            return True

    def take(self, limit: int) -> list[_Pending]:
        with self.lock:
            batch = self.queue[:limit]
            del self.queue[:limit]
            return batch

    def hand_over(self, batch: list[_Pending]) -> None:
        """Wake the batch's callers, and make the oldest waiting caller the next leader."""
        with self.lock:
            if self.queue:
                successor = self.queue[0]
                successor.lead = True
                successor.done.release()
            else:
                self.leading = False
        for pending in batch:
            if not pending.lead:
                pending.done.release()


@dataclass
class _State:
    """One process's engine (re-created after a fork)."""

    pid: int
    engine: Engine
    writer: Engine  # the same pool; SQLite transactions begin IMMEDIATE
    ready: bool = False  # schema checked in this process
    # SQLite: this process's one connection for writes (see _hot).
    hot: sqlite3.Connection | None = None


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
    ) -> None:
        self.url = normalize_url(url)
        backend = self.url.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
        self.backend = backend
        self.is_sqlite = backend == "sqlite"
        self.spool = Spool(spool_path)
        self.spool_path = self.spool.path
        self.busy_timeout = max(0.0, float(busy_timeout))
        self.rejected_limit = int(rejected_limit)
        synchronous = str(sqlite_synchronous).upper()
        if synchronous not in _SYNCHRONOUS:
            raise ValueError(f"sqlite_synchronous must be one of {', '.join(_SYNCHRONOUS)}")
        self.sqlite_synchronous = synchronous
        self.replay_chunk = REPLAY_CHUNK
        self._insert = sqlite.insert if self.is_sqlite else postgresql.insert
        self._lock = threading.Lock()
        self._lock_pid = os.getpid()
        # SQLite has one writer at a time and its busy handler waits by sleeping (1, 2, 5,
        # 10 ms...), which wastes most of the time when several threads and workers write
        # all the time.  So our writers queue instead: the threads of one process on a lock,
        # the processes on an flock of a file beside the database (woken at once by the
        # kernel).  Anything else holding the database still meets SQLite's busy timeout.
        self._write_turn = threading.Lock()
        self._turn_path = _writer_lock_path(self.url) if self.is_sqlite else None
        self._turn_fd: int | None = None
        self._turn_pid = 0
        self._state: _State | None = None
        self._sql: dict[str, str] = {}
        self._next_setup = 0.0
        self._replay_pending = False
        # Test-only fault injection (reliability rows F2/F3): see crash_if_armed().
        self._crash_file = os.environ.get("STORE_TEST_CRASH_FILE")
        self._next_auto_replay = 0.0
        self._replay_thread: threading.Thread | None = None
        self._next_rate_prune = 0.0
        self._group = _Group()
        self._next_spool_check = 0.0

    def __repr__(self) -> str:
        return f"Store({self.url.render_as_string(hide_password=True)!r})"

    # --- engine and schema -----------------------------------------------------------------

    def _current(self) -> _State:
        state = self._state
        pid = _pid()
        if state is not None and state.pid == pid:
            return state
        if self._lock_pid != pid:
            # A lock copied through fork may be held by a thread that does not exist here.
            self._lock = threading.Lock()
            self._write_turn = threading.Lock()
            self._turn_fd = None  # the parent's descriptor shares its lock: open our own
            self._lock_pid = pid
        with self._lock:
            state = self._state
            if state is not None and state.pid == pid:
                return state
            if state is not None:
                # The parent's connections belong to the parent: drop them without closing.
                state.engine.dispose(close=False)
            engine = self._create_engine()
            state = _State(pid, engine, engine.execution_options(store_write=True))
            self._state = state
            return state

    def _create_engine(self) -> Engine:
        timeout = max(self.busy_timeout, 1.0)
        if self.is_sqlite:
            database = self.url.database or ""
            if database and not database.startswith("file:") and database != ":memory:":
                with contextlib.suppress(OSError):
                    os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
            engine = create_engine(
                self.url,
                paramstyle="named",
                connect_args={"timeout": self.busy_timeout, "check_same_thread": False},
                pool_timeout=timeout,
            )
            event.listen(engine, "connect", self._sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
        else:
            engine = create_engine(
                self.url,
                connect_args={"connect_timeout": max(2, math.ceil(self.busy_timeout))},
                pool_timeout=timeout,
            )
            event.listen(engine, "connect", self._pg_connect)
        if not self._sql:
            self._sql = self._compile(engine)
        return engine

    def _sqlite_connect(self, dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            enable_wal(cursor, self.busy_timeout)
            cursor.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
            cursor.execute(f"PRAGMA synchronous = {self.sqlite_synchronous}")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    def _pg_connect(self, dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {max(1, int(self.busy_timeout * 1000))}")
        dbapi_connection.commit()

    def _compile(self, engine: Engine) -> dict[str, str]:
        """The hot-path statements, compiled once for this dialect."""
        ins = self._insert
        insert_event_plain = (
            ins(events)
            .values({name: bindparam(name) for name in EVENT_COLUMNS})
            .on_conflict_do_nothing(index_elements=["route", "payload_hash"])
        )
        insert_event = insert_event_plain.returning(events.c.id)
        reply = select(
            events.c.reply_status, events.c.reply_body, events.c.reply_content_type
        ).where(
            events.c.route == bindparam("route"),
            events.c.payload_hash == bindparam("payload_hash"),
        )
        insert_disconnect = (
            ins(disconnects)
            .values({c.name: bindparam(c.name) for c in disconnects.columns})
            .on_conflict_do_nothing(index_elements=["event_id"])
        )
        bump = ins(disconnect_rollup).values(
            cause=bindparam("cause"),
            bucket_start=bindparam("bucket_start"),
            count=literal_column("1"),
        )
        bump = bump.on_conflict_do_update(
            index_elements=["cause", "bucket_start"],
            set_={"count": disconnect_rollup.c.count + literal_column("1")},
        )
        total = ins(disconnect_totals).values(cause=bindparam("cause"), count=literal_column("1"))
        total = total.on_conflict_do_update(
            index_elements=["cause"],
            set_={"count": disconnect_totals.c.count + literal_column("1")},
        )
        statements = {
            "insert_event": insert_event,
            "insert_event_plain": insert_event_plain,
            "reply": reply,
            "insert_disconnect": insert_disconnect,
            "bump_rollup": bump,
            "bump_total": total,
        }
        return {
            name: str(stmt.compile(dialect=engine.dialect)) for name, stmt in statements.items()
        }

    def _ready(self, *, replay: bool = True, throttle: bool = False) -> _State:
        """The engine, with the schema checked once per process (and the spool replayed)."""
        state = self._current()
        if state.ready or (throttle and time.monotonic() < self._next_setup):
            return state
        fresh = False
        with self._lock:
            if not state.ready:
                try:
                    self._migrate(state)
                except Exception:
                    self._next_setup = time.monotonic() + SETUP_RETRY_SECONDS
                    raise
                state.ready = fresh = True
        if fresh and replay:
            self._auto_replay(force=True)
        return state

    def migrate(self) -> None:
        """Create or upgrade the schema; safe to run any number of times, from any server."""
        state = self._current()
        try:
            self._migrate(state)
        except DB_ERRORS as exc:
            raise StoreUnavailable(f"cannot migrate the store: {exc}") from exc
        state.ready = True

    def _schema_version(self, state: _State) -> int:
        try:
            with state.engine.connect() as conn:
                return int(conn.execute(select(func.max(schema_version.c.version))).scalar() or 0)
        except sa_exc.DBAPIError:
            return 0  # no table yet (or no database: the write below will say so)

    def _migrate(self, state: _State) -> None:
        if self._schema_version(state) >= SCHEMA_VERSION:
            return  # the common case: a read, no write lock
        with state.writer.begin() as conn:
            if not self.is_sqlite:
                # Two servers migrating at once: the second waits, then finds nothing to do.
                conn.execute(text("SET LOCAL lock_timeout = '60s'"))
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
            schema_version.create(conn, checkfirst=True)
            current = int(conn.execute(select(func.max(schema_version.c.version))).scalar() or 0)
            for version in sorted(MIGRATIONS):
                if version > current:
                    MIGRATIONS[version](conn)
                    conn.execute(
                        insert(schema_version), {"version": version, "applied_at": time.time()}
                    )
                    log.info("store schema migrated to version %d", version)

    def dispose(self) -> None:
        """Close this process's pooled connections (the next use reconnects)."""
        thread = self._replay_thread
        if thread is not None:
            thread.join(timeout=30)
        state = self._state
        self._state = None
        if state is not None and state.pid == _pid():
            with self._write_turn:  # not while one of our writers uses it
                self._drop_hot(state)
            state.engine.dispose()

    # --- raw hot-path helpers --------------------------------------------------------------

    def _raw_failed(self, state: _State, pooled: Any, exc: BaseException) -> bool:
        """Roll back after an error; True when the connection was broken (worth one retry)."""
        with contextlib.suppress(Exception):
            pooled.rollback()
        broken = False
        if isinstance(exc, _DRIVER_ERRORS):
            with contextlib.suppress(Exception):
                broken = bool(
                    state.engine.dialect.is_disconnect(
                        exc,  # type: ignore[arg-type]
                        pooled.dbapi_connection,
                        None,
                    )
                )
        if broken:
            with contextlib.suppress(Exception):
                pooled.invalidate(exc)
            # The server probably restarted: every pooled connection is stale.
            state.engine.dispose()
        return broken

    @contextlib.contextmanager
    def _writer_turn(self) -> Iterator[None]:
        """On SQLite, wait (up to the busy timeout) for this process's turn to write."""
        if not self.is_sqlite:
            yield
            return
        if not self._write_turn.acquire(timeout=self.busy_timeout):
            raise sqlite3.OperationalError("database is locked (writers queued past the timeout)")
        try:
            fd = self._turn_file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)  # held by our writers only, one transaction each
            try:
                yield
            finally:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._write_turn.release()

    def _turn_file(self) -> int | None:
        """This process's descriptor of the writers' lock file (None: cannot have one)."""
        if self._turn_path is None:
            return None
        if self._turn_fd is None or self._turn_pid != _pid():
            try:
                self._turn_fd = os.open(self._turn_path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                return None  # e.g. the folder is gone: SQLite will say so and we spool
            self._turn_pid = os.getpid()
        return self._turn_fd

    def _raw_write(self, state: _State, work: Callable[[Any], T]) -> T:
        """Run ``work(cursor)`` in one write transaction on a pooled DBAPI connection."""
        with self._writer_turn():
            return self._raw_write_now(state, work)

    def _raw_write_now(self, state: _State, work: Callable[[Any], T]) -> T:
        # SQLite: the process's one write connection (our writers' turn is its turn);
        # PostgreSQL: a pooled one.
        conn: Any = self._hot(state) if self.is_sqlite else state.engine.raw_connection()
        failed = self._hot_failed if self.is_sqlite else self._raw_failed
        try:
            cursor = conn.cursor()
            try:
                if self.is_sqlite:
                    cursor.execute("BEGIN IMMEDIATE")
                result = work(cursor)
                conn.commit()
                return result
            finally:
                cursor.close()
        except BaseException as exc:
            if failed(state, conn, exc):
                raise _Broken(str(exc)) from exc
            raise
        finally:
            if not self.is_sqlite:
                conn.close()  # back to the pool

    def _raw_read_one(self, state: _State, sql: str, params: Mapping[str, Any]) -> Any:
        """One row of a single-statement read, in autocommit (no BEGIN/ROLLBACK round trips)."""
        pooled = state.engine.raw_connection()
        try:
            dbapi: Any = pooled.driver_connection
            if not self.is_sqlite:
                dbapi.autocommit = True
            try:
                cursor = dbapi.cursor()
                try:
                    cursor.execute(sql, params)
                    return cursor.fetchone()
                finally:
                    cursor.close()
            finally:
                if not self.is_sqlite:
                    with contextlib.suppress(Exception):
                        dbapi.autocommit = False
        except BaseException as exc:
            if self._raw_failed(state, pooled, exc):
                raise _Broken(str(exc)) from exc
            raise
        finally:
            pooled.close()

    # SQLite: every connection keeps its own page cache, and throws it away whenever
    # another connection has committed.  With a pool, each callback's insert (and the
    # duplicate check it then had) found a cold cache and read the index pages again
    # (measured: the store cost the callback route a third of its throughput).  So each
    # process writes on one connection, in its writers' turn: its cache stays warm across
    # commits.  It is taken from the pool once and detached, so the pool never hands it
    # to another.

    def _hot(self, state: _State) -> sqlite3.Connection:
        """This process's write connection (the caller holds the writers' turn)."""
        conn = state.hot
        if conn is None:
            pooled = state.engine.raw_connection()
            conn = pooled.driver_connection
            pooled.detach()  # ours for the life of the process (the connect hook has run)
            state.hot = conn
        return conn

    def _drop_hot(self, state: _State) -> None:
        conn, state.hot = state.hot, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _hot_failed(self, state: _State, conn: sqlite3.Connection, exc: BaseException) -> bool:
        """Roll back after an error; True (and a fresh connection next time) when broken."""
        with contextlib.suppress(Exception):
            conn.rollback()
        broken = False
        if isinstance(exc, _DRIVER_ERRORS):
            with contextlib.suppress(Exception):
                broken = bool(state.engine.dialect.is_disconnect(exc, conn, None))  # type: ignore[arg-type]
        if broken:
            self._drop_hot(state)
        return broken

    def _insert_event(self, cursor: Any, row: Mapping[str, Any]) -> int | None:
        """INSERT ... ON CONFLICT DO NOTHING; the new id, or None for a duplicate.

        A new disconnect also gets its narrow ``disconnects`` row and +1 in the hourly rollup
        and the totals, in the caller's transaction, so the counts match the stored events.
        """
        if self.is_sqlite:
            # No RETURNING: fetching its row would step the statement (and let go of the
            # GIL) once more; rowcount and lastrowid say the same.
            cursor.execute(self._sql["insert_event_plain"], row)
            if cursor.rowcount != 1:
                return None
            event_id = int(cursor.lastrowid)
        else:
            cursor.execute(self._sql["insert_event"], row)
            found = cursor.fetchall()
            if not found:
                return None
            event_id = int(found[0][0])
        if row["event_type"] == "disconnect":
            cause = row["cause"] or "unknown"
            cursor.execute(
                self._sql["insert_disconnect"],
                {
                    "event_id": event_id,
                    "received_at": row["received_at"],
                    "cause": cause,
                    "from_number": row["from_number"],
                    "to_number": row["to_number"],
                    "error_id": row["error_id"],
                    "tag": _key(row["tag"]),
                },
            )
            cursor.execute(
                self._sql["bump_rollup"],
                {"cause": cause, "bucket_start": hour_bucket(row["received_at"])},
            )
            cursor.execute(self._sql["bump_total"], {"cause": cause})
        return event_id

    def _store_event(
        self, cursor: Any, row: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any] | None]:
        if self._insert_event(cursor, row) is not None:
            return "inserted", None
        # A concurrent (or earlier) copy won: answer what it answered.
        cursor.execute(
            self._sql["reply"], {"route": row["route"], "payload_hash": row["payload_hash"]}
        )
        return "duplicate", _reply_dict(cursor.fetchone())

    # --- callbacks -------------------------------------------------------------------------

    def find_callback(self, route: str, payload_hash: str) -> dict[str, Any] | None:
        """The stored reply of an earlier identical delivery, or None.

        The callback route does not ask before each handler call (record_callback's unique
        key answers a duplicate with its stored reply); this is for tools and tests.  When
        the database is unavailable this returns None (logged).
        """
        params = {"route": _key(route) or "", "payload_hash": _key(payload_hash) or ""}
        for attempt in (0, 1):
            try:
                state = self._ready(throttle=True)
                return _reply_dict(self._raw_read_one(state, self._sql["reply"], params))
            except _Broken as exc:
                if attempt:
                    log.warning("store unavailable for a duplicate check: %s", exc)
                else:
                    log.info("store connection was broken, retrying: %s", exc)
            except DB_ERRORS as exc:
                log.warning("store unavailable for a duplicate check: %s", exc)
                return None
        return None

    def record_callback(self, record: Mapping[str, Any]) -> tuple[str, dict[str, Any] | None]:
        """Commit one accepted callback (or spool it).  See the module docstring.

        Returns ("inserted", None), ("duplicate", stored_reply) or ("spooled", None); raises
        StoreUnavailable when neither the database nor the spool can take it.

        Group commit: the callbacks that arrive while a write transaction is running are
        committed together in the next one, by whichever request thread leads (see
        :class:`_Group`).  Each caller still returns only after its own row is committed.
        """
        row = event_row(record)
        mine = _Pending(row)
        group = self._group_for_process()
        if not group.join(mine):
            # Someone else leads: wait for our outcome, or for our turn to lead.
            while not mine.done.acquire(timeout=self.busy_timeout * 2 + GROUP_WAIT_MARGIN):
                if group.withdraw(mine):
                    # The leader is stuck (another process holding the database?): spool
                    # our row ourselves rather than keep Bandwidth waiting.
                    self._spool_row(row, TimeoutError("group commit did not finish in time"))
                    return "spooled", None
                # Already in a transaction, or just made leader: wait for that.
            if not mine.lead:
                return mine.result()
        batch = group.take(GROUP_MAX)
        try:
            stored = self._commit_batch(batch)
        finally:
            group.hand_over(batch)
        # The database took rows again: the time to replay what was spooled while it did not.
        if stored and (self._replay_pending or self._spool_may_exist()):
            self._auto_replay()
        return mine.result()

    def _group_for_process(self) -> _Group:
        group = self._group
        if group.pid != _pid():  # forked: the parent's queue and lock are not ours
            group = self._group = _Group()
        return group

    def _commit_batch(self, batch: list[_Pending]) -> bool:
        """One write transaction for the whole batch; on failure each row on its own.

        True when the database stored (or recognised) at least one row.
        """
        if len(batch) > 1:
            try:
                state = self._ready(throttle=True)
                results = self._raw_write(
                    state, lambda cursor: [self._crashing_store(cursor, p.row) for p in batch]
                )
            except Exception as exc:
                log.info("group commit of %d callbacks failed, one by one: %s", len(batch), exc)
            else:
                for pending, result in zip(batch, results, strict=True):
                    pending.outcome = result
                self._crash_after_commit(batch)
                return True
        stored = False
        for pending in batch:
            try:
                pending.outcome = self._record_one(pending.row)
                stored = stored or pending.outcome[0] != "spooled"
            except StoreUnavailable as exc:
                pending.error = exc
        self._crash_after_commit(batch)
        return stored

    def _crash_after_commit(self, batch: list[_Pending]) -> None:
        if self._crash_file:
            for pending in batch:
                self.crash_if_armed("after-commit", pending.row)

    def _record_one(self, row: Mapping[str, Any]) -> tuple[str, dict[str, Any] | None]:
        """One row in its own transaction, one retry on a broken connection, else spooled."""
        for attempt in (0, 1):
            try:
                state = self._ready(throttle=True)
                return self._raw_write(state, lambda cursor: self._crashing_store(cursor, row))
            except _Broken as exc:
                if attempt == 0:
                    log.info("store connection was broken, retrying: %s", exc)
                    continue  # a stale connection: once more on a fresh one
                self._spool_row(row, exc.__cause__ or exc)
                return "spooled", None
            except Exception as exc:  # anything: the event must not be lost
                self._spool_row(row, exc)
                return "spooled", None
        raise AssertionError("unreachable")  # pragma: no cover

    def _spool_may_exist(self) -> bool:
        """Whether to look for a spool to replay: at most once a second (a stat call)."""
        now = time.monotonic()
        if now < self._next_spool_check:
            return False
        self._next_spool_check = now + SPOOL_CHECK_SECONDS
        return os.path.exists(self.spool.path)

    def _crashing_store(self, cursor: Any, row: Mapping[str, Any]) -> tuple[str, dict | None]:
        result = self._store_event(cursor, row)
        self.crash_if_armed("before-commit", row)
        return result

    def crash_if_armed(self, point: str, row: Mapping[str, Any]) -> None:
        """Kill this process at ``point`` once, for crash tests; a no-op in production.

        Armed only when STORE_TEST_CRASH_FILE names a file holding "<point> <callId>": the
        file is removed first, so the redelivery after the crash goes through.
        """
        if not self._crash_file or not os.path.exists(self._crash_file):
            return
        try:
            with open(self._crash_file) as armed:
                want_point, want_call = armed.read().split()
        except (OSError, ValueError):
            return
        if want_point == point and want_call == row.get("call_id"):
            os.unlink(self._crash_file)
            os._exit(86)

    def _spool_row(self, row: Mapping[str, Any], cause: BaseException) -> None:
        if isinstance(cause, DB_ERRORS):
            log.warning("store unavailable, spooling the event: %s", cause)
        else:
            log.error("unexpected store error, spooling the event", exc_info=cause)
        try:
            line = json.dumps({"v": 1, "kind": "callback", "row": dict(row)}, separators=(",", ":"))
            self.spool.append(line)
        except Exception as exc:
            log.error("spool %s not writable: %s", self.spool.path, exc)
            raise StoreUnavailable(
                f"database unavailable ({cause.__class__.__name__}) and spool not writable: {exc}"
            ) from exc

    # --- spool replay ----------------------------------------------------------------------

    def replay_spool(self) -> int:
        """Store every spooled event exactly once; returns how many were new.

        Raises StoreUnavailable when the database is still unavailable (the spool stays).
        """
        try:
            self._ready(replay=False)
            return self._replay()
        except StoreUnavailable:
            raise
        except DB_ERRORS as exc:
            self._replay_pending = True
            raise StoreUnavailable(f"cannot replay the spool: {exc}") from exc

    def _auto_replay(self, *, force: bool = False) -> None:
        if not force and time.monotonic() < self._next_auto_replay:
            return
        if not self.spool.pending():
            self._replay_pending = False
            return
        size = 0
        for path in (self.spool.path, self.spool.replaying_path):
            with contextlib.suppress(OSError):
                size += os.path.getsize(path)
        if size > SYNC_REPLAY_BYTES:
            thread = self._replay_thread
            if thread is None or not thread.is_alive():
                thread = threading.Thread(
                    target=self._replay_quietly, name="store-spool-replay", daemon=True
                )
                self._replay_thread = thread
                thread.start()
            return
        self._replay_quietly()

    def _replay_quietly(self) -> None:
        try:
            replayed = self._replay()
        except Exception as exc:
            self._replay_pending = True
            self._next_auto_replay = time.monotonic() + AUTO_REPLAY_RETRY_SECONDS
            log.warning("spool replay failed (will retry): %s", exc)
        else:
            if replayed:
                log.info("replayed %d spooled event(s)", replayed)

    def _replay(self) -> int:
        total = 0
        with self.spool.replaying() as mine:
            if not mine:  # another worker is replaying right now
                self._replay_pending = True
                self._next_auto_replay = time.monotonic() + SETUP_RETRY_SECONDS
                return 0
            for _ in range(3):  # the leftover batch, then what arrived meanwhile
                path = self.spool.claim()
                if path is None:
                    break
                total += self._replay_file(path)
                self._discard_spool_file(path)
            self._replay_pending = self.spool.pending()
        return total

    def _discard_spool_file(self, path: str) -> None:
        self.spool.discard(path)

    def _replay_file(self, path: str) -> int:
        state = self._current()
        inserted = 0
        batch: list[tuple[bytes, dict[str, Any]]] = []
        with open(path, "rb") as lines:
            for line in lines:
                if not line.strip():
                    continue
                row = _spooled_row(line)
                if row is None:
                    log.error("unreadable spool line moved to %s", self.spool.bad_path)
                    self.spool.quarantine(line)
                    continue
                batch.append((line, row))
                if len(batch) >= self.replay_chunk:
                    inserted += self._replay_batch(state, batch)
                    batch = []
        if batch:
            inserted += self._replay_batch(state, batch)
        return inserted

    def _insert_rows(self, cursor: Any, rows: list[dict[str, Any]]) -> int:
        return sum(self._insert_event(cursor, row) is not None for row in rows)

    def _insert_row(self, cursor: Any, row: dict[str, Any]) -> int:
        return int(self._insert_event(cursor, row) is not None)

    def _replay_batch(self, state: _State, batch: list[tuple[bytes, dict[str, Any]]]) -> int:
        """One transaction per batch; a line that can never be stored is set aside."""
        rows = [row for _, row in batch]
        try:
            return self._raw_write(state, lambda cursor: self._insert_rows(cursor, rows))
        except Exception as exc:
            cause = exc.__cause__ if isinstance(exc, _Broken) else exc
            if cause is None or not _line_specific(cause):
                raise
        inserted = 0
        for line, row in batch:
            try:
                inserted += self._raw_write(state, functools.partial(self._insert_row, row=row))
            except Exception as exc:
                if not _line_specific(exc):
                    raise
                log.error("spool line refused by the database (%s); moved aside", exc)
                self.spool.quarantine(line)
        return inserted

    # --- SQLAlchemy Connection helpers ----------------------------------------------------

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Connection]:
        try:
            state = self._ready()
            with state.engine.connect() as conn:
                yield conn
        except DB_ERRORS as exc:
            raise StoreUnavailable(f"store unavailable: {exc}") from exc

    @contextlib.contextmanager
    def _writing(self, *, throttle: bool = False) -> Iterator[Connection]:
        try:
            state = self._ready(throttle=throttle)
            with self._writer_turn(), state.writer.begin() as conn:
                yield conn
        except DB_ERRORS as exc:
            raise StoreUnavailable(f"store unavailable: {exc}") from exc

    # --- rejected requests ------------------------------------------------------------------

    def record_rejected(
        self,
        route: str,
        method: str,
        status: int,
        reason: str,
        body: bytes,
        remote_addr: str | None,
    ) -> None:
        """Log a refused request (bounded to ``rejected_limit`` rows); never raises."""
        if self.rejected_limit <= 0:
            return
        try:
            raw = bytes(body or b"")[:REJECTED_BODY_BYTES]
            row = {
                "received_at": time.time(),
                "route": _key(route),
                "method": _text(method, 16),
                "status": _int(status),
                "reason": _text(reason, REJECTED_REASON_CHARS),
                "body": _text(raw.decode("utf-8", errors="replace")),
                "remote_addr": _text(remote_addr, 64),
            }
            newest_kept = (
                select(rejected_requests.c.id)
                .order_by(rejected_requests.c.id.desc())
                .limit(1)
                .offset(bindparam("keep"))
                .scalar_subquery()
            )
            with self._writing(throttle=True) as conn:
                conn.execute(insert(rejected_requests), row)
                conn.execute(
                    delete(rejected_requests).where(rejected_requests.c.id <= newest_kept),
                    {"keep": self.rejected_limit},
                )
        except Exception:
            log.warning("could not log a rejected %s %s request", method, route, exc_info=True)

    def rejected(self, limit: int = 100, before_id: int | None = None) -> list[dict[str, Any]]:
        """Rejected requests, newest first (keyset pagination on id)."""
        query = select(rejected_requests).order_by(rejected_requests.c.id.desc())
        if before_id is not None:
            query = query.where(rejected_requests.c.id < int(before_id))
        query = query.limit(_page(limit))
        with self._reading() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    # --- reads ------------------------------------------------------------------------------

    def events_for_call(self, call_id: str) -> list[dict[str, Any]]:
        """Every stored callback of one call, in arrival order."""
        return self._events_where(events.c.call_id, call_id)

    def events_for_parent_call(self, parent_call_id: str) -> list[dict[str, Any]]:
        """The callbacks of every B-leg a call's <Transfer> created, in arrival order."""
        return self._events_where(events.c.parent_call_id, parent_call_id)

    def events_for_conference(self, conference_id: str) -> list[dict[str, Any]]:
        """Every stored callback that names this conference, in arrival order."""
        return self._events_where(events.c.conference_id, conference_id)

    def _events_where(self, column: Any, value: str) -> list[dict[str, Any]]:
        query = (
            select(events).where(column == _key(value)).order_by(events.c.received_at, events.c.id)
        )
        with self._reading() as conn:
            return [_event_dict(row) for row in conn.execute(query).mappings()]

    def disconnects(
        self,
        *,
        causes: list[str] | None = None,
        exclude_hangup: bool = True,
        since: float | None = None,
        until: float | None = None,
        number: str | None = None,
        tag: str | None = None,
        error_id: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Disconnect events, newest first; pass the last id as ``before_id`` for the next page.

        ``causes`` (when given) wins over ``exclude_hangup``; a missing cause is "unknown".
        ``since`` is inclusive, ``until`` exclusive; ``number`` matches from or to.
        """
        d = disconnects
        page = _page(limit)
        where: list[Any] = []
        if causes is not None:
            where.append(d.c.cause.in_([_key(c) for c in causes]))
        elif exclude_hangup:
            # A literal, so SQLite and PostgreSQL can use the partial index.
            where.append(d.c.cause != literal_column("'hangup'"))
        if since is not None:
            where.append(d.c.received_at >= float(since))
        if until is not None:
            where.append(d.c.received_at < float(until))
        if tag is not None:
            where += [d.c.tag == _key(tag), events.c.tag == _text(tag)]
        if error_id is not None:
            where.append(d.c.error_id == _key(error_id))
        if before_id is not None:
            where.append(d.c.event_id < int(before_id))
        joined = d.join(events, events.c.id == d.c.event_id)
        if number is None:
            # The page's ids come from the narrow table and its indexes alone; only those
            # rows are then read from the wide events table.
            ids = (
                select(d.c.event_id)
                .select_from(joined if tag is not None else d)
                .where(*where)
                .order_by(d.c.event_id.desc())
                .limit(page)
                .subquery()
            )
            query = select(events).join(ids, events.c.id == ids.c.event_id)
            query = query.order_by(events.c.id.desc())
        else:
            # One index-driven, limited walk per side (from, to), then the newest of both:
            # an OR here lets the planner scan every disconnect.  (SQLite without ANALYZE
            # statistics, as the store leaves it, always takes the number indexes here.)
            key = _key(number)
            sides = [
                select(d.c.event_id)
                .select_from(joined if tag is not None else d)
                .where(*where, column == key)
                .order_by(d.c.event_id.desc())
                .limit(page)
                .subquery()
                for column in (d.c.from_number, d.c.to_number)
            ]
            ids = union(*(select(side.c.event_id) for side in sides)).subquery()
            query = select(events).where(events.c.id.in_(select(ids.c.event_id)))
            query = query.order_by(events.c.id.desc())
        query = query.limit(page)
        with self._reading() as conn:
            return [_event_dict(row) for row in conn.execute(query).mappings()]

    def cause_counts(
        self, since: float | None = None, until: float | None = None
    ) -> dict[str, int]:
        """Disconnects per cause, from the rollups (never from the events).

        All time (no bounds) reads the per-cause totals.  With bounds the hourly rollup is
        summed: ``since`` includes its whole hour, ``until`` excludes hours starting at or
        after it.
        """
        if since is None and until is None:
            t = disconnect_totals
            query: Any = select(t.c.cause, t.c.count)
        else:
            r = disconnect_rollup
            query = select(r.c.cause, func.sum(r.c.count)).group_by(r.c.cause)
            query = _bucket_range(query, since, until)
        with self._reading() as conn:
            return {cause: int(total) for cause, total in conn.execute(query) if total}

    def failures_over_time(
        self,
        since: float | None = None,
        until: float | None = None,
        *,
        exclude_hangup: bool = True,
    ) -> list[tuple[int, str, int]]:
        """(hour bucket start, cause, count) from the rollup, oldest first."""
        r = disconnect_rollup
        query = select(r.c.bucket_start, r.c.cause, r.c.count).order_by(r.c.bucket_start, r.c.cause)
        query = _bucket_range(query, since, until)
        if exclude_hangup:
            query = query.where(r.c.cause != "hangup")
        with self._reading() as conn:
            return [(int(b), str(c), int(n)) for b, c, n in conn.execute(query)]

    # --- outbound calls ---------------------------------------------------------------------

    def record_outbound_attempt(self, attempt_id: str, request: Mapping[str, Any]) -> None:
        """Record an attempt before the request is sent (``request`` holds no secrets)."""
        now = time.time()
        stmt = self._insert(outbound_calls).values(
            attempt_id=_text(attempt_id),
            created_at=now,
            updated_at=now,
            request=canonical_json(dict(request)),
            outcome="pending",
        )
        with self._writing() as conn:
            conn.execute(stmt.on_conflict_do_nothing(index_elements=["attempt_id"]))

    def settle_outbound(
        self,
        attempt_id: str,
        outcome: str,
        call_id: str | None = None,
        error: str | None = None,
    ) -> None:
        """Record an attempt's outcome (e.g. created, failed, unknown); keeps a known callId."""
        now = time.time()
        stmt = self._insert(outbound_calls).values(
            attempt_id=_text(attempt_id),
            created_at=now,
            updated_at=now,
            request="{}",
            outcome=_text(outcome, 64),
            call_id=_key(call_id),
            error=_text(error),
            settled_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["attempt_id"],
            set_={
                "outcome": stmt.excluded.outcome,
                "call_id": func.coalesce(stmt.excluded.call_id, outbound_calls.c.call_id),
                "error": stmt.excluded.error,
                "updated_at": stmt.excluded.updated_at,
                "settled_at": stmt.excluded.settled_at,
            },
        )
        with self._writing() as conn:
            conn.execute(stmt)

    def outbound_for_call(self, call_id: str) -> dict[str, Any] | None:
        query = (
            select(outbound_calls)
            .where(outbound_calls.c.call_id == _key(call_id))
            .order_by(outbound_calls.c.created_at.desc())
            .limit(1)
        )
        return self._outbound_one(query)

    def outbound_attempt(self, attempt_id: str) -> dict[str, Any] | None:
        query = select(outbound_calls).where(outbound_calls.c.attempt_id == _text(attempt_id))
        return self._outbound_one(query)

    def unsettled_outbound(self, limit: int = 100) -> list[dict[str, Any]]:
        """Attempts still "pending" or settled as "unknown" (to reconcile), oldest first."""
        query = (
            select(outbound_calls)
            .where(outbound_calls.c.outcome.in_(UNSETTLED_OUTCOMES))
            .order_by(outbound_calls.c.created_at, outbound_calls.c.attempt_id)
            .limit(_page(limit))
        )
        with self._reading() as conn:
            return [_outbound_dict(row) for row in conn.execute(query).mappings()]

    def _outbound_one(self, query: Any) -> dict[str, Any] | None:
        with self._reading() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _outbound_dict(row)

    # --- rate limits ------------------------------------------------------------------------

    def hit_rate_limit(
        self, key: str, window_seconds: int, limit: int, now: float | None = None
    ) -> bool:
        """Count one hit on ``key`` in the current fixed window; False once over ``limit``.

        Atomic across threads, workers and servers sharing the database.
        """
        now = time.time() if now is None else float(now)
        window = max(1, int(window_seconds))
        start = int(now // window) * window
        bucket_key = str(key)
        if len(bucket_key) > KEY_CHARS:
            digest = hashlib.sha256(bucket_key.encode("utf-8", "replace")).hexdigest()
            bucket_key = bucket_key[: KEY_CHARS - 65] + ":" + digest
        stmt = self._insert(rate_limits).values(
            bucket_key=_text(bucket_key), window_start=start, hits=1, expires_at=start + window
        )
        upsert = stmt.on_conflict_do_update(
            index_elements=["bucket_key", "window_start"],
            set_={"hits": rate_limits.c.hits + 1},
        ).returning(rate_limits.c.hits)
        with self._writing() as conn:
            hits = int(conn.execute(upsert).scalar_one())
            if time.monotonic() >= self._next_rate_prune:
                self._next_rate_prune = time.monotonic() + RATE_LIMIT_PRUNE_SECONDS
                conn.execute(delete(rate_limits).where(rate_limits.c.expires_at < now))
        return hits <= limit

    def rate_limit_hits(self, key: str, window_seconds: int, now: float | None = None) -> int:
        """The hits ``hit_rate_limit`` has counted on ``key`` in the current window; counts
        nothing (a check before a credential is compared, without spending an attempt)."""
        now = time.time() if now is None else float(now)
        window = max(1, int(window_seconds))
        bucket_key = str(key)
        if len(bucket_key) > KEY_CHARS:
            digest = hashlib.sha256(bucket_key.encode("utf-8", "replace")).hexdigest()
            bucket_key = bucket_key[: KEY_CHARS - 65] + ":" + digest
        query = select(rate_limits.c.hits).where(
            rate_limits.c.bucket_key == _text(bucket_key),
            rate_limits.c.window_start == int(now // window) * window,
        )
        with self._reading() as conn:
            return int(conn.execute(query).scalar() or 0)

    # --- operator sessions ------------------------------------------------------------------

    def start_session(self, session_hash: str, operator: str, expires_at: float) -> None:
        """Record a dashboard login (and forget the ones that have expired)."""
        now = time.time()
        with self._writing() as conn:
            conn.execute(delete(operator_sessions).where(operator_sessions.c.expires_at < now))
            conn.execute(
                insert(operator_sessions).values(
                    session_hash=_text(session_hash),
                    operator=_text(operator),
                    created_at=now,
                    expires_at=float(expires_at),
                )
            )

    def session_active(self, session_hash: str) -> bool:
        """True while that login exists, has not expired and was not revoked."""
        query = select(operator_sessions.c.session_hash).where(
            operator_sessions.c.session_hash == _text(session_hash),
            operator_sessions.c.revoked_at.is_(None),
            operator_sessions.c.expires_at > time.time(),
        )
        with self._reading() as conn:
            return conn.execute(query).first() is not None

    def revoke_sessions(self, session_hash: str | None = None) -> int:
        """End one login (``session_hash``) or, with None, every login; returns how many."""
        stmt = operator_sessions.update().where(operator_sessions.c.revoked_at.is_(None))
        if session_hash is not None:
            stmt = stmt.where(operator_sessions.c.session_hash == _text(session_hash))
        with self._writing() as conn:
            return int(conn.execute(stmt.values(revoked_at=time.time())).rowcount)

    # --- retention and health ---------------------------------------------------------------

    def purge(self, older_than_days: float) -> int:
        """Delete events, rejected requests and outbound attempts older than that.

        Returns the number of rows deleted.  The disconnect rollup keeps its history: it
        holds only per-cause hourly counts (no numbers), so charts still cover purged time.
        Events go in batches so SQLite's write lock is never held for long.
        """
        cutoff = time.time() - float(older_than_days) * 86400.0
        total = 0
        while True:
            doomed = (
                select(events.c.id)
                .where(events.c.received_at < cutoff)
                .order_by(events.c.id)
                .limit(PURGE_BATCH)
            )
            with self._writing() as conn:
                conn.execute(delete(disconnects).where(disconnects.c.event_id.in_(doomed)))
                removed = conn.execute(delete(events).where(events.c.id.in_(doomed))).rowcount
            total += removed
            if removed < PURGE_BATCH:
                break
        with self._writing() as conn:
            for table, column in (
                (rejected_requests, rejected_requests.c.received_at),
                (outbound_calls, outbound_calls.c.created_at),
            ):
                total += conn.execute(delete(table).where(column < cutoff)).rowcount
            conn.execute(delete(rate_limits).where(rate_limits.c.expires_at < time.time()))
        return total

    def health(self) -> bool:
        """True when ``SELECT 1`` works; never raises."""
        try:
            with self._current().engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False


class _Broken(sa_exc.SQLAlchemyError):
    """A pooled connection turned out to be dead (the cause is chained)."""


def _spooled_row(line: bytes) -> dict[str, Any] | None:
    try:
        item = json.loads(line)
        if not isinstance(item, dict) or item.get("kind") != "callback":
            return None
        stored = item["row"]
        if not isinstance(stored, dict) or not stored.get("route"):
            return None
        return event_row(stored)
    except (ValueError, KeyError, TypeError):
        return None


def _page(limit: int) -> int:
    return max(1, min(int(limit), MAX_PAGE))


def _bucket_range(query: Any, since: float | None, until: float | None) -> Any:
    r = disconnect_rollup
    if since is not None:
        query = query.where(r.c.bucket_start >= hour_bucket(float(since)))
    if until is not None:
        query = query.where(r.c.bucket_start < float(until))
    return query


def _outbound_dict(row: Mapping[Any, Any]) -> dict[str, Any]:
    item = dict(row)
    try:
        item["request"] = json.loads(item["request"])
    except (TypeError, ValueError):
        pass
    return item
