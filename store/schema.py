"""Tables and indexes of the store, and the numbered migrations that create them.

One schema for SQLite and PostgreSQL, written with SQLAlchemy Core.  Times are float epoch
seconds (``received_at``), ids are integers that grow with arrival (keyset pagination).

Tables:

``events``             every accepted callback, with our reply; unique on (route, payload_hash)
``disconnects``        a narrow copy of the filterable fields of each disconnect event
``disconnect_rollup``  per-cause, per-hour disconnect counts (never scans events)
``disconnect_totals``  per-cause all-time disconnect counts
``rejected_requests``  the bounded log of refused requests (never events)
``outbound_calls``     one row per outbound call attempt and its outcome
``rate_limits``        shared hit counters per (key, window start)
``operator_sessions``  dashboard logins, so that logging out ends one server-side (v4)
``disconnect_search``  SQLite only: the FTS5 trigram index of disconnects.search_text (v5)
``alert_counts``       failures per category and 10-second bucket, for alert rules (v6)
``alert_firings``      one row per alert rule and window: the alert is sent once (v6)
``category_rollup``, ``category_totals``  the same counts per failure category (v7)
``credential_failures``  the bounded, aggregated log of callbacks refused with 401 (v7)
``refused_calls``      the bounded list of calls whose callbacks were refused (v7)
``disconnect_digits``  SQLite only: the runs of 7 digits of each search text (v8, store.search)
                      (v9: refused_calls.error_message)
``schema_version``     which migrations have run
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    text,
)
from sqlalchemy.schema import CreateIndex, CreateTable

# INTEGER PRIMARY KEY is SQLite's rowid alias; BIGSERIAL on PostgreSQL.
ID = BigInteger().with_variant(Integer(), "sqlite")

# Longest value kept in an indexed text column; longer values are cut so that an oversized
# field can never make an insert fail (PostgreSQL refuses B-tree entries above ~2.7 kB).
KEY_CHARS = 200

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", Double, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("received_at", Double, nullable=False),
    Column("route", Text, nullable=False),
    Column("method", Text, nullable=False),
    Column("event_type", Text),
    Column("call_id", Text),
    Column("conference_id", Text),
    Column("event_time", Text),
    Column("from_number", Text),
    Column("to_number", Text),
    Column("direction", Text),
    Column("tag", Text),
    Column("cause", Text),
    Column("error_message", Text),
    Column("error_id", Text),
    Column("sip_response_code", Integer),
    Column("payload", Text, nullable=False),
    Column("payload_hash", Text, nullable=False),
    Column("reply_status", Integer, nullable=False),
    Column("reply_body", Text),
    Column("reply_content_type", Text),
    Column("latency_ms", Double),
    Column("error_detail", Text),
    # The A-leg of a <Transfer> B-leg event (schema version 2).
    Column("parent_call_id", Text),
    # The name of the flow that handled the callback (schema version 5).
    Column("flow", Text),
    # This callback's own failure: handler-error, invalid-reply, spooled (version 7).
    Column("category", Text),
    UniqueConstraint("route", "payload_hash", name="uq_events_route_payload_hash"),
    Index("ix_events_call_id", "call_id", "id"),
    Index(
        "ix_events_conference_id",
        "conference_id",
        "id",
        sqlite_where=text("conference_id IS NOT NULL"),
        postgresql_where=text("conference_id IS NOT NULL"),
    ),
    Index("ix_events_received_at", "received_at"),
    Index(
        "ix_events_parent_call_id",
        "parent_call_id",
        "id",
        sqlite_where=text("parent_call_id IS NOT NULL"),
        postgresql_where=text("parent_call_id IS NOT NULL"),
    ),
)

# Filled in the same transaction as the disconnect event, so the dashboard's list and its
# filters read a narrow table with one index per filter instead of the wide events table.
disconnects = Table(
    "disconnects",
    metadata,
    Column(
        "event_id",
        ID,
        ForeignKey("events.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("received_at", Double, nullable=False),
    Column("cause", Text, nullable=False),
    Column("from_number", Text),
    Column("to_number", Text),
    Column("error_id", Text),
    Column("tag", Text),
    # What text search matches (store.search.search_text; schema version 5).
    Column("search_text", Text),
    # The call's failure category (store.categories), computed when it is stored (v7).
    Column("category", Text),
    Index("ix_disconnects_cause", "cause", "event_id"),
    Index("ix_disconnects_from_number", "from_number", "event_id"),
    Index("ix_disconnects_to_number", "to_number", "event_id"),
    Index("ix_disconnects_error_id", "error_id", "event_id"),
    Index("ix_disconnects_tag", "tag", "event_id"),
    Index("ix_disconnects_received_at", "received_at"),
    # A time window's page is chosen from this index alone (version 2).
    Index("ix_disconnects_window", "received_at", "cause", "event_id"),
    # The default view filtered by tag, newest first (version 2).
    Index(
        "ix_disconnects_failures_tag",
        "tag",
        "event_id",
        sqlite_where=text("cause <> 'hangup'"),
        postgresql_where=text("cause <> 'hangup'"),
    ),
    # The default dashboard view (everything but normal hangups), newest first.
    Index(
        "ix_disconnects_failures",
        "event_id",
        sqlite_where=text("cause <> 'hangup'"),
        postgresql_where=text("cause <> 'hangup'"),
    ),
    # Version 5: by category, and the default view is every call that needs attention.
    Index("ix_disconnects_category", "category", "event_id"),
    Index(
        "ix_disconnects_attention",
        "event_id",
        sqlite_where=text("category <> 'hangup'"),
        postgresql_where=text("category <> 'hangup'"),
    ),
    Index(
        "ix_disconnects_attention_tag",
        "tag",
        "event_id",
        sqlite_where=text("category <> 'hangup'"),
        postgresql_where=text("category <> 'hangup'"),
    ),
    Index("ix_disconnects_window_category", "received_at", "category", "event_id"),
)

disconnect_rollup = Table(
    "disconnect_rollup",
    metadata,
    Column("cause", Text, primary_key=True),
    Column("bucket_start", BigInteger, primary_key=True, autoincrement=False),
    Column("count", BigInteger, nullable=False),
    Index("ix_disconnect_rollup_bucket_start", "bucket_start"),
)

# All-time per-cause totals: the dashboard's headline counts in O(number of causes).
disconnect_totals = Table(
    "disconnect_totals",
    metadata,
    Column("cause", Text, primary_key=True),
    Column("count", BigInteger, nullable=False),
)

category_rollup = Table(
    "category_rollup",
    metadata,
    Column("category", Text, primary_key=True),
    Column("bucket_start", BigInteger, primary_key=True, autoincrement=False),
    Column("count", BigInteger, nullable=False),
    Index("ix_category_rollup_bucket_start", "bucket_start"),
)

category_totals = Table(
    "category_totals",
    metadata,
    Column("category", Text, primary_key=True),
    Column("count", BigInteger, nullable=False),
)

# One row per (route, source address, username tried, kind), never a password; bounded.
credential_failures = Table(
    "credential_failures",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("route", Text, nullable=False),
    Column("remote_addr", Text, nullable=False),
    Column("username", Text, nullable=False),  # "" when none was sent
    Column("kind", Text, nullable=False),  # wrong, missing, malformed
    Column("first_seen", Double, nullable=False),
    Column("last_seen", Double, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("last_call_id", Text),
    UniqueConstraint("route", "remote_addr", "username", "kind", name="uq_credential_failures"),
    Index("ix_credential_failures_last_seen", "last_seen"),
)

# Calls named by a refused callback's payload (401 or malformed); bounded.
refused_calls = Table(
    "refused_calls",
    metadata,
    Column("call_id", Text, primary_key=True),
    Column("category", Text, nullable=False),
    Column("route", Text, nullable=False),
    Column("first_seen", Double, nullable=False),
    Column("last_seen", Double, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("wrong", Integer, nullable=False),  # 1: credentials were sent and did not match
    Column("cause", Text),
    Column("from_number", Text),
    Column("to_number", Text),
    Column("disconnected", Integer, nullable=False),  # 1: its disconnect was stored after all
    Column("error_message", Text),  # a refused disconnect's errorMessage (v9)
    Index("ix_refused_calls_last_seen", "last_seen"),
)

rejected_requests = Table(
    "rejected_requests",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("received_at", Double, nullable=False),
    Column("route", Text),
    Column("method", Text),
    Column("status", Integer),
    Column("reason", Text),
    Column("body", Text),
    Column("remote_addr", Text),
    Index("ix_rejected_requests_received_at", "received_at"),
)

outbound_calls = Table(
    "outbound_calls",
    metadata,
    Column("attempt_id", Text, primary_key=True),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("request", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("call_id", Text),
    Column("error", Text),
    Column("settled_at", Double),
    Index("ix_outbound_calls_call_id", "call_id"),
    Index("ix_outbound_calls_outcome", "outcome", "created_at"),
    Index("ix_outbound_calls_created_at", "created_at"),
)

rate_limits = Table(
    "rate_limits",
    metadata,
    Column("bucket_key", Text, primary_key=True),
    Column("window_start", BigInteger, primary_key=True, autoincrement=False),
    Column("hits", BigInteger, nullable=False),
    Column("expires_at", Double, nullable=False),
    Index("ix_rate_limits_expires_at", "expires_at"),
)

# One row per dashboard login, keyed by a hash of the id in the signed session cookie: a
# cookie whose row is gone or revoked no longer logs anyone in (schema version 4).
operator_sessions = Table(
    "operator_sessions",
    metadata,
    Column("session_hash", Text, primary_key=True),
    Column("operator", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False),
    Column("revoked_at", Double),
    Index("ix_operator_sessions_expires_at", "expires_at"),
)

# Alert rules count failures here: every worker of every server adds its counts per
# (category, bucket) now and then, so a rule sees the whole deployment (schema version 5).
alert_counts = Table(
    "alert_counts",
    metadata,
    Column("category", Text, primary_key=True),
    Column("bucket_start", BigInteger, primary_key=True, autoincrement=False),
    Column("count", BigInteger, nullable=False),
    Index("ix_alert_counts_bucket_start", "bucket_start"),
)

# The first evaluator to insert (rule, window_start) sends that window's alert; every other
# worker and server finds the row and sends nothing (schema version 5).
alert_firings = Table(
    "alert_firings",
    metadata,
    Column("rule", Text, primary_key=True),
    Column("window_start", BigInteger, primary_key=True, autoincrement=False),
    Column("fired_at", Double, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("status", Text, nullable=False),  # sending, sent, failed
    Index("ix_alert_firings_window_start", "window_start"),
)

V1_TABLES = [
    events,
    disconnects,
    disconnect_rollup,
    disconnect_totals,
    rejected_requests,
    outbound_calls,
    rate_limits,
]


V2_INDEXES = ("ix_events_parent_call_id", "ix_disconnects_window", "ix_disconnects_failures_tag")


def _v1(conn: Connection) -> None:
    metadata.create_all(conn, tables=V1_TABLES, checkfirst=True)


def _v2(conn: Connection) -> None:
    """events.parent_call_id (B-leg events by their A-leg) and two dashboard indexes."""
    columns = {column["name"] for column in inspect(conn).get_columns("events")}
    if "parent_call_id" not in columns:
        conn.execute(text("ALTER TABLE events ADD COLUMN parent_call_id TEXT"))
    for table in (events, disconnects):
        for index in table.indexes:
            if index.name in V2_INDEXES:
                index.create(conn, checkfirst=True)


def _v3(conn: Connection) -> None:
    """Drop ix_events_event_type: no query used it, and every insert paid for it."""
    conn.execute(text("DROP INDEX IF EXISTS ix_events_event_type"))


def _v4(conn: Connection) -> None:
    """operator_sessions: dashboard logins that logging out can end."""
    metadata.create_all(conn, tables=[operator_sessions], checkfirst=True)


def _v5(conn: Connection) -> None:
    """events.flow, disconnects.search_text and its index (store.search)."""
    from .search import create_search_index

    for table, column in (("events", "flow"), ("disconnects", "search_text")):
        if column not in {c["name"] for c in inspect(conn).get_columns(table)}:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} TEXT"))
    create_search_index(conn)


def _v6(conn: Connection) -> None:
    """alert_counts and alert_firings: alert rules, counted and sent once per window."""
    metadata.create_all(conn, tables=[alert_counts, alert_firings], checkfirst=True)


V7_TABLES = [category_rollup, category_totals, credential_failures, refused_calls]
V7_INDEXES = (
    "ix_disconnects_category",
    "ix_disconnects_attention",
    "ix_disconnects_attention_tag",
    "ix_disconnects_window_category",
)


def _v7(conn: Connection) -> None:
    """Failure categories: events.category, disconnects.category (from the cause and the
    call's handler errors), their counts, and the logs of refused callbacks."""
    inspector = inspect(conn)  # one inspector: each reflection is a round trip
    for table in (events, disconnects):
        columns = {column["name"] for column in inspector.get_columns(table.name)}
        if "category" not in columns:
            conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN category TEXT"))
    # Earlier handler failures: an error kept with a callback we answered.
    conn.execute(
        text(
            "UPDATE events SET category = CASE WHEN error_detail LIKE '%BxmlError%' "
            "THEN 'invalid-reply' ELSE 'handler-error' END "
            "WHERE error_detail IS NOT NULL AND category IS NULL"
        )
    )
    for category in ("handler-error", "invalid-reply"):
        conn.execute(
            text(
                "UPDATE disconnects SET category = :category WHERE category IS NULL AND EXISTS "
                "(SELECT 1 FROM events d JOIN events e ON e.call_id = d.call_id "
                "WHERE d.id = disconnects.event_id AND e.category = :category)"
            ),
            {"category": category},
        )
    conn.execute(text("UPDATE disconnects SET category = cause WHERE category IS NULL"))
    # IF NOT EXISTS instead of a reflection per table and index: a fresh database (every
    # test's) migrates in fewer round trips.
    for table in V7_TABLES:
        conn.execute(CreateTable(table, if_not_exists=True))
        for index in table.indexes:
            conn.execute(CreateIndex(index, if_not_exists=True))
    by_hour = (
        "INSERT INTO category_rollup (category, bucket_start, count) "
        "SELECT category, CAST(received_at / 3600 AS INTEGER) * 3600 AS bucket, COUNT(*) "
        "FROM disconnects GROUP BY category, bucket "
        "ON CONFLICT (category, bucket_start) DO NOTHING"
    )
    if conn.dialect.name != "sqlite":  # PostgreSQL's CAST rounds; the hour must floor
        by_hour = by_hour.replace(
            "CAST(received_at / 3600 AS INTEGER)", "CAST(FLOOR(received_at / 3600) AS BIGINT)"
        )
    conn.execute(text(by_hour))
    conn.execute(
        text(
            "INSERT INTO category_totals (category, count) "
            "SELECT category, COUNT(*) FROM disconnects GROUP BY category "
            "ON CONFLICT (category) DO NOTHING"
        )
    )
    for index in disconnects.indexes:
        if index.name in V7_INDEXES:
            conn.execute(CreateIndex(index, if_not_exists=True))


def _v8(conn: Connection) -> None:
    """SQLite: disconnect_digits, so that a number's search reads its own few rows."""
    from .search import create_digits_index

    create_digits_index(conn)


def _v9(conn: Connection) -> None:
    """refused_calls.error_message: what a refused disconnect said ended its call."""
    if "error_message" not in {c["name"] for c in inspect(conn).get_columns("refused_calls")}:
        conn.execute(text("ALTER TABLE refused_calls ADD COLUMN error_message TEXT"))


def _v10(conn: Connection) -> None:
    """Search texts without passwords: those indexed before they were masked (version 10),
    and those whose partly or twice percent-encoded SIP URIs and URLs version 10's masking
    did not know (version 11, the same step again)."""
    from .search import remask

    remask(conn)


# version -> step.  Steps run in order inside one transaction and must be idempotent
# (CREATE ... IF NOT EXISTS semantics), so a half-finished upgrade can simply run again.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _v1,
    2: _v2,
    3: _v3,
    4: _v4,
    5: _v5,
    6: _v6,
    7: _v7,
    8: _v8,
    9: _v9,
    10: _v10,
    11: _v10,
}
SCHEMA_VERSION = max(MIGRATIONS)
