"""Shared counters (rate limits) and retention (purge)."""

from __future__ import annotations

import hashlib
import time

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from .connections import Database
from .engine import long_statements
from .rows import clean_text
from .schema import (
    KEY_CHARS,
    alert_counts,
    alert_firings,
    disconnects,
    events,
    outbound_calls,
    rate_limits,
    rejected_requests,
)

RATE_LIMIT_PRUNE_SECONDS = 60.0
PURGE_BATCH = 5000


def _bucket(key: str) -> str:
    """The stored key of a counter: long keys end in their hash, so they stay distinct."""
    bucket_key = str(key)
    if len(bucket_key) > KEY_CHARS:
        digest = hashlib.sha256(bucket_key.encode("utf-8", "replace")).hexdigest()
        bucket_key = bucket_key[: KEY_CHARS - 65] + ":" + digest
    return bucket_key


class Housekeeping:
    """Rate-limit windows, and deleting what is past retention."""

    def __init__(self, database: Database) -> None:
        self.db = database
        self.insert = sqlite.insert if database.is_sqlite else postgresql.insert
        self._next_rate_prune = 0.0

    def hit_rate_limit(
        self, key: str, window_seconds: int, limit: int, now: float | None = None
    ) -> bool:
        """Count one hit on ``key`` in the current fixed window; False once over ``limit``.

        Atomic across threads, workers and servers sharing the database.
        """
        now = time.time() if now is None else float(now)
        window = max(1, int(window_seconds))
        start = int(now // window) * window
        stmt = self.insert(rate_limits).values(
            bucket_key=clean_text(_bucket(key)),
            window_start=start,
            hits=1,
            expires_at=start + window,
        )
        upsert = stmt.on_conflict_do_update(
            index_elements=["bucket_key", "window_start"],
            set_={"hits": rate_limits.c.hits + 1},
        ).returning(rate_limits.c.hits)
        with self.db.writing() as conn:
            hits = int(conn.execute(upsert).scalar_one())
            if time.monotonic() >= self._next_rate_prune:
                self._next_rate_prune = time.monotonic() + RATE_LIMIT_PRUNE_SECONDS
                conn.execute(delete(rate_limits).where(rate_limits.c.expires_at < now))
        return hits <= limit

    def refund_rate_limit(self, key: str, window_seconds: int, now: float | None = None) -> None:
        """Take back one hit ``hit_rate_limit`` counted on ``key`` in the window of ``now``."""
        now = time.time() if now is None else float(now)
        window = max(1, int(window_seconds))
        stmt = (
            rate_limits.update()
            .where(
                rate_limits.c.bucket_key == clean_text(_bucket(key)),
                rate_limits.c.window_start == int(now // window) * window,
                rate_limits.c.hits > 0,
            )
            .values(hits=rate_limits.c.hits - 1)
        )
        with self.db.writing() as conn:
            conn.execute(stmt)

    def rate_limit_hits(self, key: str, window_seconds: int, now: float | None = None) -> int:
        """The hits ``hit_rate_limit`` has counted on ``key`` in the current window; counts
        nothing (a check before a credential is compared, without spending an attempt)."""
        now = time.time() if now is None else float(now)
        window = max(1, int(window_seconds))
        query = select(rate_limits.c.hits).where(
            rate_limits.c.bucket_key == clean_text(_bucket(key)),
            rate_limits.c.window_start == int(now // window) * window,
        )
        with self.db.reading() as conn:
            return int(conn.execute(query).scalar() or 0)

    # --- retention and health ---------------------------------------------------------------

    def purge(self, older_than_days: float) -> int:
        """Delete events, rejected requests, outbound attempts and alert records older than
        that.

        Returns the number of rows deleted.  The disconnect rollup keeps its history: it
        holds only per-cause hourly counts (no numbers), so charts still cover purged time.
        Events go in batches so SQLite's write lock is never held for long.
        """
        # Exempt from the statement timeout: a batch's delete finds its rows by age, and
        # on a large store that can take longer than a callback may wait (nobody waits here).
        with long_statements():
            return self._purge(time.time() - float(older_than_days) * 86400.0)

    def _purge(self, cutoff: float) -> int:
        total = 0
        while True:
            doomed = (
                select(events.c.id)
                .where(events.c.received_at < cutoff)
                .order_by(events.c.id)
                .limit(PURGE_BATCH)
            )
            with self.db.writing() as conn:
                conn.execute(delete(disconnects).where(disconnects.c.event_id.in_(doomed)))
                removed = conn.execute(delete(events).where(events.c.id.in_(doomed))).rowcount
            total += removed
            if removed < PURGE_BATCH:
                break
        with self.db.writing() as conn:
            for table, column in (
                (rejected_requests, rejected_requests.c.received_at),
                (outbound_calls, outbound_calls.c.created_at),
                (alert_counts, alert_counts.c.bucket_start),
                (alert_firings, alert_firings.c.window_start),
            ):
                total += conn.execute(delete(table).where(column < cutoff)).rowcount
            conn.execute(delete(rate_limits).where(rate_limits.c.expires_at < time.time()))
        return total
