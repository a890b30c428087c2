"""Text search over disconnects (store.search), the flow column, time windows and the
chart's short buckets, on SQLite and PostgreSQL.  The index is kept in sync by the
database itself, so every write path is checked: the group commit, the spool replay, a
purge, an upgrade from a store that had no index."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import inspect, select, text

from store import schema
from store.queries import WINDOW_PROBE
from store.search import search_text
from tests.store.conftest import make_record


def disconnect(store, **overrides) -> str:
    record = make_record(**overrides)
    assert store.record_callback(record).outcome == "inserted"
    return record["call_id"]


def found(store, query: str, **filters) -> list[str]:
    filters.setdefault("exclude_hangup", False)
    return [row["call_id"] for row in store.disconnects(search=query, **filters)]


def payload(call_id: str, **fields) -> dict:
    return {"eventType": "disconnect", "callId": call_id, "cause": "busy", **fields}


def test_substring_of_an_error_message_case_insensitive(store):
    hit = disconnect(
        store,
        call_id="c-msg",
        cause="error",
        error_message="The answer URL did not respond within 15 s",
        payload=payload("c-msg", errorMessage="The answer URL did not respond within 15 s"),
    )
    disconnect(store, call_id="c-other", error_message="busy line")
    assert found(store, "url did NOT resp") == [hit]  # mid-word, any case
    assert found(store, "respond within 15") == [hit]
    assert found(store, "nothing like this") == []


def test_substring_of_a_payload_field_and_not_of_its_key(store):
    hit = disconnect(
        store,
        call_id="c-pay",
        payload=payload("c-pay", to="+12025550177", sipHeaders={"X": "vip-7"}),
    )
    disconnect(store, call_id="c-nope", payload=payload("c-nope", to="+12025550100"))
    assert found(store, "5550177") == [hit]
    assert found(store, "vip-7") == [hit]  # nested values too
    assert found(store, "c-pay") == [hit]  # the call id is searchable
    assert found(store, "sipHeaders") == []  # keys are not indexed


def test_hostile_input_matches_literally(store):
    odd = 'he said "hi" 100%_done \\ OR x* NEAR(a b) -- ;'
    hit = disconnect(
        store, call_id="c-odd", error_message=odd, payload=payload("c-odd", errorMessage=odd)
    )
    disconnect(store, call_id="c-plain", error_message="100 done")
    assert found(store, '"hi"') == [hit]
    assert found(store, "100%_d") == [hit]  # % and _ are not wildcards
    assert found(store, "0%_") == [hit]
    assert found(store, "\\ OR") == [hit]
    assert found(store, "x* NEAR(") == [hit]
    for query in ("' OR 1=1 --", "NEAR(a b)", "a* OR b*", '"""', "%%%", "___", "x" * 200, "\\ O"):
        assert found(store, query) == ([hit] if query.lower() in odd.lower() else []), query


def test_too_short_a_search_is_refused(store):
    with pytest.raises(ValueError, match="at least 3"):
        store.disconnects(search="ab")


def test_handler_errors_of_the_call_are_searchable(store):
    answer = make_record(
        event_type="answer",
        call_id="c-crash",
        error_detail="Traceback (most recent call last):\n  File ...\nZeroDivisionError: division by zero\n",
    )
    assert store.record_callback(answer).outcome == "inserted"
    hit = disconnect(store, call_id="c-crash", cause="hangup")
    disconnect(store, call_id="c-fine", cause="hangup")
    assert found(store, "zerodivisionerror: div") == [hit]
    assert found(store, "Traceback") == []  # only the last line of a traceback


def test_search_combines_with_the_other_filters_and_pages(store):
    ids = [disconnect(store, cause="busy", error_message=f"flaky carrier {n}") for n in range(5)]
    disconnect(store, cause="hangup", error_message="flaky carrier hangup")
    assert found(store, "flaky carrier", exclude_hangup=True) == ids[::-1]
    assert found(store, "flaky carrier", causes=["hangup"]) != ids[::-1]
    first = store.disconnects(search="flaky carrier", limit=2)
    older = store.disconnects(search="flaky carrier", limit=2, before_id=first[-1]["id"])
    assert [r["call_id"] for r in first + older] == ids[::-1][:4]
    by_number = found(store, "flaky carrier", number="+15550002222", exclude_hangup=True)
    assert by_number == ids[::-1]


def test_the_spool_replay_indexes_what_it_stores(make_store, dead_url):
    dead = make_store(dead_url)
    record = make_record(call_id="c-spooled", error_message="spooled while the db was down")
    assert dead.record_callback(record).outcome == "spooled"
    store = make_store()
    store.migrate()
    assert store.spool.pending()
    assert found(store, "while the db was") == []
    assert store.replay_spool() == 1
    assert found(store, "while the db was") == ["c-spooled"]


