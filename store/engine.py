"""Engine set-up for SQLite and PostgreSQL, shared by the store and the sandbox.

SQLite: WAL, ``busy_timeout``, ``synchronous``, ``foreign_keys=ON`` on every connection;
the driver's own transaction handling is off and every write transaction starts with
``BEGIN IMMEDIATE`` (a deferred transaction that reads first can fail at once with
"database is locked" in WAL mode; IMMEDIATE waits for the busy timeout).

PostgreSQL: ``lock_timeout`` plays the part of the busy timeout, ``synchronous_commit`` is
on (a commit returns once the WAL is flushed), TCP keepalives let a dead server be
noticed, and (when given) ``statement_timeout`` has the server cancel a statement that
runs too long; inside :func:`long_statements` SQLAlchemy transactions are exempt.  Nothing
here connects: engines connect on first use.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

# This process's id, kept current across fork: os.getpid() is a system call, and the hot
# path asks several times per callback whether it has been forked.
_PROCESS = {"pid": os.getpid()}
os.register_at_fork(after_in_child=lambda: _PROCESS.update(pid=os.getpid()))


def current_pid() -> int:
    return _PROCESS["pid"]


# Execution option of the engine that begins write transactions IMMEDIATE (SQLite).
WRITE_OPTION = "store_write"
SQLITE_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
# What PRAGMA synchronous reads back for each level.
SYNCHRONOUS_LEVELS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
# Set by long_statements(): this thread's (or task's) transactions run without the timeout.
_LONG_STATEMENTS = contextvars.ContextVar("store_long_statements", default=False)


@contextlib.contextmanager
def long_statements() -> Iterator[None]:
    """Within it, the SQLAlchemy transactions this thread begins have no statement timeout.

    For work that is slow by nature (migrations, purges, exports, bulk tools): on an engine
    made with ``statement_timeout``, each such transaction starts with ``SET LOCAL
    statement_timeout = 0`` (one round trip; the setting ends with the transaction, so the
    pooled connection keeps its bound).  Neither raw DBAPI use (the callback path) nor an
    AUTOCOMMIT connection is exempt.
    """
    token = _LONG_STATEMENTS.set(True)
    try:
        yield
    finally:
        _LONG_STATEMENTS.reset(token)


def _begin_long(conn: Connection) -> None:
    if not _LONG_STATEMENTS.get():
        return
    dbapi: Any = conn.connection.driver_connection
    if not dbapi.autocommit:  # outside a transaction SET LOCAL would do nothing
        conn.exec_driver_sql("SET LOCAL statement_timeout = 0")


def normalize_url(url: str | URL) -> URL:
    """postgres://, postgresql:// and postgresql+psycopg:// all mean psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql", "postgres+psycopg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def sqlite_file(url: URL) -> str | None:
    """The database file of a SQLite URL (None: in memory or a ``file:`` URI)."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


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


def _begin(conn: Connection) -> None:
    """SQLAlchemy's documented pysqlite recipe: we emit BEGIN, the driver does not."""
    write = conn.get_execution_options().get(WRITE_OPTION)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


TCP_USER_TIMEOUT_MS = 25_000  # as long as the keepalives take: idle 10 s + 3 probes x 5 s


def create_engines(
    url: URL,
    *,
    busy_timeout: float,
    sqlite_synchronous: str = "FULL",
    wal_autocheckpoint: int | None = None,
    pool: Mapping[str, Any] | None = None,
    statement_timeout: float | None = None,
) -> tuple[Engine, Engine]:
    """``(engine, writer)``: one pool; the writer's SQLite transactions begin IMMEDIATE.

    ``statement_timeout`` (seconds, PostgreSQL): set on every connection as it is made, so
    it costs no round trip per statement.
    """
    synchronous = str(sqlite_synchronous).upper()
    if synchronous not in SQLITE_SYNCHRONOUS:
        raise ValueError(f"sqlite_synchronous must be one of {', '.join(SQLITE_SYNCHRONOUS)}")
    options: dict[str, Any] = {"pool_timeout": max(busy_timeout, 1.0), **(pool or {})}
    if url.get_backend_name() == "sqlite":
        database = sqlite_file(url)
        if database:
            with contextlib.suppress(OSError):
                os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
        engine = create_engine(
            url,
            paramstyle="named",
            connect_args={"timeout": busy_timeout, "check_same_thread": False},
            **options,
        )

        def sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
                enable_wal(cursor, busy_timeout)
                if wal_autocheckpoint is not None:
                    cursor.execute(f"PRAGMA wal_autocheckpoint = {int(wal_autocheckpoint)}")
                cursor.execute(f"PRAGMA synchronous = {synchronous}")
                cursor.execute("PRAGMA foreign_keys = ON")
            finally:
                cursor.close()

        event.listen(engine, "connect", sqlite_connect)
        event.listen(engine, "begin", _begin)
    else:
        engine = create_engine(
            url,
            connect_args={
                "connect_timeout": max(2, math.ceil(busy_timeout)),
                # A server (or network) that vanished without a word is noticed by the
                # kernel instead of never.
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 5,
                "keepalives_count": 3,
                # And one that stops acknowledging what we sent (a statement in flight): the
                # kernel gives up in as long, not after its ~15 minutes of retransmissions.
                "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
            },
            **options,
        )

        def pg_connect(dbapi_connection: Any, _record: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute(f"SET lock_timeout = {max(1, int(busy_timeout * 1000))}")
                # On whatever the server's default: a commit is on disk before it returns.
                cursor.execute("SET synchronous_commit = on")
                if statement_timeout is not None:
                    timeout_ms = max(1, int(statement_timeout * 1000))
                    cursor.execute(f"SET statement_timeout = {timeout_ms}")
            dbapi_connection.commit()

        event.listen(engine, "connect", pg_connect)
        if statement_timeout is not None:
            event.listen(engine, "begin", _begin_long)
    return engine, engine.execution_options(**{WRITE_OPTION: True})
