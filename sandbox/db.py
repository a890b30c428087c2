"""The sandbox's tables (prefixed ``sandbox_``) and every statement it runs, in SQLAlchemy Core.

Works on SQLite (the app's default database, shared with the callback hot path) and on
PostgreSQL.  Nothing connects at construction; each process makes its own engine on first
use (gunicorn forks after loading the app).

Tables:

``sandbox_calls``    one row per call leg: its request, state, times, the executing driver's
                     lease (owner + expiry) and the saved program (where execution resumes)
``sandbox_inputs``   what other processes ask of a call: digits, hang-up, API updates; the
                     owning driver reads them in id order
``sandbox_callees``  callee scripts registered for a destination number
``sandbox_applications``, ``sandbox_numbers``  Voice applications (where inbound calls'
                     ``initiate`` and ``disconnect`` go) and the numbers that belong to them
``sandbox_recordings``  recordings' metadata and transcripts (the media is generated)
``sandbox_transcriptions``  real-time transcriptions (StartTranscription) of calls
``sandbox_conferences``, ``sandbox_conference_members``  conferences and who is in them
                     (statements in ``sandbox.conference_store``)

The statements over applications, numbers and recordings are in ``sandbox.catalog``.

SQLite: WAL, ``busy_timeout``, ``synchronous=NORMAL`` on the sandbox's own connections
(simulation state, not events), every write transaction ``BEGIN IMMEDIATE`` and, inside one
process, one writer at a time (a lock), so writers queue instead of sleeping in SQLite's
busy handler.  Transactions are short: no HTTP request is ever made inside one.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from sandbox.tables import (
    callees,
    calls,
    conference_members,
    conferences,
    inputs,
    metadata,
    recordings,
    transcriptions,
)
from store.engine import create_engines, normalize_url

LOG_LIMIT = 300  # log lines kept per call
MIGRATION_LOCK = 0x73_61_6E_64_62_6F_78  # pg_advisory_xact_lock key ("sandbox")
LIMITS_LOCK = MIGRATION_LOCK + 1  # serializes the account-limit checks of new calls


def _limit_hit(
    conn: Connection, account_id: str, now: float, per_second: int, concurrent: int
) -> str | None:
    count = select(func.count()).select_from(calls).where(calls.c.account_id == account_id)
    recent = calls.c.created_at > now - 1.0
    if per_second and conn.execute(count.where(recent)).scalar_one() >= per_second:
        return "per-second"
    if concurrent and conn.execute(count.where(calls.c.active == 1)).scalar_one() >= concurrent:
        return "concurrent"
    return None


def call_row(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    item = dict(row._mapping)
    for key in ("request", "leg", "program", "log"):
        if item.get(key) is not None:
            item[key] = json.loads(item[key])
    return item


class SandboxDB:
    """Statements over the sandbox tables; one engine per process, created on first use."""

    def __init__(self, url: str, *, busy_timeout: float = 10.0) -> None:
        self.url = normalize_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if not self.is_sqlite and self.url.get_backend_name() != "postgresql":
            raise ValueError("the sandbox needs a sqlite:/// or postgresql:// DATABASE_URL")
        self.busy_timeout = busy_timeout
        self._engine: Engine | None = None
        self._writer: Engine | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        # A call unheld for longer is not resumed but ended (sandbox.stale); None: always.
        self.resume_seconds: float | None = None

    # --- engine -------------------------------------------------------------------------

    def _engines(self) -> tuple[Engine, Engine]:
        pid = os.getpid()
        if self._engine is not None and self._pid == pid:
            assert self._writer is not None
            return self._engine, self._writer
        with self._lock:
            if self._engine is None or self._pid != pid:
                if self._engine is not None:
                    self._engine.dispose(close=False)  # the parent's connections
                    self._write_lock = threading.Lock()
                engine, writer = self._create_engines()
                try:
                    self._create_tables(writer)
                except Exception:
                    engine.dispose()
                    raise
                self._engine = engine
                self._writer = writer
                self._pid = pid
        assert self._engine is not None and self._writer is not None
        return self._engine, self._writer

    def _create_engines(self) -> tuple[Engine, Engine]:
        # The store's engine set-up; NORMAL: simulation state, not events.
        return create_engines(
            self.url,
            busy_timeout=self.busy_timeout,
            sqlite_synchronous="NORMAL",
            pool={"pool_size": 8, "max_overflow": 56 if self.is_sqlite else 32, "pool_timeout": 60},
        )

    def _create_tables(self, writer: Engine) -> None:
        """CREATE the tables once, even when several workers start together: inside a
        write transaction (SQLite) or under an advisory lock (PostgreSQL)."""
        with writer.begin() as conn:
            if not self.is_sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            metadata.create_all(conn, checkfirst=True)
            if self.is_sqlite:
                _upgrade_sqlite_inputs(conn)

    def migrate(self) -> None:
        self._engines()

    def dispose(self) -> None:
        engine = self._engine
        self._engine = self._writer = None
        if engine is not None and self._pid == os.getpid():
            engine.dispose()

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        engine, _ = self._engines()
        with engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def writing(self) -> Iterator[Connection]:
        _, writer = self._engines()
        lock = self._write_lock if self.is_sqlite else contextlib.nullcontext()
        with lock, writer.begin() as conn:
            yield conn

    # --- calls --------------------------------------------------------------------------

    def insert_call(self, row: dict[str, Any]) -> None:
        with self.writing() as conn:
            conn.execute(insert(calls), _encode(row))

    def insert_call_within_limits(
        self, row: dict[str, Any], *, per_second: int, concurrent: int
    ) -> str | None:
        """Insert a new call unless its account is at a limit (0: none): None when inserted,
        else which limit (``"per-second"``, ``"concurrent"``).  The check and the insert are
        one write transaction, serialized across processes (SQLite's write lock, an
        advisory lock on PostgreSQL), so concurrent creates cannot overshoot."""
        with self.writing() as conn:
            if not self.is_sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LIMITS_LOCK})
            limited = _limit_hit(conn, row["account_id"], row["created_at"], per_second, concurrent)
            if limited is None:
                conn.execute(insert(calls), _encode(row))
        return limited

    def limit_hit(
        self, account_id: str, now: float, *, per_second: int, concurrent: int
    ) -> str | None:
        """Which account limit a new leg would break now (a Transfer's), or None."""
        with self.reading() as conn:
            return _limit_hit(conn, account_id, now, per_second, concurrent)

    def get_call(self, call_id: str) -> dict[str, Any] | None:
        with self.reading() as conn:
            return call_row(conn.execute(select(calls).where(calls.c.call_id == call_id)).first())

    def list_calls(self, *, limit: int = 50, account_id: str | None = None) -> list[dict]:
        query = select(calls).order_by(calls.c.created_at.desc()).limit(limit)
        if account_id is not None:
            query = query.where(calls.c.account_id == account_id)
        with self.reading() as conn:
            return [call_row(row) for row in conn.execute(query)]  # type: ignore[misc]

    def legs_of(self, parent_call_id: str) -> list[dict[str, Any]]:
        """The B-legs of a call, oldest first."""
        query = (
            select(calls)
            .where(calls.c.parent_call_id == parent_call_id)
            .order_by(calls.c.created_at)
        )
        with self.reading() as conn:
            return [call_row(row) for row in conn.execute(query)]  # type: ignore[misc]

    def has_claimable(self, now: float) -> bool:
        query = select(calls.c.call_id).where(*self._claimable(now)).limit(1)
        with self.reading() as conn:
            return conn.execute(query).first() is not None

    def claimable(self, now: float, limit: int) -> list[str]:
        query = (
            select(calls.c.call_id)
            .where(*self._claimable(now))
            .order_by(calls.c.created_at)
            .limit(limit)
        )
        with self.reading() as conn:
            return [row[0] for row in conn.execute(query)]

    def _claimable(self, now: float) -> tuple[Any, ...]:
        free = (
            calls.c.active == 1,
            calls.c.parent_call_id.is_(None),
            or_(calls.c.lease_owner.is_(None), calls.c.lease_expires < now),
        )
        if self.resume_seconds is None:
            return free
        since = func.coalesce(calls.c.lease_expires, calls.c.updated_at)
        return (*free, since >= now - self.resume_seconds)

    def claim(self, call_id: str, owner: str, now: float, lease: float) -> dict | None:
        """Take the lease of a free or expired call; the row when this owner won it."""
        with self.writing() as conn:
            won = conn.execute(
                update(calls)
                .where(calls.c.call_id == call_id, *self._claimable(now))
                .values(lease_owner=owner, lease_expires=now + lease)
            ).rowcount
            if won != 1:
                return None
            return call_row(conn.execute(select(calls).where(calls.c.call_id == call_id)).first())

    def renew(self, owner: str, call_ids: Iterable[str], now: float, lease: float) -> set[str]:
        """Extend this owner's leases; return the ids it still holds."""
        ids = list(call_ids)
        if not ids:
            return set()
        with self.writing() as conn:
            conn.execute(
                update(calls)
                .where(calls.c.lease_owner == owner, calls.c.active == 1)
                .values(lease_expires=now + lease)
            )
            held = conn.execute(
                select(calls.c.call_id).where(
                    calls.c.lease_owner == owner, calls.c.call_id.in_(ids)
                )
            )
            return {row[0] for row in held}

    def save(self, call_id: str, owner: str, values: dict[str, Any], lease: float) -> bool:
        """Write the A-leg's progress if ``owner`` still holds it (and renew the lease)."""
        now = time.time()
        values = {**_encode(values), "updated_at": now, "lease_expires": now + lease}
        with self.writing() as conn:
            done = conn.execute(
                update(calls)
                .where(calls.c.call_id == call_id, calls.c.lease_owner == owner)
                .values(values)
            ).rowcount
        return done == 1

    def save_legs(
        self, owner: str, lease: float, changes: list[tuple[str, dict[str, Any], bool]]
    ) -> bool:
        """Several rows in one transaction: (call_id, values, leased).  A leased row is
        written only if ``owner`` holds it; False (and nothing written) when it does not."""
        now = time.time()
        try:
            with self.writing() as conn:
                for call_id, values, leased in changes:
                    row = {**_encode(values), "updated_at": now}
                    query = update(calls).where(calls.c.call_id == call_id)
                    if leased:
                        row["lease_expires"] = now + lease
                        query = query.where(calls.c.lease_owner == owner)
                    if conn.execute(query.values(row)).rowcount != 1 and leased:
                        raise _NotOwner  # rolls the whole transaction back
        except _NotOwner:
            return False
        return True

    def finish(self, call_ids: list[str], owner: str, values: dict[str, dict[str, Any]]) -> bool:
        """End legs: write their final values, drop the lease and their pending inputs."""
        now = time.time()
        with self.writing() as conn:
            for call_id in call_ids:
                row = {
                    **_encode(values.get(call_id, {})),
                    "active": 0,
                    "lease_owner": None,
                    "lease_expires": None,
                    "updated_at": now,
                }
                conn.execute(update(calls).where(calls.c.call_id == call_id).values(row))
            conn.execute(delete(inputs).where(inputs.c.call_id.in_(call_ids)))
        return True

    def release(self, owner: str, call_ids: Iterable[str]) -> None:
        """Give leases back (a clean shutdown): another driver resumes them at once.
        ``lease_expires`` keeps the time of the release (see sandbox.stale)."""
        ids = list(call_ids)
        if not ids:
            return
        with self.writing() as conn:
            conn.execute(
                update(calls)
                .where(calls.c.lease_owner == owner, calls.c.call_id.in_(ids))
                .values(lease_owner=None, lease_expires=time.time())
            )

    def lease_owners(self, prefix: str, now: float) -> set[str]:
        """The owners, whose names start with ``prefix``, of leases still running."""
        query = (
            select(calls.c.lease_owner)
            .where(
                calls.c.active == 1,
                calls.c.lease_expires >= now,
                calls.c.lease_owner.startswith(prefix, autoescape=True),
            )
            .distinct()
        )
        with self.reading() as conn:
            return {row[0] for row in conn.execute(query)}

    def release_owner(self, owner: str) -> int:
        """Give back every lease of ``owner`` (a driver known to be dead)."""
        with self.writing() as conn:
            return int(
                conn.execute(
                    update(calls)
                    .where(calls.c.lease_owner == owner, calls.c.active == 1)
                    .values(lease_owner=None, lease_expires=time.time())
                ).rowcount
            )

    def purge(self, older_than: float) -> int:
        with self.writing() as conn:
            conn.execute(delete(recordings).where(recordings.c.start_time < older_than))
            conn.execute(delete(transcriptions).where(transcriptions.c.created_at < older_than))
            ended = select(conferences.c.conference_id).where(
                conferences.c.active == 0, conferences.c.completed_at < older_than
            )
            conn.execute(
                delete(conference_members).where(conference_members.c.conference_id.in_(ended))
            )
            conn.execute(delete(conferences).where(conferences.c.conference_id.in_(ended)))
            return conn.execute(
                delete(calls).where(calls.c.active == 0, calls.c.updated_at < older_than)
            ).rowcount

    # --- inputs -------------------------------------------------------------------------

    def add_input(self, call_id: str, kind: str, data: dict[str, Any]) -> int:
        with self.writing() as conn:
            result = conn.execute(
                insert(inputs).values(
                    call_id=call_id,
                    created_at=time.time(),
                    kind=kind,
                    data=json.dumps(data, separators=(",", ":")),
                )
            )
            key = result.inserted_primary_key
            return int(key[0]) if key else 0

    def inputs_after(self, after_id: int, *, limit: int = 1000) -> list[dict[str, Any]]:
        query = select(inputs).where(inputs.c.id > after_id).order_by(inputs.c.id).limit(limit)
        with self.reading() as conn:
            return [_input(row) for row in conn.execute(query)]

    def inputs_for(self, call_ids: list[str], after_id: int) -> list[dict[str, Any]]:
        query = (
            select(inputs)
            .where(inputs.c.call_id.in_(call_ids), inputs.c.id > after_id)
            .order_by(inputs.c.id)
        )
        with self.reading() as conn:
            return [_input(row) for row in conn.execute(query)]

    def max_input_id(self) -> int:
        with self.reading() as conn:
            return int(conn.execute(select(func.max(inputs.c.id))).scalar() or 0)

    # --- callee scripts -------------------------------------------------------------------

    def set_callee(self, number: str, script: dict[str, Any]) -> None:
        body = json.dumps(script, separators=(",", ":"))
        with self.writing() as conn:
            conn.execute(delete(callees).where(callees.c.number == number))
            conn.execute(insert(callees).values(number=number, script=body, updated_at=time.time()))

    def get_callee(self, number: str) -> dict[str, Any] | None:
        with self.reading() as conn:
            found = conn.execute(
                select(callees.c.script).where(callees.c.number == number)
            ).scalar()
        return json.loads(found) if found else None

    def delete_callee(self, number: str) -> None:
        with self.writing() as conn:
            conn.execute(delete(callees).where(callees.c.number == number))

    def ping(self) -> None:
        with self.reading() as conn:
            conn.execute(text("SELECT 1"))


def _upgrade_sqlite_inputs(conn: Connection) -> None:
    """Rebuild a ``sandbox_inputs`` made before its ids were AUTOINCREMENT (pending rows kept)."""
    created = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'sandbox_inputs'"
    ).scalar()
    if not created or "AUTOINCREMENT" in str(created).upper():
        return
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_sandbox_inputs_call_id")
    conn.exec_driver_sql("ALTER TABLE sandbox_inputs RENAME TO sandbox_inputs_old")
    inputs.create(conn)
    conn.exec_driver_sql(
        "INSERT INTO sandbox_inputs (id, call_id, created_at, kind, data)"
        " SELECT id, call_id, created_at, kind, data FROM sandbox_inputs_old"
    )
    conn.exec_driver_sql("DROP TABLE sandbox_inputs_old")


class _NotOwner(Exception):
    pass


def _input(row: Any) -> dict[str, Any]:
    item = dict(row._mapping)
    item["data"] = json.loads(item["data"])
    return item


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for key in ("request", "leg", "program"):
        if key in out and out[key] is not None and not isinstance(out[key], str):
            out[key] = json.dumps(out[key], separators=(",", ":"))
    if "log" in out and not isinstance(out["log"], str):
        out["log"] = json.dumps(out["log"][-LOG_LIMIT:], separators=(",", ":"))
    return out