def test_purge_removes_from_the_index(store):
    old = disconnect(store, error_message="ancient failure", received_at=time.time() - 90 * 86400)
    new = disconnect(store, error_message="recent failure")
    assert found(store, "failure") == [new, old]
    store.purge(30)
    assert found(store, "failure") == [new]
    assert found(store, "ancient") == []
    if store.backend == "sqlite":
        with store.engine.begin() as conn:  # raises if the index and the table disagree
            conn.execute(
                text("INSERT INTO disconnect_search(disconnect_search) VALUES ('integrity-check')")
            )


def test_flow_is_stored_with_the_event(store):
    disconnect(store, call_id="c-flow", flow="reminders")
    assert store.disconnects(exclude_hangup=False)[0]["flow"] == "reminders"
    assert store.events_for_call("c-flow")[0]["flow"] == "reminders"


def test_a_version_4_store_gains_flow_and_search_of_its_old_disconnects(make_store):
    old = make_store()
    with old.engine.begin() as conn:
        schema.schema_version.create(conn, checkfirst=True)
        for version in (1, 2, 3, 4):
            schema.MIGRATIONS[version](conn)
            conn.execute(schema.schema_version.insert().values(version=version, applied_at=0.0))
        # As version 4 made them.
        conn.execute(text("ALTER TABLE disconnects DROP COLUMN search_text"))
        conn.execute(text("ALTER TABLE events DROP COLUMN flow"))
        conn.execute(
            text(
                "INSERT INTO events (id, received_at, route, method, event_type, call_id, cause,"
                " error_message, payload, payload_hash, reply_status) VALUES (7, 1.0,"
                " 'disconnect', 'POST', 'disconnect', 'c-old', 'busy', 'old carrier trouble',"
                " :payload, 'h7', 204)"
            ),
            {"payload": '{"callId":"c-old","cause":"busy","to":"+12025550144"}'},
        )
        conn.execute(
            text("INSERT INTO disconnects (event_id, received_at, cause) VALUES (7, 1.0, 'busy')")
        )
    old.dispose()
    upgraded = make_store()
    upgraded.migrate()
    with upgraded.engine.connect() as conn:
        assert "flow" in {c["name"] for c in inspect(conn).get_columns("events")}
        versions = conn.execute(select(schema.schema_version.c.version)).scalars().all()
    assert versions == list(range(1, schema.SCHEMA_VERSION + 1))
    assert found(upgraded, "carrier trou") == ["c-old"]
    assert found(upgraded, "5550144") == ["c-old"]
    assert upgraded.disconnects()[0]["flow"] is None


def test_search_text_leaves_out_boilerplate_and_signed_state():
    text_ = search_text(
        {
            "accountId": "9900000",
            "callUrl": "https://voice.bandwidth.com/api/v2/accounts/9900000/calls/c-1",
            "startTime": "2024-05-01T12:00:00.000Z",
            "tag": "st2.eyJfZmxvdyI6Iml2ciJ9.c2lnbmF0dXJl",
            "to": "+12025550123",
            "digits": 42,
            "flag": True,
        },
        "Call ended: busy",
        ["Traceback...\nValueError: bad\n\n"],
    )
    assert text_.split("\n") == ["Call ended: busy", "+12025550123", "42", "ValueError: bad"]


def test_a_window_fills_its_page_whatever_lies_outside_it(store):
    now = time.time()
    inside = [disconnect(store, cause="busy", received_at=now - 7200 - n) for n in range(3)]
    # Newer than the window: more than the probe reads, so the window's index decides.
    recent = [
        disconnect(store, cause="busy", received_at=now - n * 0.001)
        for n in range(WINDOW_PROBE + 5)
    ]
    # A spooled callback replayed late: an old time under a new id.
    late = disconnect(store, cause="busy", received_at=now - 7000)
    rows = store.disconnects(since=now - 8000, until=now - 3600)
    assert [r["call_id"] for r in rows] == [late, *inside[::-1]]
    newest = store.disconnects(since=now - 60, limit=10)  # found by the probe
    assert [r["call_id"] for r in newest] == recent[::-1][:10]


def test_failures_by_bucket_counts_short_buckets(store):
    start = 1_700_000_000 // 600 * 600
    for offset, cause in (
        (5, "busy"),
        (30, "busy"),
        (130, "timeout"),
        (131, "hangup"),
        (700, "busy"),
    ):
        disconnect(store, cause=cause, received_at=start + offset)
    counts = store.failures_by_bucket(start, start + 600, 120)
    assert sorted(counts) == [(start, "busy", 2), (start + 120, "timeout", 1)]
    with_hangups = store.failures_by_bucket(start, start + 600, 120, exclude_hangup=False)
    assert (start + 120, "hangup", 1) in with_hangups


