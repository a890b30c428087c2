"""Failure categories in the store, on SQLite and PostgreSQL: computed when the disconnect
is stored, counted in rollups, filtered through an index; the refused-callback logs bounded."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from store import categories, schema
from store.connections import Database
from store.engine import normalize_url
from store.refusals import Refusals
from store.replay import read_spooled

from .conftest import make_record


def stored_call(store, cause="hangup", **answer) -> str:
    """An answer (with ``answer`` overrides) then a disconnect with ``cause``; the call id."""
    call = make_record(event_type="answer", **answer)
    for record in (call, make_record(call_id=call["call_id"], cause=cause)):
        # Committed, not spooled (a slow machine may spool): the order is the point here.
        assert store.record_callback(record, timeout=60).outcome == "inserted"
    return call["call_id"]


def category_of(store, call_id) -> str:
    (row,) = [r for r in store.disconnects(exclude_hangup=False) if r["call_id"] == call_id]
    return row["category"]


@pytest.mark.parametrize(
    ("answer", "cause", "expected"),
    [
        ({}, "hangup", "hangup"),
        ({}, "busy", "busy"),
        ({"error_detail": "Traceback ...", "category": "handler-error"}, "hangup", "handler-error"),
        ({"error_detail": "BxmlError", "category": "invalid-reply"}, "hangup", "invalid-reply"),
        # Our failure is the root cause whatever Bandwidth then said.
        (
            {"error_detail": "Traceback", "category": "handler-error"},
            "callback-error",
            "handler-error",
        ),
        ({}, None, "unknown"),
    ],
)
def test_a_calls_category_is_computed_when_its_disconnect_is_stored(store, answer, cause, expected):
    call_id = stored_call(store, cause, **answer)
    assert category_of(store, call_id) == expected


def test_the_default_view_is_every_call_that_needs_attention(store):
    crashed = stored_call(store, "hangup", error_detail="boom", category="handler-error")
    normal = stored_call(store, "hangup")
    busy = stored_call(store, "busy")
    default = [r["call_id"] for r in store.disconnects()]
    assert default == [busy, crashed]
    assert normal in [r["call_id"] for r in store.disconnects(exclude_hangup=False)]
    only = store.disconnects(categories=["handler-error"])
    assert [r["call_id"] for r in only] == [crashed]
    assert [r["call_id"] for r in store.disconnects(causes=["hangup"])] == [normal, crashed]


def test_category_counts_and_chart_come_from_the_rollups(store):
    stored_call(store, "hangup", error_detail="boom", category="handler-error")
    stored_call(store, "busy")
    stored_call(store, "busy")
    stored_call(store, "hangup")
    assert store.category_counts() == {"handler-error": 1, "busy": 2, "hangup": 1}
    now = time.time()
    assert store.category_counts(now - 3600, now + 3600) == store.category_counts()
    series = store.categories_over_time(now - 3600, now + 3600)
    assert {(c, n) for _, c, n in series} == {("handler-error", 1), ("busy", 2)}
    assert store.cause_counts() == {"hangup": 2, "busy": 2}  # causes are still counted


def test_a_spooled_callback_marks_its_call(store):
    import json

    call = make_record(event_type="answer")
    line = json.dumps({"kind": "callback", "row": call}).encode()
    row = read_spooled(line).row
    assert row is not None and row["category"] == "spooled"
    crashed = read_spooled(
        json.dumps({"kind": "callback", "row": {**call, "category": "handler-error"}}).encode()
    ).row
    assert crashed is not None and crashed["category"] == "handler-error"  # the worse one stays
    store.record_callback(row)
    store.record_callback(make_record(call_id=call["call_id"], cause="hangup"))
    assert category_of(store, call["call_id"]) == "spooled"


def test_a_failure_stored_after_the_disconnect_moves_the_call(store):
    """A spooled answer replayed after its call's disconnect was committed."""
    call = make_record(event_type="answer", error_detail="Traceback", category="handler-error")
    assert store.record_callback(make_record(call_id=call["call_id"], cause="busy")).outcome == (
        "inserted"
    )
    assert category_of(store, call["call_id"]) == "busy"
    assert store.record_callback(call).outcome == "inserted"
    assert category_of(store, call["call_id"]) == "handler-error"
    assert store.category_counts() == {"handler-error": 1}
    now = time.time()
    assert store.category_counts(now - 3600, now + 3600) == {"handler-error": 1}
    assert [c for _, c, _ in store.categories_over_time(now - 3600, now + 3600)] == [
        "handler-error"
    ]
    # A weaker late flag changes nothing.
    later = make_record(event_type="gather", call_id=call["call_id"], category="spooled")
    store.record_callback(later)
    assert category_of(store, call["call_id"]) == "handler-error"
    assert store.cause_counts() == {"busy": 1}


