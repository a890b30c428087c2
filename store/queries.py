"""The dashboard's reads (events, disconnects, counts) and the log of rejected requests."""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, literal_column, select, union

from .connections import Database
from .rows import clean_int, clean_key, clean_text, hour_bucket, page_size, with_json
from .schema import (
    category_rollup,
    category_totals,
    disconnect_rollup,
    disconnect_totals,
    disconnects,
    events,
    rejected_requests,
)

log = logging.getLogger(__name__)

REJECTED_BODY_BYTES = 2048
REJECTED_REASON_CHARS = 1000


class Queries:
    """Reads for the dashboard and the API; each raises StoreUnavailable when it cannot."""

    def __init__(self, database: Database, rejected_limit: int) -> None:
        self.db = database
        self.rejected_limit = rejected_limit

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
                "route": clean_key(route),
                "method": clean_text(method, 16),
                "status": clean_int(status),
                "reason": clean_text(reason, REJECTED_REASON_CHARS),
                "body": clean_text(raw.decode("utf-8", errors="replace")),
                "remote_addr": clean_text(remote_addr, 64),
            }
            newest_kept = (
                select(rejected_requests.c.id)
                .order_by(rejected_requests.c.id.desc())
                .limit(1)
                .offset(bindparam("keep"))
                .scalar_subquery()
            )
            with self.db.writing(throttle=True) as conn:
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
        query = query.limit(page_size(limit))
        with self.db.reading() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    # --- events and disconnects ------------------------------------------------------------------------------

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
            select(events)
            .where(column == clean_key(value))
            .order_by(events.c.received_at, events.c.id)
        )
        with self.db.reading() as conn:
            return [with_json(row, "payload") for row in conn.execute(query).mappings()]

    def disconnects(
        self,
        *,
        causes: list[str] | None = None,
        categories: list[str] | None = None,
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

        ``causes`` or ``categories`` (when given) win over ``exclude_hangup``, which leaves
        out the calls that need no attention (category ``hangup``: a normal hangup with no
        failure of ours); a missing cause is "unknown".  ``since`` is inclusive, ``until``
        exclusive; ``number`` matches from or to.
        """
        d = disconnects
        page = page_size(limit)
        where: list[Any] = []
        if causes is not None:
            where.append(d.c.cause.in_([clean_key(c) for c in causes]))
        if categories is not None:
            where.append(d.c.category.in_([clean_key(c) for c in categories]))
        if causes is None and categories is None and exclude_hangup:
            # A literal, so SQLite and PostgreSQL can use the partial index.
            where.append(d.c.category != literal_column("'hangup'"))
        if since is not None:
            where.append(d.c.received_at >= float(since))
        if until is not None:
            where.append(d.c.received_at < float(until))
        if tag is not None:
            where += [d.c.tag == clean_key(tag), events.c.tag == clean_text(tag)]
        if error_id is not None:
            where.append(d.c.error_id == clean_key(error_id))
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
            key = clean_key(number)
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
        with self.db.reading() as conn:
            rows = [with_json(row, "payload") for row in conn.execute(query).mappings()]
            if rows:
                # The page's categories, from the narrow table (events has no such column).
                found = select(d.c.event_id, d.c.category).where(
                    d.c.event_id.in_([row["id"] for row in rows])
                )
                category = {event_id: name for event_id, name in conn.execute(found)}
                for row in rows:
                    row["category"] = category.get(row["id"]) or row.get("cause") or "unknown"
            return rows

    def call_failures(self, call_ids: list[str]) -> dict[str, str]:
        """The latest handler error (traceback) of each of these calls that has one: a few
        rows per call, through ix_events_call_id."""
        if not call_ids:
            return {}
        query = (
            select(events.c.call_id, events.c.error_detail)
            .where(
                events.c.call_id.in_([clean_key(c) for c in call_ids]),
                events.c.category.in_(["handler-error", "invalid-reply"]),
                events.c.error_detail.is_not(None),
            )
            .order_by(events.c.id)
        )
        with self.db.reading() as conn:
            return {str(call): str(detail) for call, detail in conn.execute(query)}

    def category_counts(
        self, since: float | None = None, until: float | None = None
    ) -> dict[str, int]:
        """Stored disconnects per category, from the category rollups (as ``cause_counts``)."""
        return self._counts(category_totals, category_rollup, "category", since, until)

    def categories_over_time(
        self,
        since: float | None = None,
        until: float | None = None,
        *,
        exclude_hangup: bool = True,
    ) -> list[tuple[int, str, int]]:
        """(hour bucket start, category, count) from the category rollup, oldest first."""
        return self._over_time(category_rollup, "category", since, until, exclude_hangup)

    def cause_counts(
        self, since: float | None = None, until: float | None = None
    ) -> dict[str, int]:
        """Disconnects per cause, from the rollups (never from the events).

        All time (no bounds) reads the per-cause totals.  With bounds the hourly rollup is
        summed: ``since`` includes its whole hour, ``until`` excludes hours starting at or
        after it.
        """
        return self._counts(disconnect_totals, disconnect_rollup, "cause", since, until)

    def failures_over_time(
        self,
        since: float | None = None,
        until: float | None = None,
        *,
        exclude_hangup: bool = True,
    ) -> list[tuple[int, str, int]]:
        """(hour bucket start, cause, count) from the rollup, oldest first."""
        return self._over_time(disconnect_rollup, "cause", since, until, exclude_hangup)

    def _counts(
        self, totals: Any, rollup: Any, key: str, since: float | None, until: float | None
    ) -> dict[str, int]:
        if since is None and until is None:
            query: Any = select(totals.c[key], totals.c.count)
        else:
            name = rollup.c[key]
            query = select(name, func.sum(rollup.c.count)).group_by(name)
            query = _bucket_range(query, since, until, rollup)
        with self.db.reading() as conn:
            return {name: int(total) for name, total in conn.execute(query) if total}

    def _over_time(
        self, rollup: Any, key: str, since: float | None, until: float | None, exclude_hangup: bool
    ) -> list[tuple[int, str, int]]:
        r, name = rollup, rollup.c[key]
        query = select(r.c.bucket_start, name, r.c.count).order_by(r.c.bucket_start, name)
        query = _bucket_range(query, since, until, r)
        if exclude_hangup:
            query = query.where(name != "hangup")
        with self.db.reading() as conn:
            return [(int(b), str(c), int(n)) for b, c, n in conn.execute(query) if n]


def _bucket_range(query: Any, since: float | None, until: float | None, r: Any) -> Any:
    if since is not None:
        query = query.where(r.c.bucket_start >= hour_bucket(float(since)))
    if until is not None:
        query = query.where(r.c.bucket_start < float(until))
    return query