@pytest.mark.postgres
def test_without_pg_trgm_search_works_unindexed_until_migrate_adds_it(caplog, tmp_path):
    """A database user who may not create extensions: the migration warns, search scans,
    and once the owner creates pg_trgm, ``ensure_search_index`` (flask store migrate) indexes."""
    import uuid

    import psycopg

    from store import Store
    from tests.conftest import needs
    from tests.pg import _conninfo, postgres_test_url

    url = postgres_test_url()
    try:
        admin = psycopg.connect(_conninfo(url), autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        needs(False, f"PostgreSQL is not reachable: {exc}")
        raise
    name = f"t_notrgm_{uuid.uuid4().hex[:10]}"
    role = f"{name}_app"
    admin.execute(f'CREATE ROLE "{role}" LOGIN')
    admin.execute(f'CREATE DATABASE "{name}"')
    store = None
    try:
        with psycopg.connect(_conninfo(url.set(database=name)), autocommit=True) as db:
            db.execute(f'REVOKE CREATE ON DATABASE "{name}" FROM PUBLIC')
            db.execute(f'CREATE SCHEMA app AUTHORIZATION "{role}"')
        app_url = url.set(database=name, username=role, password=None).update_query_dict(
            {"options": "-csearch_path=app"}
        )
        store = Store(app_url.render_as_string(hide_password=False), spool_path=str(tmp_path / "s"))
        with caplog.at_level("WARNING", logger="store.search"):
            store.migrate()
        assert "text search runs without an index" in caplog.text
        hit = disconnect(store, error_message="found without an index")
        assert found(store, "WITHOUT an ind") == [hit]
        assert store.ensure_search_index() is False
        with psycopg.connect(_conninfo(url.set(database=name)), autocommit=True) as db:
            db.execute("CREATE EXTENSION pg_trgm SCHEMA public")  # the owner's step
        assert store.ensure_search_index() is True
        assert found(store, "WITHOUT an ind") == [hit]
    finally:
        if store is not None:
            store.dispose()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.close()


def test_a_search_cannot_find_a_password_a_page_hides(store):
    call = disconnect(
        store,
        call_id="c-secret",
        cause="error",
        error_message="transfer to sip:alice:s3cret-one@pbx.example.com failed",
        payload=payload(
            "c-secret",
            cause="error",
            errorMessage="transfer to sip:alice:s3cret-one@pbx.example.com failed",
            transferTo="sips:bob:s3cret-two@pbx.example.com",
            sipHeaders={"X-Pin": "4242", "fallbackPassword": "s3cret-three"},
            password=123987,
        ),
    )
    for secret in ("s3cret-one", "s3cret-two", "s3cret-three", "123987", "cret-t"):
        assert found(store, secret) == [], secret
    assert found(store, "alice") == [call]  # the rest stays searchable
    assert found(store, "pbx.example.com") == [call]
    assert found(store, "4242") == [call]


def test_a_search_cannot_find_a_password_in_a_partly_or_twice_encoded_sip_uri(store):
    message = "refused sip:alice%3Aonce-hidden@pbx and to=sip%253Abob%253Atwice-hidden%2540pbx"
    call = disconnect(
        store,
        call_id="c-encoded",
        cause="error",
        error_message=message,
        payload=payload("c-encoded", cause="error", errorMessage=message),
    )
    assert found(store, "once-hidden") == [] and found(store, "twice-hidden") == []
    assert found(store, "alice") == [call] and found(store, "bob") == [call]


def index_as_before(store, old_text: str) -> None:
    """Give every disconnect the search text an earlier schema version indexed."""
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE disconnects SET search_text = :t WHERE search_text IS NOT NULL"),
            {"t": old_text},
        )


def test_search_texts_indexed_before_masking_are_masked_by_the_upgrade(store):
    call = disconnect(
        store,
        call_id="c-old",
        payload=payload("c-old", password="hunter2-old", to="sip:carol:hunter3@gw.example"),
    )
    index_as_before(store, "c-old\nhunter2-old\nsip:carol:hunter3@gw.example")  # version 9
    assert found(store, "hunter2-old") == [call]  # the old index answers for it
    with store.engine.begin() as conn:
        schema.MIGRATIONS[10](conn)
    assert found(store, "hunter2-old") == []
    assert found(store, "hunter3") == []
    assert found(store, "carol") == [call]


def test_search_texts_masked_by_version_10_lose_encoded_passwords_in_version_11(store):
    message = "refused to=sip%253Abob%253Atwice-hidden%2540pbx"
    call = disconnect(
        store,
        call_id="c-v10",
        cause="error",
        error_message=message,
        payload=payload("c-v10", cause="error", errorMessage=message),
    )
    index_as_before(store, f"c-v10\n{message}")  # as version 10 masked and indexed it
    assert found(store, "twice-hidden") == [call]
    with store.engine.begin() as conn:
        schema.MIGRATIONS[11](conn)
    assert found(store, "twice-hidden") == []
    assert found(store, "bob") == [call]
