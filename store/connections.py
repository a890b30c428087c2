"""One process's connections to the store's database, its schema, and the writers' turn.

* Nothing connects at construction.  Each process creates one pooled engine on first use
  and a new one when its pid changes (gunicorn forks workers after loading the app).
* The first use in a process migrates the schema (a read when it is current).
* SQLite has one writer at a time and its busy handler waits by sleeping (1, 2, 5, 10 ms
  ...), which wastes most of the time when several threads and workers write all the
  time.  So our writers queue instead: the threads of one process on a lock, the
  processes on an flock of a file beside the database (:mod:`store.writers_lock`).  Both
  waits end at the caller's deadline; anything else holding the database still meets
  SQLite's busy timeout.
* PostgreSQL: the server cancels any statement of ours that runs longer than the busy
  timeout plus STATEMENT_TIMEOUT_MARGIN (set once per connection).  Migrations run
  exempt (:func:`store.engine.long_statements`), as must other work slow by nature.
* SQLite: every connection keeps its own page cache and throws it away whenever another
  connection has committed, so the callback writes of a process go through one
  connection (the "hot" one), taken from the pool once and detached, in the writers' turn.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, func, insert, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL

from .engine import create_engines, current_pid, long_statements, sqlite_file
from .errors import DB_ERRORS, DRIVER_ERRORS, Broken, StoreUnavailable
from .schema import MIGRATIONS, SCHEMA_VERSION, schema_version
from .wal_ledger import WalLedger
from .writers_lock import WritersLock

log = logging.getLogger(__name__)

T = TypeVar("T")

SETUP_RETRY_SECONDS = 1.0  # how long to wait before trying to migrate again
LEDGER_RETRY_SECONDS = 30.0  # how long to wait before opening the WAL ledger again
# SQLite copies the WAL back into the database (a checkpoint) inside whichever commit
# finds it longer than this many pages; the default, 1000, made every ~90th group commit
# of callbacks a slow one.  With 4000 (a WAL of up to 16 MB) the pages that every commit
# rewrites are copied back 4 times less often: measured 5-15% more callbacks per second.
WAL_AUTOCHECKPOINT_PAGES = 4000
PG_MIGRATION_LOCK = 0x62_77_5F_73_74_6F_72_65  # pg_advisory_xact_lock key ("bw_store")
# PostgreSQL's statement_timeout is the busy timeout plus this.  Past the busy timeout no
# caller waits for a statement any more (each caller's wait began before the statement
# did): the server cancelling it then frees the commit thread and the connection, and it
# never turns a commit a caller still waits for into a spooled callback.  The extra
# second lets a lock wait end as lock_timeout (the busy timeout, counted from the wait),
# whose error names the cause, rather than as a statement timeout.
STATEMENT_TIMEOUT_MARGIN = 1.0


@dataclass
class ProcessState:
    """One process's engine (re-created after a fork)."""

    pid: int
    engine: Engine
    writer: Engine  # the same pool; SQLite transactions begin IMMEDIATE
    ready: bool = False  # schema checked in this process
    hot: sqlite3.Connection | None = None  # SQLite: this process's write connection
    ledger: WalLedger | None = None  # FULL: how far the WAL is on disk (wal_ledger.py)


