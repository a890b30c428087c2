"""Refused callbacks: the credential-failure log and the calls refused callbacks named.

Both tables are bounded (the oldest rows by ``last_seen`` go first), because the requests
they record are not authenticated.  Never a password: the log keeps the username tried.

* ``credential_failures``: one row per (route, source address, username tried, kind), with
  first and last seen and a count.  ``kind`` is ``wrong`` (credentials that do not match),
  ``malformed`` (an Authorization header that is not HTTP Basic) or ``missing`` (none sent).
  A request without credentials is also the first half of every 401 challenge, so it is
  logged only when it is known to have cost a call: a refused ``disconnect`` at once (its
  call counts once the challenge's grace has passed without it), any other route when the
  call's disconnect says that route's 401 ended it (``categories.refused_route``).
* ``refused_calls``: the call a refused callback's payload names, so the call can be found:
  category ``credential-failure`` or ``rejected-payload``.  A call whose only refusal was
  a disconnect without credentials counts once the sender has had ``CHALLENGE_GRACE``
  seconds to retry with them and its disconnect is still not stored.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from .categories import CREDENTIAL_FAILURE
from .connections import Database
from .rows import clean_key, clean_text, hour_bucket, page_size
from .schema import credential_failures, refused_calls

log = logging.getLogger(__name__)

CREDENTIAL_LOG_LIMIT = 200
REFUSED_CALLS_LIMIT = 1000
USERNAME_CHARS = 64
ERROR_CHARS = 2000
CHALLENGE_GRACE = 5.0  # seconds a sender has to answer the 401 challenge


class Refusals:
    """Writes (never raise) and reads of the refused-callback logs."""

    def __init__(
        self,
        database: Database,
        *,
        log_limit: int = CREDENTIAL_LOG_LIMIT,
        calls_limit: int = REFUSED_CALLS_LIMIT,
    ) -> None:
        self.db = database
        self.log_limit = log_limit
        self.calls_limit = calls_limit

    def _insert(self) -> Any:
        return sqlite.insert if self.db.is_sqlite else postgresql.insert

    def record_refusal(
        self,
        *,
        route: str,
        remote_addr: str | None,
        username: str | None,
        kind: str | None,
        payload: dict[str, Any] | None,
        category: str = CREDENTIAL_FAILURE,
        now: float | None = None,
        call_row: bool = True,
    ) -> None:
        """Count one refused callback; ``kind`` None logs the call only (a bad payload),
        ``call_row`` False the log line only (the call's disconnect is stored)."""
        now = time.time() if now is None else now
        payload = payload if isinstance(payload, dict) else {}
        call_id = (
            clean_key(payload.get("callId")) if isinstance(payload.get("callId"), str) else None
        )
        try:
            with self.db.writing(throttle=True) as conn:
                if kind is not None:
                    self._log(conn, route, remote_addr, username, kind, call_id, now)
                if call_id is not None and call_row:
                    self._call(conn, route, call_id, kind, category, payload, now)
        except Exception:
            log.warning("could not log a refused %s callback", route, exc_info=True)

    def _log(
        self,
        conn: Any,
        route: str,
        remote_addr: str | None,
        username: str | None,
        kind: str,
        call_id: str | None,
        now: float,
    ) -> None:
        t = credential_failures
        row = {
            "route": clean_key(route) or "",
            "remote_addr": clean_text(remote_addr, 64) or "",
            "username": clean_text(username, USERNAME_CHARS) or "",
            "kind": kind,
            "first_seen": now,
            "last_seen": now,
            "count": 1,
            "last_call_id": call_id,
        }
        upsert = self._insert()(t).values(row)
        upsert = upsert.on_conflict_do_update(
            index_elements=["route", "remote_addr", "username", "kind"],
            set_={
                "last_seen": upsert.excluded.last_seen,
                "count": t.c.count + 1,
                "last_call_id": func.coalesce(upsert.excluded.last_call_id, t.c.last_call_id),
            },
        )
        conn.execute(upsert)
        _trim(conn, t, t.c.last_seen, self.log_limit)

    def _call(
        self,
        conn: Any,
        route: str,
        call_id: str,
        kind: str | None,
        category: str,
        payload: dict[str, Any],
        now: float,
    ) -> None:
        t = refused_calls
        wrong = 1 if kind in ("wrong", "malformed") else 0
        row = {
            "call_id": call_id,
            "category": category,
            "route": clean_key(route) or "",
            "first_seen": now,
            "last_seen": now,
            "count": 1,
            "wrong": wrong,
            "cause": _text(payload.get("cause")),
            "from_number": _text(payload.get("from")),
            "to_number": _text(payload.get("to")),
            "disconnected": 0,
            "error_message": clean_text(payload.get("errorMessage"), ERROR_CHARS)
            if isinstance(payload.get("errorMessage"), str)
            else None,
        }
        upsert = self._insert()(t).values(row)
        upsert = upsert.on_conflict_do_update(
            index_elements=["call_id"],
            set_={
                "last_seen": upsert.excluded.last_seen,
                "count": t.c.count + 1,
                "wrong": func.max(t.c.wrong, upsert.excluded.wrong)
                if self.db.is_sqlite
                else func.greatest(t.c.wrong, upsert.excluded.wrong),
                "route": upsert.excluded.route,
                "cause": func.coalesce(upsert.excluded.cause, t.c.cause),
                "from_number": func.coalesce(t.c.from_number, upsert.excluded.from_number),
                "to_number": func.coalesce(t.c.to_number, upsert.excluded.to_number),
                "error_message": func.coalesce(upsert.excluded.error_message, t.c.error_message),
            },
        )
        conn.execute(upsert)
        _trim(conn, t, t.c.last_seen, self.calls_limit)

    # --- reads -------------------------------------------------------------------------

    def credential_failures(self, limit: int = 200) -> list[dict[str, Any]]:
        """The credential-failure log, most recently seen first."""
        t = credential_failures
        query = select(t).order_by(t.c.last_seen.desc(), t.c.id.desc()).limit(page_size(limit))
        with self.db.reading() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def refusals_since(self, since: float, now: float | None = None) -> dict[str, Any] | None:
        """The latest credential failure seen at or after ``since`` that needs an operator
        (wrong or malformed credentials, a call ended by a callback sent without them, or a
        call's disconnect refused for lack of them), or None.  Reads two bounded tables.
        ``kinds`` lists the kinds seen since (missing, wrong, malformed)."""
        now = time.time() if now is None else now
        t = credential_failures
        # A disconnect without credentials may be a challenge's first half: its call says.
        logged = and_(t.c.last_seen >= since, or_(t.c.kind != "missing", t.c.route != "disconnect"))
        wrong = select(t).where(logged).order_by(t.c.last_seen.desc()).limit(1)
        c = refused_calls
        unanswered = (
            select(c)
            .where(
                c.c.last_seen >= since,
                c.c.category == CREDENTIAL_FAILURE,
                _counts(now),
            )
            .order_by(c.c.last_seen.desc())
            .limit(1)
        )
        kinds = select(t.c.kind).where(logged).distinct()
        with self.db.reading() as conn:
            found = conn.execute(wrong).mappings().first()
            call = conn.execute(unanswered).mappings().first()
            seen = {str(kind) for (kind,) in conn.execute(kinds)}
        rows = [dict(row) for row in (found, call) if row is not None]
        if not rows:
            return None
        # The latest refusal, whichever log keeps it: the banner's words follow it.
        latest = max(rows, key=lambda row: float(row["last_seen"]))
        if call is not None:
            seen.add("wrong" if call["wrong"] else "missing")
        latest["kinds"] = sorted(seen)
        return latest

    def refused_calls(
        self,
        *,
        categories: list[str] | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        now: float | None = None,
    ) -> list[dict[str, Any]]:
        """Calls whose callbacks were refused and whose disconnect was never stored, newest
        first (a refusal they recovered from, the 401 challenge, is left out)."""
        c = refused_calls
        query = select(c).where(_counts(time.time() if now is None else now))
        query = _window(query, categories, since, until)
        query = query.order_by(c.c.last_seen.desc()).limit(page_size(limit))
        with self.db.reading() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def refused_call(self, call_id: str) -> dict[str, Any] | None:
        c = refused_calls
        with self.db.reading() as conn:
            row = conn.execute(select(c).where(c.c.call_id == clean_key(call_id))).mappings()
            found = row.first()
            return dict(found) if found is not None else None

    def refused_counts(
        self, since: float | None = None, until: float | None = None, now: float | None = None
    ) -> dict[str, int]:
        """Refused calls without a stored disconnect, per category (they have no row in the
        disconnect counts)."""
        c = refused_calls
        query = select(c.c.category, func.count()).where(
            _counts(time.time() if now is None else now)
        )
        query = _window(query, None, since, until).group_by(c.c.category)
        with self.db.reading() as conn:
            return {str(name): int(n) for name, n in conn.execute(query)}

    def refused_over_time(self, since: float, until: float) -> list[tuple[int, str, int]]:
        """(hour bucket start, category, count) of the same calls, for the chart."""
        c = refused_calls
        query = select(c.c.last_seen, c.c.category).where(_counts(time.time()))
        query = _window(query, None, since, until)
        buckets: dict[tuple[int, str], int] = {}
        with self.db.reading() as conn:
            for seen, category in conn.execute(query):
                key = (hour_bucket(float(seen)), str(category))
                buckets[key] = buckets.get(key, 0) + 1
        return sorted((bucket, category, n) for (bucket, category), n in buckets.items())


def _counts(now: float) -> Any:
    """A refused call that still needs attention (see the module doc)."""
    c = refused_calls
    return and_(
        c.c.disconnected == 0,
        or_(
            c.c.category != CREDENTIAL_FAILURE,
            c.c.wrong == 1,
            c.c.first_seen <= now - CHALLENGE_GRACE,
        ),
    )


def _window(
    query: Any, categories: list[str] | None, since: float | None, until: float | None
) -> Any:
    c = refused_calls
    if categories:
        query = query.where(c.c.category.in_(categories))
    if since is not None:
        query = query.where(c.c.last_seen >= float(since))
    if until is not None:
        query = query.where(c.c.last_seen < float(until))
    return query


def _text(value: Any) -> str | None:
    return clean_key(value) if isinstance(value, str) else None


def _trim(conn: Any, table: Any, seen: Any, limit: int) -> None:
    """Keep the ``limit`` most recently seen rows."""
    newest_kept = (
        select(seen).order_by(seen.desc()).limit(1).offset(bindparam("keep")).scalar_subquery()
    )
    conn.execute(delete(table).where(seen < newest_kept), {"keep": max(0, limit - 1)})
