"""The store's operator sessions and the read-only rate-limit count, on both databases."""

from __future__ import annotations

import time


def test_a_session_lives_until_revoked(make_store):
    first, second = make_store(), make_store()  # two workers or servers
    first.start_session("hash-a", "operator", time.time() + 3600)
    first.start_session("hash-b", "operator", time.time() + 3600)
    assert second.session_active("hash-a") and second.session_active("hash-b")
    assert not second.session_active("hash-unknown")
    assert second.revoke_sessions("hash-a") == 1
    assert not first.session_active("hash-a")
    assert first.session_active("hash-b")
    assert second.revoke_sessions("hash-a") == 0  # already revoked


def test_revoking_every_session(store):
    for name in ("a", "b", "c"):
        store.start_session(name, "operator", time.time() + 3600)
    store.revoke_sessions("a")
    assert store.revoke_sessions() == 2
    assert not any(store.session_active(name) for name in ("a", "b", "c"))


def test_an_expired_session_is_not_active_and_is_forgotten(store):
    store.start_session("old", "operator", time.time() - 1)
    assert not store.session_active("old")
    store.start_session("new", "operator", time.time() + 3600)  # prunes expired rows
    assert store.revoke_sessions() == 1


def test_rate_limit_hits_reads_without_counting(make_store):
    first, second = make_store(), make_store()
    now = 1_000_020.0
    assert first.rate_limit_hits("login:203.0.113.9", 60, now=now) == 0
    for offset in range(3):
        first.hit_rate_limit("login:203.0.113.9", 60, 5, now=now + offset)
    assert second.rate_limit_hits("login:203.0.113.9", 60, now=now + 5) == 3
    assert second.rate_limit_hits("login:203.0.113.9", 60, now=now + 5) == 3
    assert second.rate_limit_hits("login:203.0.113.9", 60, now=now + 60) == 0  # next window
    assert second.rate_limit_hits("login:other", 60, now=now) == 0


def test_rate_limit_hits_of_a_long_key(store):
    key = "login:" + "x" * 500
    store.hit_rate_limit(key, 60, 5, now=120.0)
    store.hit_rate_limit(key, 60, 5, now=121.0)
    assert store.rate_limit_hits(key, 60, now=122.0) == 2
    assert store.rate_limit_hits(key[:-1] + "y", 60, now=122.0) == 0


def test_a_version_3_database_gains_the_sessions_table(make_store):
    from sqlalchemy import inspect, select

    from store import schema

    old = make_store()
    with old.engine.begin() as conn:
        schema.schema_version.create(conn, checkfirst=True)
        for version in (1, 2, 3):
            schema.MIGRATIONS[version](conn)
            conn.execute(schema.schema_version.insert().values(version=version, applied_at=0.0))
    old.dispose()
    upgraded = make_store()
    upgraded.migrate()
    with upgraded.engine.connect() as conn:
        assert "operator_sessions" in inspect(conn).get_table_names()
        versions = conn.execute(select(schema.schema_version.c.version)).scalars().all()
    assert versions == sorted(schema.MIGRATIONS)
    upgraded.start_session("h", "operator", 2e9)
    assert upgraded.session_active("h")
