"""The callback insert: one event row (plus a disconnect's narrow row and counts).

Statements compiled once per Store for its dialect and run on a DBAPI cursor, with no
per-request SQLAlchemy work: the group commit and the spool replay share them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import bindparam, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from .categories import call_category
from .rows import EVENT_COLUMNS, clean_key, hour_bucket
from .schema import (
    category_rollup,
    category_totals,
    disconnect_rollup,
    disconnect_totals,
    disconnects,
    events,
    refused_calls,
)
from .search import search_text

# Handler errors of a call's earlier callbacks that a disconnect's search text includes.
HANDLER_ERRORS = 5


class Outcome(StrEnum):
    """What became of a callback; equal to its plain string ("inserted", ...)."""

    inserted = "inserted"  # committed now
    duplicate = "duplicate"  # an identical delivery was stored before: answer as it was
    spooled = "spooled"  # on disk in the spool, to be stored when the database is back


class CallbackResult(NamedTuple):
    """``(outcome, reply)``: reply is the stored reply of a duplicate, else None."""

    outcome: Outcome
    reply: dict[str, Any] | None = None


INSERTED = CallbackResult(Outcome.inserted)
SPOOLED = CallbackResult(Outcome.spooled)


def reply_dict(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"reply_status": row[0], "reply_body": row[1], "reply_content_type": row[2]}


def _bump(ins: Any, table: Any, *keys: str) -> Any:
    """INSERT a count of 1 for ``keys``, or add 1 to the row that is there."""
    values = {key: bindparam(key) for key in keys}
    statement = ins(table).values(**values, count=literal_column("1"))
    return statement.on_conflict_do_update(
        index_elements=list(keys), set_={"count": table.c.count + literal_column("1")}
    )


def _calls_to_recategorise(row: Mapping[str, Any]) -> list[str]:
    """The calls a failed callback (not a disconnect) may move to a stronger category when
    stored after their disconnect: its own, and its caller's for a transfer's agent leg
    (see ``call_flags``)."""
    if not row.get("category"):
        return []
    return [call_id for call_id in (row["call_id"], row.get("parent_call_id")) if call_id]


class EventInserts:
    """The hot-path statements of one dialect, and the insert of one callback row."""

    def __init__(self, dialect: Dialect) -> None:
        self.is_sqlite = dialect.name == "sqlite"
        ins = sqlite.insert if self.is_sqlite else postgresql.insert
        insert_event_plain = (
            ins(events)
            .values({name: bindparam(name) for name in EVENT_COLUMNS})
            .on_conflict_do_nothing(index_elements=["route", "payload_hash"])
        )
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
        bump = _bump(ins, disconnect_rollup, "cause", "bucket_start")
        total = _bump(ins, disconnect_totals, "cause")
        bump_category = _bump(ins, category_rollup, "category", "bucket_start")
        category_total = _bump(ins, category_totals, "category")
        # The call's earlier failures: a few rows of one call, through ix_events_call_id,
        # and of its transfer's agent legs (their callbacks name it as parentCallId; an agent
        # leg ends with transferDisconnect, never a disconnect of its own, so its failures
        # would otherwise be on no row of the list), through ix_events_parent_call_id.
        call_flags = (
            select(events.c.category)
            .where(events.c.call_id == bindparam("call_id"), events.c.category.is_not(None))
            .union_all(
                select(events.c.category).where(
                    events.c.parent_call_id == bindparam("call_id"), events.c.category.is_not(None)
                )
            )
        )
        refused = select(refused_calls.c.category, refused_calls.c.wrong).where(
            refused_calls.c.call_id == bindparam("call_id")
        )
        handler_errors = (
            select(events.c.error_detail)
            .where(events.c.call_id == bindparam("call_id"), events.c.error_detail.is_not(None))
            .order_by(events.c.id)
        )
        refused_done = (
            refused_calls.update()
            .where(refused_calls.c.call_id == bindparam("call_id"))
            .values(disconnected=literal_column("1"))
        )
        # A failure that arrives after its call's disconnect (a spooled callback replayed
        # late) still gives the call its category.
        call_disconnect = (
            select(
                disconnects.c.event_id,
                disconnects.c.category,
                disconnects.c.cause,
                disconnects.c.received_at,
            )
            .join(events, events.c.id == disconnects.c.event_id)
            .where(
                events.c.call_id == bindparam("call_id"),
                events.c.event_type == literal_column("'disconnect'"),
            )
        )
        recategorise = (
            disconnects.update()
            .where(disconnects.c.event_id == bindparam("target_id"))
            .values(category=bindparam("new_category"))
        )
        unbump_category = (
            category_rollup.update()
            .where(
                category_rollup.c.category == bindparam("old_category"),
                category_rollup.c.bucket_start == bindparam("bucket"),
            )
            .values(count=category_rollup.c.count - literal_column("1"))
        )
        unbump_category_total = (
            category_totals.update()
            .where(category_totals.c.category == bindparam("old_category"))
            .values(count=category_totals.c.count - literal_column("1"))
        )
        compiled = {
            "insert_event": insert_event_plain.returning(events.c.id),
            "insert_event_plain": insert_event_plain,
            "reply": reply,
            "insert_disconnect": insert_disconnect,
            "bump_rollup": bump,
            "bump_total": total,
            "handler_errors": handler_errors,
            "bump_category": bump_category,
            "bump_category_total": category_total,
            "call_flags": call_flags,
            "refused": refused,
            "refused_done": refused_done,
            "call_disconnect": call_disconnect,
            "recategorise": recategorise,
            "unbump_category": unbump_category,
            "unbump_category_total": unbump_category_total,
        }
        self.sql = {name: str(stmt.compile(dialect=dialect)) for name, stmt in compiled.items()}
        self.sql["handler_errors"] += f" LIMIT {HANDLER_ERRORS}"
        self._insert_n: dict[int, str] = {}

    def insert_rows_sql(self, count: int) -> str:
        """PostgreSQL: the INSERT of ``count`` rows in one statement, with $n placeholders
        (a raw cursor's: psycopg does not cache the conversion of %s in a statement of
        over 50 parameters, and redid it per batch), RETURNING id, route, payload_hash."""
        sql = self._insert_n.get(count)
        if sql is None:
            width = len(EVENT_COLUMNS)
            rows = ", ".join(
                "(" + ", ".join(f"${n * width + column + 1}" for column in range(width)) + ")"
                for n in range(count)
            )
            # Only the table's column names and placeholders: the values are parameters.
            sql = self._insert_n[count] = (
                f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES {rows}"  # noqa: S608
                " ON CONFLICT (route, payload_hash) DO NOTHING RETURNING id, route, payload_hash"
            )
        return sql

    def insert_event(self, cursor: Any, row: Mapping[str, Any]) -> int | None:
        """INSERT ... ON CONFLICT DO NOTHING; the new id, or None for a duplicate.

        A new disconnect also gets its narrow ``disconnects`` row and +1 in the hourly rollup
        and the totals, in the caller's transaction, so the counts match the stored events.
        """
        if self.is_sqlite:
            # No RETURNING: fetching its row would step the statement (and let go of the
            # GIL) once more; rowcount and lastrowid say the same.
            cursor.execute(self.sql["insert_event_plain"], row)
            if cursor.rowcount != 1:
                return None
            event_id = int(cursor.lastrowid)
        else:
            cursor.execute(self.sql["insert_event"], row)
            found = cursor.fetchall()
            if not found:
                return None
            event_id = int(found[0][0])
        self._disconnect_rows(cursor, row, event_id)
        return event_id

    def _disconnect_rows(self, cursor: Any, row: Mapping[str, Any], event_id: int) -> None:
        if row["event_type"] != "disconnect":
            for call_id in _calls_to_recategorise(row):
                self._late_category(cursor, row, call_id)
            return
        cause = row["cause"] or "unknown"
        call_id = row["call_id"]
        # What the call's category needs: its earlier handler errors, the failures of its
        # callbacks and its refused callbacks.  On PostgreSQL the reads go to the server
        # together and so do the writes: two round trips instead of one per statement.
        reads: dict[str, Any] = {}
        with self._together(cursor):
            for name, wanted in (
                ("handler_errors", call_id is not None),
                ("call_flags", bool(call_id)),
                ("refused", bool(call_id)),
            ):
                if wanted:
                    reads[name] = cursor.connection.cursor()
                    reads[name].execute(self.sql[name], {"call_id": call_id})
        try:
            if "handler_errors" in reads:
                errors = [detail for (detail,) in reads["handler_errors"].fetchall()]
            else:
                errors = [row["error_detail"]] if row["error_detail"] else []
            flags = [row.get("category")]
            refused = []
            if call_id:
                flags += [found[0] for found in reads["call_flags"].fetchall()]
                refused = reads["refused"].fetchall()
        finally:
            for read in reads.values():
                read.close()
        if refused:
            # A refusal for missing credentials alone is the 401 challenge a sender answers
            # by retrying, so only wrong ones count.
            refused_category, wrong = refused[0]
            if wrong or refused_category != "credential-failure":
                flags.append(refused_category)
        category = call_category(cause, flags)
        bucket = hour_bucket(row["received_at"])
        with self._together(cursor):
            if refused:
                cursor.execute(self.sql["refused_done"], {"call_id": call_id})
            cursor.execute(
                self.sql["insert_disconnect"],
                {
                    "event_id": event_id,
                    "received_at": row["received_at"],
                    "cause": cause,
                    "from_number": row["from_number"],
                    "to_number": row["to_number"],
                    "error_id": row["error_id"],
                    "tag": clean_key(row["tag"]),
                    "search_text": search_text(row["payload"], row["error_message"], errors),
                    "category": category,
                },
            )
            cursor.execute(self.sql["bump_rollup"], {"cause": cause, "bucket_start": bucket})
            cursor.execute(self.sql["bump_total"], {"cause": cause})
            cursor.execute(
                self.sql["bump_category"], {"category": category, "bucket_start": bucket}
            )
            cursor.execute(self.sql["bump_category_total"], {"category": category})

    def _together(self, cursor: Any) -> contextlib.AbstractContextManager[Any]:
        """PostgreSQL: the statements run inside go to the server in one pipeline (their
        results are there once it ends); SQLite: nothing to save."""
        return contextlib.nullcontext() if self.is_sqlite else cursor.connection.pipeline()

    def _late_category(self, cursor: Any, row: Mapping[str, Any], call_id: str) -> None:
        """A failed callback stored after its call's disconnect: move the call (and its
        counts) to the stronger category."""
        cursor.execute(self.sql["call_disconnect"], {"call_id": call_id})
        found = cursor.fetchall()
        if not found:
            return
        event_id, old, cause, received_at = found[0]
        new = call_category(cause, [old, row["category"]])
        if new == old:
            return
        bucket = hour_bucket(received_at)
        with self._together(cursor):
            cursor.execute(self.sql["recategorise"], {"target_id": event_id, "new_category": new})
            cursor.execute(self.sql["unbump_category"], {"old_category": old, "bucket": bucket})
            cursor.execute(self.sql["unbump_category_total"], {"old_category": old})
            cursor.execute(self.sql["bump_category"], {"category": new, "bucket_start": bucket})
            cursor.execute(self.sql["bump_category_total"], {"category": new})

    def one_statement(self, rows: list[dict[str, Any]]) -> bool:
        """Whether :meth:`store_events` stores ``rows`` with a single statement and wants
        the connection in autocommit: on PostgreSQL, when no row has follow-up writes in
        its transaction (a disconnect's narrow row and counts, a late failure's category)."""
        return not self.is_sqlite and not any(
            row["event_type"] == "disconnect" or _calls_to_recategorise(row) for row in rows
        )

    def store_events(
        self,
        cursor: Any,
        rows: list[dict[str, Any]],
        each: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> list[CallbackResult]:
        """Store a batch; ``each(row)`` after each row's insert, before the commit.

        PostgreSQL: rows without follow-ups (:meth:`one_statement`) in one INSERT, which
        commits as it returns (so ``each`` runs before it); other batches in a transaction
        whose event inserts go in one pipeline (one round trip, not one per row).
        """
        if self.one_statement(rows):
            return self._store_in_one(cursor, rows, each)
        if self.is_sqlite or len(rows) == 1:
            results = []
            for row in rows:
                results.append(self.store_event(cursor, row))
                if each is not None:
                    each(row)
            return results
        cursor.executemany(self.sql["insert_event"], rows, returning=True)
        ids: list[int | None] = []
        while True:
            found = cursor.fetchall()
            ids.append(int(found[0][0]) if found else None)
            if not cursor.nextset():
                break
        results = []
        for row, event_id in zip(rows, ids, strict=True):
            if event_id is None:
                results.append(self._duplicate(cursor, row))
            else:
                self._disconnect_rows(cursor, row, event_id)
                results.append(INSERTED)
            if each is not None:
                each(row)
        return results

    def _store_in_one(
        self,
        cursor: Any,
        rows: list[dict[str, Any]],
        each: Callable[[Mapping[str, Any]], None] | None,
    ) -> list[CallbackResult]:
        from psycopg import RawCursor  # PostgreSQL only: not imported for SQLite

        if each is not None:
            for row in rows:
                each(row)
        values = [row[name] for row in rows for name in EVENT_COLUMNS]
        with RawCursor(cursor.connection) as raw:
            raw.execute(self.insert_rows_sql(len(rows)), values)
            inserted = {(route, digest) for _, route, digest in raw.fetchall()}
        results = []
        for row in rows:
            key = (row["route"], row["payload_hash"])
            if key in inserted:
                inserted.discard(key)  # a second copy in the same batch is a duplicate
                results.append(INSERTED)
            else:
                results.append(self._duplicate(cursor, row))
        return results

    def store_event(self, cursor: Any, row: Mapping[str, Any]) -> CallbackResult:
        if self.insert_event(cursor, row) is not None:
            return INSERTED
        return self._duplicate(cursor, row)

    def _duplicate(self, cursor: Any, row: Mapping[str, Any]) -> CallbackResult:
        # A concurrent (or earlier) copy won: answer what it answered.
        cursor.execute(
            self.sql["reply"], {"route": row["route"], "payload_hash": row["payload_hash"]}
        )
        return CallbackResult(Outcome.duplicate, reply_dict(cursor.fetchone()))
