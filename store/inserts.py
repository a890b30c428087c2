"""The callback insert: one event row (plus a disconnect's narrow row and counts).

Statements compiled once per Store for its dialect and run on a DBAPI cursor, with no
per-request SQLAlchemy work: the group commit and the spool replay share them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import bindparam, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from .rows import EVENT_COLUMNS, clean_key, hour_bucket
from .schema import disconnect_rollup, disconnect_totals, disconnects, events
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
        bump = ins(disconnect_rollup).values(
            cause=bindparam("cause"),
            bucket_start=bindparam("bucket_start"),
            count=literal_column("1"),
        )
        bump = bump.on_conflict_do_update(
            index_elements=["cause", "bucket_start"],
            set_={"count": disconnect_rollup.c.count + literal_column("1")},
        )
        handler_errors = (
            select(events.c.error_detail)
            .where(events.c.call_id == bindparam("call_id"), events.c.error_detail.is_not(None))
            .order_by(events.c.id)
        )
        total = ins(disconnect_totals).values(cause=bindparam("cause"), count=literal_column("1"))
        total = total.on_conflict_do_update(
            index_elements=["cause"],
            set_={"count": disconnect_totals.c.count + literal_column("1")},
        )
        compiled = {
            "insert_event": insert_event_plain.returning(events.c.id),
            "insert_event_plain": insert_event_plain,
            "reply": reply,
            "insert_disconnect": insert_disconnect,
            "bump_rollup": bump,
            "bump_total": total,
            "handler_errors": handler_errors,
        }
        self.sql = {name: str(stmt.compile(dialect=dialect)) for name, stmt in compiled.items()}
        self.sql["handler_errors"] += f" LIMIT {HANDLER_ERRORS}"

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
        if row["event_type"] == "disconnect":
            cause = row["cause"] or "unknown"
            errors: list[str] = []
            if row["call_id"] is not None:
                cursor.execute(self.sql["handler_errors"], {"call_id": row["call_id"]})
                errors = [detail for (detail,) in cursor.fetchall()]
            elif row["error_detail"]:
                errors = [row["error_detail"]]
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
                },
            )
            cursor.execute(
                self.sql["bump_rollup"],
                {"cause": cause, "bucket_start": hour_bucket(row["received_at"])},
            )
            cursor.execute(self.sql["bump_total"], {"cause": cause})

    def store_events(
        self,
        cursor: Any,
        rows: list[dict[str, Any]],
        each: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> list[CallbackResult]:
        """Store a batch; ``each(row)`` after each row's insert.

        PostgreSQL: the event inserts go in one pipeline (one round trip, not one per row).
        """
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
