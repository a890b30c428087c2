"""Dashboard logins, kept so that logging out ends them on every server (schema v4)."""

from __future__ import annotations

import time

from sqlalchemy import delete, insert, select

from .connections import Database
from .rows import clean_text
from .schema import operator_sessions


class OperatorSessions:
    """One row per login, keyed by a hash of the id in the signed session cookie."""

    def __init__(self, database: Database) -> None:
        self.db = database

    def start_session(self, session_hash: str, operator: str, expires_at: float) -> None:
        """Record a dashboard login (and forget the ones that have expired)."""
        now = time.time()
        with self.db.writing() as conn:
            conn.execute(delete(operator_sessions).where(operator_sessions.c.expires_at < now))
            conn.execute(
                insert(operator_sessions).values(
                    session_hash=clean_text(session_hash),
                    operator=clean_text(operator),
                    created_at=now,
                    expires_at=float(expires_at),
                )
            )

    def session_active(self, session_hash: str) -> bool:
        """True while that login exists, has not expired and was not revoked."""
        query = select(operator_sessions.c.session_hash).where(
            operator_sessions.c.session_hash == clean_text(session_hash),
            operator_sessions.c.revoked_at.is_(None),
            operator_sessions.c.expires_at > time.time(),
        )
        with self.db.reading() as conn:
            return conn.execute(query).first() is not None

    def revoke_sessions(self, session_hash: str | None = None) -> int:
        """End one login (``session_hash``) or, with None, every login; returns how many."""
        stmt = operator_sessions.update().where(operator_sessions.c.revoked_at.is_(None))
        if session_hash is not None:
            stmt = stmt.where(operator_sessions.c.session_hash == clean_text(session_hash))
        with self.db.writing() as conn:
            return int(conn.execute(stmt.values(revoked_at=time.time())).rowcount)