@pytest.mark.parametrize("late", [False, True], ids=["before-disconnect", "after-disconnect"])
@pytest.mark.parametrize("failure", ["invalid-reply", "handler-error"])
def test_an_agent_legs_failure_gives_its_callers_call_the_category(store, failure, late):
    """A Transfer's agent leg ends with transferDisconnect, never a disconnect row of its
    own: its handler's failure (on transferAnswer) must show on the caller's call."""
    caller = make_record(event_type="initiate")
    agent = make_record(
        event_type="transferAnswer",
        parent_call_id=caller["call_id"],
        error_detail="BxmlError: <Transfer> is not allowed here",
        category=failure,
    )
    disconnect = make_record(call_id=caller["call_id"], cause="hangup")
    order = [caller, disconnect, agent] if late else [caller, agent, disconnect]
    for record in order:
        assert store.record_callback(record, timeout=60).outcome == "inserted"
    assert category_of(store, caller["call_id"]) == failure
    assert [r["call_id"] for r in store.disconnects()] == [caller["call_id"]]
    assert store.category_counts() == {failure: 1}


def test_refused_calls_give_their_category_to_a_later_disconnect(store):
    wrong = make_record(event_type="answer")
    store.record_refusal(
        route="answer",
        remote_addr="10.0.0.1",
        username="bw",
        kind="wrong",
        payload=wrong["payload"],
    )
    assert [c["call_id"] for c in store.refused_calls()] == [wrong["call_id"]]
    assert store.refused_counts() == {"credential-failure": 1}
    store.record_callback(make_record(call_id=wrong["call_id"], cause="callback-error"))
    assert category_of(store, wrong["call_id"]) == "credential-failure"
    # Its disconnect is stored now: counted once, in the disconnect counts.
    assert store.refused_calls() == [] and store.refused_counts() == {}
    assert store.category_counts() == {"credential-failure": 1}


@pytest.fixture
def small_refusals(db_url):
    """The refusal logs on this test's database with small limits, built from the store's
    public modules (a Store keeps the default limits)."""
    database = Database(normalize_url(db_url), busy_timeout=2.0, sqlite_synchronous="FULL")
    database.migrate()
    yield Refusals(database, log_limit=3, calls_limit=2)
    database.dispose()


def test_the_credential_log_is_aggregated_bounded_and_never_holds_a_password(
    make_store, small_refusals
):
    store = make_store()
    refusals = small_refusals
    secret = "hunter2-the-password"
    base = 1_700_000_000.0
    for n in range(5):
        for _ in range(2):
            refusals.record_refusal(
                route="answer",
                remote_addr=f"10.0.0.{n}",
                username="bandwidth",
                kind="wrong",
                # A refused body is unauthenticated and may carry anything: only the
                # named fields are kept, so the secret in its tag is not.
                payload={"callId": f"c-{n}", "eventType": "answer", "tag": f"pw={secret}"},
                now=base + n,
            )
    rows = refusals.credential_failures()
    assert [r["remote_addr"] for r in rows] == ["10.0.0.4", "10.0.0.3", "10.0.0.2"]
    assert all(r["count"] == 2 and r["username"] == "bandwidth" for r in rows)
    assert rows[0]["first_seen"] == rows[0]["last_seen"] == base + 4
    assert [c["call_id"] for c in refusals.refused_calls(now=base + 10)] == ["c-4", "c-3"]
    with store.engine.connect() as conn:
        dump = [
            repr(conn.execute(text(f"SELECT * FROM {table}")).all())  # noqa: S608
            for table in ("credential_failures", "refused_calls", "events", "rejected_requests")
        ]
    assert secret not in "".join(dump)


