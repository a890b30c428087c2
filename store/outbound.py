"""Outbound call attempts: recorded before the request is sent, settled after."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from .connections import Database
from .rows import canonical_json, clean_key, clean_text, page_size, with_json
from .schema import outbound_calls

UNSETTLED_OUTCOMES = ("pending", "unknown")
# The Voice API did not accept the call: nobody was called (see calls.outbound._outcome).
NOT_PLACED_OUTCOMES = ("failed", "rejected", "rate_limited", "unavailable")


class OutboundAttempts:
    """The ``outbound_calls`` table."""

    def __init__(self, database: Database) -> None:
        self.db = database
        self.insert = sqlite.insert if database.is_sqlite else postgresql.insert

    def record_outbound_attempt(self, attempt_id: str, request: Mapping[str, Any]) -> None:
        """Record an attempt before the request is sent (``request`` holds no secrets)."""
        now = time.time()
        stmt = self.insert(outbound_calls).values(
            attempt_id=clean_text(attempt_id),
            created_at=now,
            updated_at=now,
            request=canonical_json(dict(request)),
            outcome="pending",
        )
        with self.db.writing() as conn:
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
        stmt = self.insert(outbound_calls).values(
            attempt_id=clean_text(attempt_id),
            created_at=now,
            updated_at=now,
            request="{}",
            outcome=clean_text(outcome, 64),
            call_id=clean_key(call_id),
            error=clean_text(error),
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
        with self.db.writing() as conn:
            conn.execute(stmt)

    def outbound_for_call(self, call_id: str) -> dict[str, Any] | None:
        query = (
            select(outbound_calls)
            .where(outbound_calls.c.call_id == clean_key(call_id))
            .order_by(outbound_calls.c.created_at.desc())
            .limit(1)
        )
        return self._outbound_one(query)

    def outbound_attempt(self, attempt_id: str) -> dict[str, Any] | None:
        query = select(outbound_calls).where(outbound_calls.c.attempt_id == clean_text(attempt_id))
        return self._outbound_one(query)

    def unsettled_outbound(self, limit: int = 100) -> list[dict[str, Any]]:
        """Attempts still "pending" or settled as "unknown" (to reconcile), oldest first."""
        query = (
            select(outbound_calls)
            .where(outbound_calls.c.outcome.in_(UNSETTLED_OUTCOMES))
            .order_by(outbound_calls.c.created_at, outbound_calls.c.attempt_id)
            .limit(page_size(limit))
        )
        with self.db.reading() as conn:
            return [with_json(row, "request") for row in conn.execute(query).mappings()]

    def not_placed(self, since: float | None = None, until: float | None = None) -> int:
        """Attempts the Voice API did not accept, created in [since, until)."""
        query = select(func.count()).where(_not_placed(since, until))
        with self.db.reading() as conn:
            return int(conn.execute(query).scalar_one())

    def last_not_placed(self, since: float) -> dict[str, Any] | None:
        """The newest attempt not accepted since ``since`` (its outcome and error), or None."""
        query = (
            select(outbound_calls)
            .where(_not_placed(since, None))
            .order_by(outbound_calls.c.created_at.desc())
            .limit(1)
        )
        return self._outbound_one(query)

    def _outbound_one(self, query: Any) -> dict[str, Any] | None:
        with self.db.reading() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else with_json(row, "request")


def _not_placed(since: float | None, until: float | None) -> Any:
    t = outbound_calls
    where = t.c.outcome.in_(NOT_PLACED_OUTCOMES)
    if since is not None:
        where = where & (t.c.created_at >= float(since))
    if until is not None:
        where = where & (t.c.created_at < float(until))
    return where
