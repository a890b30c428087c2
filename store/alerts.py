"""Alert rules' shared state (schema v5): failure counts, and which alerts were sent.

Counts are added in batches (one transaction for a worker's counts since its last batch),
summed over the buckets of a rule's period, and an alert is claimed with an insert that
does nothing when the (rule, window) row exists: exactly one evaluator, in any worker of any
server sharing the database, gets True and sends it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .connections import Database
from .rows import clean_text
from .schema import alert_counts, alert_firings


class AlertState:
    """Failure counts per (category, bucket) and one row per alert sent."""

    def __init__(self, database: Database) -> None:
        self.db = database
        self.insert = sqlite.insert if database.is_sqlite else postgresql.insert

    def add_alert_counts(self, counts: Mapping[tuple[str, int], int]) -> None:
        """Add ``{(category, bucket_start): count}`` to the shared counts, in one transaction."""
        if not counts:
            return
        with self.db.writing() as conn:
            for (category, bucket), count in sorted(counts.items()):
                stmt = self.insert(alert_counts).values(
                    category=clean_text(category), bucket_start=int(bucket), count=int(count)
                )
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["category", "bucket_start"],
                        set_={"count": alert_counts.c.count + stmt.excluded.count},
                    )
                )

    def alert_count(self, category: str, since: float) -> int:
        """The failures of ``category`` counted in buckets that start at or after ``since``."""
        query = select(func.coalesce(func.sum(alert_counts.c.count), 0)).where(
            alert_counts.c.category == clean_text(category),
            alert_counts.c.bucket_start >= int(since),
        )
        with self.db.reading() as conn:
            return int(conn.execute(query).scalar_one())

    def claim_alert(self, rule: str, window_start: int, count: int) -> bool:
        """True for the one caller that records ``rule``'s alert of that window first."""
        stmt = (
            self.insert(alert_firings)
            .values(
                rule=clean_text(rule),
                window_start=int(window_start),
                fired_at=time.time(),
                count=int(count),
                status="sending",
            )
            .on_conflict_do_nothing(index_elements=["rule", "window_start"])
            .returning(alert_firings.c.rule)  # a row only when inserted (rowcount is not kept)
        )
        with self.db.writing() as conn:
            return conn.execute(stmt).first() is not None

    def finish_alert(self, rule: str, window_start: int, status: str) -> None:
        """Record whether the claimed alert reached the webhook (``sent`` or ``failed``)."""
        stmt = (
            update(alert_firings)
            .where(
                alert_firings.c.rule == clean_text(rule),
                alert_firings.c.window_start == int(window_start),
            )
            .values(status=status)
        )
        with self.db.writing() as conn:
            conn.execute(stmt)

    def alert_firings(self, limit: int = 100) -> list[dict[str, Any]]:
        """The alerts claimed lately, newest first."""
        query = select(alert_firings).order_by(alert_firings.c.fired_at.desc()).limit(limit)
        with self.db.reading() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def prune_alerts(self, counts_before: float, firings_before: float) -> None:
        """Forget counts older than any rule's period, and alerts of windows that started
        before ``firings_before``."""
        with self.db.writing() as conn:
            conn.execute(delete(alert_counts).where(alert_counts.c.bucket_start < counts_before))
            conn.execute(delete(alert_firings).where(alert_firings.c.window_start < firings_before))