class Database:
    """The engine of the current process, migrations, and the write transactions."""

    def __init__(self, url: URL, *, busy_timeout: float, sqlite_synchronous: str) -> None:
        self.url = url
        self.name = url.render_as_string(hide_password=True)  # for people: no password
        # Which database this is, once reached (when its schema was first created): every
        # spool line written for it says so, and a spool replays only into the database its
        # callbacks were acknowledged for, whatever the settings of the process replaying.
        self.identity: str | None = None
        self.is_sqlite = url.get_backend_name() == "sqlite"
        self.busy_timeout = busy_timeout
        self.statement_timeout = None if self.is_sqlite else busy_timeout + STATEMENT_TIMEOUT_MARGIN
        database = sqlite_file(url) if self.is_sqlite else None
        # FULL on a file: the connections commit as NORMAL (no fsync while holding the
        # write lock) and each write transaction fsyncs the WAL after letting go of it, so
        # the commits of every worker made meanwhile share one fsync.  A commit is on disk
        # before the caller is told, as with FULL.  The workers' fsyncs are counted in a
        # ledger beside the database, so that one fsync serves every worker's commits.
        self.wal_path = None
        self._ledger_path = None
        if database is not None and sqlite_synchronous == "FULL":
            self.wal_path = database + "-wal"
            self._ledger_path = database + ".synced"
            sqlite_synchronous = "NORMAL"
        self.sqlite_synchronous = sqlite_synchronous
        # Called (outside any lock) after the first successful migration in a process.
        self.on_ready: Callable[[], None] = lambda: None
        self._lock = threading.Lock()
        self._lock_pid = os.getpid()
        self._write_turn = threading.Lock()
        self._writers = None if database is None else WritersLock(database + ".writers")
        self._state: ProcessState | None = None
        self._next_setup = 0.0
        self._ledger_retry_at = 0.0  # the ledger could not be opened: not before then
        self._ledger_failed = False
        self._commits = threading.local()  # seq: the ledger's number of this thread's commit
        # The dialect, to compile statements without an engine (which would make folders).
        dialect = url.get_dialect()
        self.dialect = dialect(paramstyle="named") if self.is_sqlite else dialect()

    def _create(self) -> tuple[Engine, Engine]:
        return create_engines(
            self.url,
            busy_timeout=self.busy_timeout,
            sqlite_synchronous=self.sqlite_synchronous,
            wal_autocheckpoint=WAL_AUTOCHECKPOINT_PAGES,
            statement_timeout=self.statement_timeout,
        )

    # --- engine and schema -------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether this process has made its engine yet."""
        state = self._state
        return state is not None and state.pid == current_pid()

    def state(self) -> ProcessState:
        state = self._state
        pid = current_pid()
        if state is not None and state.pid == pid:
            return state
        if self._lock_pid != pid:
            # A lock copied through fork may be held by a thread that does not exist here.
            self._lock = threading.Lock()
            self._write_turn = threading.Lock()
            if self._writers is not None:
                self._writers.forget()
            self._lock_pid = pid
        with self._lock:
            state = self._state
            if state is not None and state.pid == pid:
                return state
            if state is not None:
                # The parent's connections belong to the parent: drop them without closing.
                state.engine.dispose(close=False)
            state = ProcessState(pid, *self._create())
            self._state = state
            return state

    def ready(self, *, throttle: bool = False, notify: bool = True) -> ProcessState:
        """The engine, with the schema checked once per process."""
        state = self.state()
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
                self._learn_identity(state)
                state.ready = fresh = True
        if fresh and notify:
            self.on_ready()
        return state

    def migrate(self) -> None:
        state = self.state()
        try:
            self._migrate(state)
        except DB_ERRORS as exc:
            raise StoreUnavailable(f"cannot migrate the store: {exc}") from exc
        self._learn_identity(state)
        state.ready = True

    def _learn_identity(self, state: ProcessState) -> None:
        if self.identity is not None:
            return
        first = select(schema_version.c.applied_at).where(schema_version.c.version == 1)
        try:
            with state.engine.connect() as conn:
                created = conn.execute(first).scalar()
        except sa_exc.DBAPIError:
            return  # lines spooled meanwhile name no database: any replays them, as before
        if created is not None:
            self.identity = f"{self.url.get_backend_name()} created {float(created)!r}"

    def _schema_version(self, state: ProcessState) -> int:
        try:
            with state.engine.connect() as conn:
                return int(conn.execute(select(func.max(schema_version.c.version))).scalar() or 0)
        except sa_exc.DBAPIError:
            return 0  # no table yet (or no database: the write below will say so)

    def _migrate(self, state: ProcessState) -> None:
        if self._schema_version(state) >= SCHEMA_VERSION:
            return  # the common case: a read, no write lock
        # DDL and backfills over every stored row (minutes on a large store) must finish.
        with long_statements(), state.writer.begin() as conn:
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
        state = self._state
        self._state = None
        if state is not None and state.pid == current_pid():
            with self._write_turn:  # not while one of our writers uses it
                self._drop_hot(state)
            state.engine.dispose()
            if state.ledger is not None:
                state.ledger.close()

    def health(self) -> bool:
        try:
            with self.state().engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    # --- the writers' turn ---------------------------------------------------------------

    @contextlib.contextmanager
    def writer_turn(self, deadline: float | None = None) -> Iterator[None]:
        """On SQLite, wait (until ``deadline``, or the busy timeout) for our turn to write."""
        if not self.is_sqlite:
            yield
            return
        if deadline is None:
            deadline = time.monotonic() + self.busy_timeout
        if not self._write_turn.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise sqlite3.OperationalError("database is locked (writers queued past the timeout)")
        try:
            writers = self._writers
            locked = writers is not None and writers.acquire(deadline)
            try:
                yield
            finally:
                if locked:
                    writers.release()  # type: ignore[union-attr]
        finally:
            self._write_turn.release()

    # --- raw DBAPI transactions (the callback path) ------------------------------------

    def raw_write(
        self,
        work: Callable[[Any], T],
        deadline: float | None = None,
        *,
        sync: bool = True,
        autocommit: bool = False,
    ) -> T:
        """Run ``work(cursor)`` in one write transaction, in the writers' turn.

        SQLite: on the process's hot connection; PostgreSQL: on a pooled one.  Raises
        :class:`Broken` when the connection turned out to be dead.  ``sync=False`` leaves
        :meth:`sync_wal` to the caller (the commit is not yet durable then).
        ``autocommit`` (PostgreSQL): no BEGIN and COMMIT round trips; ``work`` writes with
        one statement, which is its own transaction, committed before it returns.
        """
        state = self.ready(throttle=True)
        with self.writer_turn(deadline):
            conn: Any = self._hot(state) if self.is_sqlite else state.engine.raw_connection()
            dbapi: Any = None
            try:
                if autocommit and not self.is_sqlite:
                    dbapi = conn.driver_connection
                    dbapi.autocommit = True
                cursor = conn.cursor()
                try:
                    if self.is_sqlite:
                        cursor.execute("BEGIN IMMEDIATE")
                    result = work(cursor)
                    if dbapi is None:
                        conn.commit()
                    self._commits.seq = self._count_commit(state)
                finally:
                    cursor.close()
            except BaseException as exc:
                self._roll_back(state, conn, exc)
                raise
            finally:
                if dbapi is not None:
                    with contextlib.suppress(Exception):  # a dead one was invalidated
                        dbapi.autocommit = False
                if not self.is_sqlite:
                    conn.close()  # back to the pool
        if sync:
            self.sync_wal(self.last_commit())
        return result

    def last_commit(self) -> int | None:
        """The ledger's number of this thread's last :meth:`raw_write` (None: not counted)."""
        seq: int | None = getattr(self._commits, "seq", None)
        return seq

    def sync_wal(self, through: int | None = None) -> None:
        """Make the commits so far durable (FULL on SQLite; a no-op otherwise).  With
        ``through`` (a :meth:`last_commit`), no fsync when another worker's fsync that began
        after that commit has succeeded."""
        wal = self.wal_path
        if wal is None:
            return
        ledger = self._ledger(self.state())
        if ledger is None:
            fsync_file(wal)
        else:
            ledger.sync(lambda: fsync_file(wal), through)

    def _count_commit(self, state: ProcessState) -> int | None:
        """The ledger's number for the commit just made (in the writers' turn); None when it
        is not counted: not FULL, or no flock on the writers' file, without which another
        worker could count at the same time."""
        if self._ledger_path is None or self._writers is None or not self._writers.held_here():
            return None
        ledger = self._ledger(state)
        return None if ledger is None else ledger.committed()

    def _ledger(self, state: ProcessState) -> WalLedger | None:
        """This process's WAL ledger (None: not FULL, or its file cannot be opened, and then
        every sync makes its own fsync)."""
        ledger = state.ledger
        if ledger is not None or self._ledger_path is None:
            return ledger
        if time.monotonic() < self._ledger_retry_at:
            return None
        with self._lock:
            if state.ledger is None and time.monotonic() >= self._ledger_retry_at:
                try:
                    state.ledger = WalLedger(self._ledger_path)
                except OSError as exc:  # e.g. the folder is gone: SQLite will say so
                    # Tried again a while later, and said once, not on every commit.
                    self._ledger_retry_at = time.monotonic() + LEDGER_RETRY_SECONDS
                    if not self._ledger_failed:
                        log.warning("WAL ledger %s not usable: %s", self._ledger_path, exc)
                    self._ledger_failed = True
                else:
                    if self._ledger_failed:
                        log.info("WAL ledger %s usable again", self._ledger_path)
                    self._ledger_failed = False
            return state.ledger

    def raw_read_one(self, sql: str, params: Mapping[str, Any]) -> Any:
        """One row of a single-statement read, in autocommit (no BEGIN/ROLLBACK round trips)."""
        state = self.ready(throttle=True)
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
            self._roll_back(state, pooled, exc)
            raise
        finally:
            pooled.close()

    def _roll_back(self, state: ProcessState, conn: Any, exc: BaseException) -> None:
        """Roll back after ``exc``; raise :class:`Broken` when the connection is dead.

        A dead hot connection is replaced next time; a dead pooled one means the server
        probably restarted, so every pooled connection is stale.
        """
        with contextlib.suppress(Exception):
            conn.rollback()
        if not isinstance(exc, DRIVER_ERRORS):
            return
        dbapi = conn if isinstance(conn, sqlite3.Connection) else conn.dbapi_connection
        try:
            broken = bool(state.engine.dialect.is_disconnect(exc, dbapi, None))  # type: ignore[arg-type]
        except Exception:
            broken = False
        if not broken:
            return
        if conn is state.hot:
            self._drop_hot(state)
        else:
            with contextlib.suppress(Exception):
                conn.invalidate(exc)
            state.engine.dispose()
        raise Broken(str(exc)) from exc

    def _hot(self, state: ProcessState) -> sqlite3.Connection:
        """This process's write connection (the caller holds the writers' turn)."""
        conn = state.hot
        if conn is None:
            pooled = state.engine.raw_connection()
            conn = pooled.driver_connection
            pooled.detach()  # ours for the life of the process (the connect hook has run)
            state.hot = conn
        return conn

    def _drop_hot(self, state: ProcessState) -> None:
        conn, state.hot = state.hot, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    # --- SQLAlchemy Connections (everything else) --------------------------------------

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        try:
            state = self.ready()
            with state.engine.connect() as conn:
                yield conn
        except DB_ERRORS as exc:
            raise StoreUnavailable(f"store unavailable: {exc}") from exc

    @contextlib.contextmanager
    def writing(self, *, throttle: bool = False) -> Iterator[Connection]:
        try:
            state = self.ready(throttle=throttle)
            with self.writer_turn(), state.writer.begin() as conn:
                yield conn
            self.sync_wal()
        except DB_ERRORS as exc:
            raise StoreUnavailable(f"store unavailable: {exc}") from exc


def fsync_file(path: str) -> None:
    """fsync a file by name (a gone WAL was checkpointed into the synced database file)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
