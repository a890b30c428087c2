"""The dashboard's reads (events, disconnects, counts) and the log of rejected requests."""

from __future__ import annotations

import logging
import time
from typing import Any, NamedTuple

from sqlalchemy import (
    Integer,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal_column,
    select,
    union,
)

from .connections import Database
from .rows import MAX_PAGE, clean_int, clean_key, clean_text, hour_bucket, page_size, with_json
from .schema import (
    category_rollup,
    category_totals,
    disconnect_rollup,
    disconnect_totals,
    disconnects,
    events,
    rejected_requests,
)
from .search import (
    MIN_CHARS,
    PROBE_LIMIT,
    digits,
    fts,
    postgres_match,
    query_digit_runs,
    rarest_digit_run,
    sqlite_match,
)

log = logging.getLogger(__name__)

REJECTED_BODY_BYTES = 2048
REJECTED_REASON_CHARS = 1000


class StoredCallbacks(NamedTuple):
    """How many callbacks the store holds, and when the newest arrived (None: none yet)."""

    total: int
    newest_received_at: float | None


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

    def stored_callbacks(self) -> StoredCallbacks:
        """The number of stored callbacks and the newest one's arrival (``flask store status``)."""
        with self.db.reading() as conn:
            count, newest = conn.execute(
                select(func.count(), func.max(events.c.received_at)).select_from(events)
            ).one()
        return StoredCallbacks(int(count), None if newest is None else float(newest))

    def events_for_call(self, call_id: str) -> list[dict[str, Any]]:
        """Every stored callback of one call, in arrival order."""
        return self._events_where(events.c.call_id, call_id)

    def events_for_parent_call(self, parent_call_id: str) -> list[dict[str, Any]]:
        """The callbacks of every B-leg a call's <Transfer> created, in arrival order."""
        return self._events_where(events.c.parent_call_id, parent_call_id)

    def events_for_conference(self, conference_id: str) -> list[dict[str, Any]]:
        """Every stored callback that names this conference, in arrival order."""
        return self._events_where(events.c.conference_id, conference_id)

    def replies_naming(self, call_id: str, since: float, until: float) -> list[dict[str, Any]]:
        """Callbacks received between ``since`` and ``until`` whose stored reply contains
        ``call_id`` (a ``<Bridge>`` to that call), in arrival order: the window keeps the
        scan to the index range of that call's lifetime."""
        needle = clean_key(call_id) or ""
        pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = (
            select(events)
            .where(events.c.received_at >= since, events.c.received_at <= until)
            .where(events.c.reply_body.like(pattern, escape="\\"))
            .order_by(events.c.received_at, events.c.id)
            .limit(MAX_PAGE)
        )
        with self.db.reading() as conn:
            return [with_json(row, "payload") for row in conn.execute(query).mappings()]

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
        search: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Disconnect events, newest first; pass the last id as ``before_id`` for the next page.

        ``causes`` or ``categories`` (when given) win over ``exclude_hangup``, which leaves
        out the calls that need no attention (category ``hangup``: a normal hangup with no
        failure of ours); a missing cause is "unknown".  ``since`` is inclusive, ``until``
        exclusive; ``number`` matches from or to; ``search`` is a substring of the search
        text (``store.search``, at least ``MIN_CHARS`` characters).
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
        if tag is not None:
            where += [d.c.tag == clean_key(tag), events.c.tag == clean_text(tag)]
        if error_id is not None:
            where.append(d.c.error_id == clean_key(error_id))
        source: Any = d.join(events, events.c.id == d.c.event_id) if tag is not None else d
        text_query = None
        if search is not None:
            text_query = clean_text(search) or ""
            if len(text_query) < MIN_CHARS:
                raise ValueError(f"search needs at least {MIN_CHARS} characters")
        window = []
        if since is not None:
            window.append(d.c.received_at >= float(since))
        if until is not None:
            window.append(d.c.received_at < float(until))
        with self.db.reading() as conn:
            key: Any = d.c.event_id
            if text_query is not None:
                searched = self._search(conn, text_query, source, number is None, where)
                if searched is None:
                    return []
                source, key = searched
            if before_id is not None:
                where.append(key < int(before_id))
            if number is None:
                ids = _newest_ids(conn, source, key, where, window, page, since, until)
            else:
                # One index-driven, limited walk per side (from, to), then the newest of
                # both: an OR here lets the planner scan every disconnect.  (SQLite without
                # ANALYZE statistics, as the store leaves it, takes the number indexes.)
                number_key = clean_key(number)
                sides = [
                    select(d.c.event_id)
                    .select_from(source)
                    .where(*where, *window, column == number_key)
                    .order_by(d.c.event_id.desc())
                    .limit(page)
                    .subquery()
                    for column in (d.c.from_number, d.c.to_number)
                ]
                both = union(*(select(side.c.event_id) for side in sides)).subquery()
                ids = [int(i) for (i,) in conn.execute(select(both.c.event_id))]
                ids = sorted(ids, reverse=True)[:page]
            if not ids:
                return []
            query = select(events).where(events.c.id.in_(ids)).order_by(events.c.id.desc())
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

    def _search(
        self, conn: Any, text_query: str, source: Any, walk: bool, where: list[Any]
    ) -> tuple[Any, Any] | None:
        """Add the search's conditions to ``where``; the source and key to walk newest first
        (``walk``: no number filter, the search's index drives), or None: nothing matches."""
        d = disconnects
        if not self.db.is_sqlite:
            where.append(postgres_match(d.c.search_text, text_query))
            return source, d.c.event_id
        runs = query_digit_runs(text_query)
        run, count = rarest_digit_run(conn, runs) if runs else ("", PROBE_LIMIT)
        if count == 0:
            return None
        if count < PROBE_LIMIT:
            # A number: the few entries of its rarest run of digits, each checked whole.
            where.append(func.instr(d.c.search_text, text_query) > 0)
            if walk:
                where.append(digits.c.gram == run)
                return digits.join(source, d.c.event_id == digits.c.event_id), digits.c.event_id
            where.append(d.c.event_id.in_(select(digits.c.event_id).where(digits.c.gram == run)))
            return source, d.c.event_id
        if walk:  # newest match first from the index: the page stops the walk
            where.append(sqlite_match(text_query))
            return fts.join(source, d.c.event_id == fts.c.rowid), fts.c.rowid
        where.append(d.c.event_id.in_(select(fts.c.rowid).where(sqlite_match(text_query))))
        return source, d.c.event_id

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

    def failures_by_bucket(
        self, since: float, until: float, bucket: int, *, exclude_hangup: bool = True
    ) -> list[tuple[int, str, int]]:
        """(bucket start, category, count) counted from the disconnects themselves, for
        buckets shorter than the rollup's hour.  It reads one index entry per disconnect in the
        range (``ix_disconnects_window``), so it is meant for short ranges."""
        d = disconnects
        size = max(1, int(bucket))
        first = int(float(since) // size * size)
        offset = (d.c.received_at - first) / size
        # Both whole and non-negative from here: CAST truncates on SQLite, rounds on PostgreSQL.
        index = cast(offset, Integer) if self.db.is_sqlite else func.floor(offset)
        index = index.label("bucket")
        query = (
            select(index, d.c.category, func.count())
            .where(d.c.received_at >= float(since), d.c.received_at < float(until))
            .group_by(index, d.c.category)
        )
        if exclude_hangup:
            query = query.where(d.c.category != literal_column("'hangup'"))
        with self.db.reading() as conn:
            return [(first + int(b) * size, str(c), int(n)) for b, c, n in conn.execute(query)]


# Rows read newest first before a time window's page falls back to the window's index.
WINDOW_PROBE = 400


def _newest_ids(
    conn: Any,
    source: Any,
    key: Any,
    where: list[Any],
    window: list[Any],
    page: int,
    since: float | None,
    until: float | None,
) -> list[int]:
    """The ids of the newest ``page`` rows of ``source`` that match, newest first.

    A time window read through its own index costs one entry per disconnect in the window
    (a busy day is many), then a sort.  The common window ends now ("last 24 hours"), so
    first the newest ``WINDOW_PROBE`` matching rows are read in id order and their times
    checked: when that fills the page (or there are no more rows) it is the answer, since
    every row not read is older than all that were.  Otherwise the window's index decides.
    """
    newest = select(key).select_from(source).order_by(key.desc())
    if window:
        # At most WINDOW_PROBE entries of the filter's own index, newest first.
        probe = (
            select(key.label("id"), disconnects.c.received_at.label("at"))
            .select_from(source)
            .where(*where)
            .order_by(key.desc())
            .limit(WINDOW_PROBE)
            .subquery()
        )
        in_window = [probe.c.at >= since] if since is not None else []
        in_window += [probe.c.at < until] if until is not None else []
        hits = [
            int(i)
            for (i,) in conn.execute(
                select(probe.c.id).where(*in_window).order_by(probe.c.id.desc()).limit(page)
            )
        ]
        if len(hits) >= page:
            return hits
        if conn.execute(select(func.count()).select_from(probe)).scalar_one() < WINDOW_PROBE:
            return hits  # every matching row was read
    return [int(i) for (i,) in conn.execute(newest.where(*where, *window).limit(page))]


def _bucket_range(query: Any, since: float | None, until: float | None, r: Any) -> Any:
    if since is not None:
        query = query.where(r.c.bucket_start >= hour_bucket(float(since)))
    if until is not None:
        query = query.where(r.c.bucket_start < float(until))
    return query