def test_a_missing_credential_refusal_counts_only_when_the_sender_never_retries(store):
    now = time.time()
    payload = {"callId": "c-challenge", "eventType": "disconnect", "cause": "hangup"}
    store.record_refusal(
        route="disconnect", remote_addr="10.0.0.9", username=None, kind="missing", payload=payload
    )
    # Within the grace the sender may still answer the challenge: no alarm yet.
    assert store.refusals_since(now - 60, now=now) is None
    later = now + 60
    alarm = store.refusals_since(now - 60, now=later)
    assert alarm is not None and alarm["call_id"] == "c-challenge"
    assert store.refused_counts(now=later) == {"credential-failure": 1}


def test_record_refusal_never_raises(make_store, dead_url):
    store = make_store(dead_url)
    store.record_refusal(route="answer", remote_addr=None, username="x", kind="wrong", payload=None)


# The migration that brought categories in.
CATEGORIES = next(v for v, step in schema.MIGRATIONS.items() if step.__name__ == "_v7")


def test_the_categories_migration_categorises_stored_disconnects(make_store):
    old = make_store()
    old.migrate()
    crashed = stored_call(old, "hangup", error_detail="Traceback", category=None)
    stored_call(old, "busy")
    with old.engine.begin() as conn:
        conn.execute(text("UPDATE disconnects SET category = NULL"))
        conn.execute(text("UPDATE events SET category = NULL"))
        conn.execute(text("DELETE FROM category_totals"))
        conn.execute(text("DELETE FROM category_rollup"))
        # That version and the later ones: a store from before it had none of them.
        forget = text("DELETE FROM schema_version WHERE version >= :version")
        conn.execute(forget, {"version": CATEGORIES})
    old.dispose()
    upgraded = make_store()
    upgraded.migrate()
    assert category_of(upgraded, crashed) == "handler-error"
    assert upgraded.category_counts() == {"handler-error": 1, "busy": 1}
    now = time.time()
    assert upgraded.category_counts(now - 3600, now + 3600) == {"handler-error": 1, "busy": 1}


def test_category_names_and_priority():
    assert categories.call_category("busy", [None, "spooled", "handler-error"]) == "handler-error"
    assert categories.call_category("busy", ["spooled"]) == "spooled"
    assert categories.call_category(None) == "unknown"
    assert categories.call_category("hangup", ["not-ours"]) == "hangup"
    assert set(categories.APP_CATEGORIES) <= set(categories.DESCRIPTIONS)
    assert categories.event_category(error_detail="x", invalid_reply=True) == "invalid-reply"
    assert categories.event_category(error_detail=None, spooled=True) == "spooled"
    assert categories.event_category(error_detail=None) is None


def test_a_version_8_store_gains_the_refused_disconnects_message(make_store):
    from sqlalchemy import inspect

    old = make_store()
    old.migrate()
    with old.engine.begin() as conn:  # back to version 8: no refused_calls.error_message
        conn.execute(text("ALTER TABLE refused_calls DROP COLUMN error_message"))
        conn.execute(schema.schema_version.delete().where(schema.schema_version.c.version >= 9))
    old.dispose()
    upgraded = make_store()
    upgraded.migrate()
    with upgraded.engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("refused_calls")}
    assert "error_message" in columns
    payload = {"callId": "c-1", "cause": "callback-error", "errorMessage": "it said 401"}
    upgraded.record_refusal(
        route="disconnect", remote_addr="127.0.0.1", username=None, kind="missing", payload=payload
    )
    assert upgraded.refused_call("c-1")["error_message"] == "it said 401"
