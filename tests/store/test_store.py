"""The store's behaviour, on SQLite and on PostgreSQL (the ``store`` fixture runs both)."""

from __future__ import annotations

import collections
import os
import threading
import time

import pytest
from sqlalchemy import func, select

from store import Store, StoreUnavailable
from store.core import normalize_url
from store.schema import SCHEMA_VERSION, events, schema_version

from .conftest import make_record


def count_rows(store: Store, table=events) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_insert_and_read_back(store):
    record = make_record(
        event_type="answer",
        call_id="c-read",
        tag='{"flow": "menu"}',
        sip_response_code=200,
        error_detail="validator: fine",
    )
    assert store.record_callback(record) == ("inserted", None)

    [stored] = store.events_for_call("c-read")
    assert isinstance(stored["id"], int)
    for key in (
        "route",
        "method",
        "event_type",
        "call_id",
        "event_time",
        "tag",
        "cause",
        "error_message",
        "error_id",
        "sip_response_code",
        "payload",
        "reply_status",
        "reply_body",
        "reply_content_type",
        "error_detail",
        "from_number",
        "to_number",
        "direction",
    ):
        assert stored[key] == record[key], key
    assert stored["received_at"] == pytest.approx(record["received_at"])
    assert stored["latency_ms"] == pytest.approx(1.5)
    assert store.find_callback(record["route"], record["payload_hash"]) == {
        "reply_status": 200,
        "reply_body": "<Response></Response>",
        "reply_content_type": "application/xml",
    }
    assert store.find_callback(record["route"], "0" * 64) is None
    assert store.find_callback("/callbacks/other", record["payload_hash"]) is None


def test_duplicates_are_stored_once(store):
    record = make_record(call_id="c-dup")
    assert store.record_callback(record) == ("inserted", None)
    again = dict(record, reply_status=500, reply_body="different", received_at=time.time() + 1)
    status, reply = store.record_callback(again)
    assert status == "duplicate"
    assert reply == {"reply_status": 204, "reply_body": None, "reply_content_type": None}
    assert len(store.events_for_call("c-dup")) == 1
    assert store.cause_counts() == {"hangup": 1}  # the rollup counted it once


def test_same_payload_on_another_route_is_another_event(store):
    record = make_record(call_id="c-routes")
    assert store.record_callback(record)[0] == "inserted"
    assert store.record_callback(dict(record, route="/callbacks/status"))[0] == "inserted"
    assert len(store.events_for_call("c-routes")) == 2


def test_ten_concurrent_copies_make_one_row(store):
    record = make_record(event_type="answer", call_id="c-race")
    barrier = threading.Barrier(10)
    results: list[tuple] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(store.record_callback(dict(record)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    statuses = collections.Counter(status for status, _ in results)
    assert statuses == {"inserted": 1, "duplicate": 9}
    expected = {
        "reply_status": 200,
        "reply_body": "<Response></Response>",
        "reply_content_type": "application/xml",
    }
    assert all(reply == expected for status, reply in results if status == "duplicate")
    assert len(store.events_for_call("c-race")) == 1
    assert count_rows(store) == 1


def test_two_stores_racing_store_one_row(make_store):
    first, second = make_store(), make_store()
    record = make_record(call_id="c-two")
    outcomes = {first.record_callback(record)[0], second.record_callback(record)[0]}
    assert outcomes == {"inserted", "duplicate"}
    assert len(first.events_for_call("c-two")) == 1


def test_distinct_events_of_one_call_are_all_kept_in_arrival_order(store):
    start = time.time()
    kinds = ["answer", "gather", "dtmf", "dtmf", "gather", "dtmf", "disconnect"]
    for i, kind in enumerate(kinds):
        payload = {"eventType": kind, "callId": "c-many", "digits": str(i)}
        store.record_callback(
            make_record(event_type=kind, call_id="c-many", payload=payload, received_at=start + i)
        )
    stored = store.events_for_call("c-many")
    assert [e["event_type"] for e in stored] == kinds
    assert [e["payload"]["digits"] for e in stored] == [str(i) for i in range(len(kinds))]
    ids = [e["id"] for e in stored]
    assert ids == sorted(ids)


def test_arrival_order_follows_received_at(store):
    """A spooled event replayed later still sorts where it arrived."""
    late = make_record(event_type="answer", call_id="c-order", received_at=100.0)
    early = make_record(event_type="disconnect", call_id="c-order", received_at=200.0)
    store.record_callback(early)
    store.record_callback(late)
    assert [e["received_at"] for e in store.events_for_call("c-order")] == [100.0, 200.0]


def test_events_for_conference(store):
    for i in range(3):
        store.record_callback(
            make_record(
                event_type="conferenceMemberJoin",
                call_id=f"c-conf-{i}",
                conference_id="conf-1",
                received_at=1000.0 + i,
            )
        )
    store.record_callback(make_record(event_type="answer", call_id="c-conf-x"))
    stored = store.events_for_conference("conf-1")
    assert [e["call_id"] for e in stored] == ["c-conf-0", "c-conf-1", "c-conf-2"]
    assert store.events_for_conference("conf-none") == []


def test_hostile_text_is_stored_not_spooled(store):
    """NUL, lone surrogates, oversized ids and out-of-range numbers must not fail an insert."""
    record = make_record(
        call_id="c-" + "x" * 5000,
        tag="a\x00b",
        error_message="bad \ud800 surrogate",
        sip_response_code=10**12,
        latency_ms=float("nan"),
        payload={"callId": "c", "text": "nul\x00 and \ud800", "n": float("inf")},
    )
    assert store.record_callback(record) == ("inserted", None)
    [stored] = store.events_for_call(record["call_id"])
    assert stored["tag"] == "a\ufffdb"
    assert stored["sip_response_code"] is None
    assert stored["latency_ms"] is None
    assert stored["payload"]["text"] == "nul\x00 and \ud800"
    assert stored["payload"]["n"] is None
    assert not store.spool.pending()


def test_rejected_log_is_bounded_and_separate(make_store):
    store = make_store(rejected_limit=5)
    for i in range(8):
        store.record_rejected("/callbacks/answer", "POST", 400, f"bad json {i}", b"{", "10.0.0.1")
    store.record_rejected("/callbacks/answer", "POST", 413, "too big", b"x" * 10_000, None)
    store.record_rejected("/callbacks/answer", "POST", 400, "not utf-8", b"\xff\xfe\x00ok", None)
    rows = store.rejected()
    assert len(rows) == 5
    assert [r["reason"] for r in rows] == [
        "not utf-8",
        "too big",
        "bad json 7",
        "bad json 6",
        "bad json 5",
    ]
    assert rows[0]["body"] == "\ufffd\ufffd\ufffdok"
    assert len(rows[1]["body"]) == 2048
    assert rows[2]["status"] == 400 and rows[2]["remote_addr"] == "10.0.0.1"
    page = store.rejected(limit=2, before_id=rows[1]["id"])
    assert [r["reason"] for r in page] == ["bad json 7", "bad json 6"]
    assert count_rows(store) == 0  # never events


def test_record_rejected_never_raises(make_store, dead_url):
    dead = make_store(dead_url, busy_timeout=0.2)
    dead.record_rejected("/callbacks/answer", "POST", 400, "bad", b"{", None)  # no exception


def test_rollup_matches_events(store):
    hour = 3600.0
    base = 1_700_000_000 // 3600 * 3600.0
    plan = [
        ("hangup", base + 10),
        ("hangup", base + 20),
        ("busy", base + 30),
        ("timeout", base + hour + 5),
        ("busy", base + hour + 6),
        ("busy", base + 2 * hour + 1),
        (None, base + 2 * hour + 2),
    ]
    for i, (cause, at) in enumerate(plan):
        store.record_callback(make_record(call_id=f"c-roll-{i}", cause=cause, received_at=at))
    store.record_callback(make_record(event_type="answer", call_id="c-roll-a", received_at=base))

    from_events = collections.Counter(
        e["cause"] or "unknown"
        for e in store.disconnects(exclude_hangup=False, limit=1000)
        if e["event_type"] == "disconnect"
    )
    assert store.cause_counts() == dict(from_events)
    assert store.cause_counts() == {"hangup": 2, "busy": 3, "timeout": 1, "unknown": 1}
    assert store.cause_counts(since=base + hour, until=base + 2 * hour) == {
        "timeout": 1,
        "busy": 1,
    }
    assert store.failures_over_time(base, base + 3 * hour) == [
        (int(base), "busy", 1),
        (int(base + hour), "busy", 1),
        (int(base + hour), "timeout", 1),
        (int(base + 2 * hour), "busy", 1),
        (int(base + 2 * hour), "unknown", 1),
    ]
    with_hangups = store.failures_over_time(base, base + hour, exclude_hangup=False)
    assert with_hangups == [(int(base), "busy", 1), (int(base), "hangup", 2)]


@pytest.fixture
def disconnect_set(store):
    """Ten disconnects with varied causes, numbers, tags and error ids."""
    rows = [
        # (cause, from, to, tag, error_id, received_at)
        ("hangup", "+15550000001", "+15550009999", None, None, 1000.0),
        ("busy", "+15550000002", "+15550009999", "t1", None, 1001.0),
        ("timeout", "+15550000001", "+15550000003", None, None, 1002.0),
        ("error", "+15550000004", "+15550009999", "t1", "err-1", 1003.0),
        ("hangup", "+15550000005", "+15550000001", "t2", None, 1004.0),
        ("rejected", "+15550000006", "+15550009999", None, "err-2", 1005.0),
        ("busy", "+15550000007", "+15550009999", None, None, 1006.0),
        ("error", "+15550000008", "+15550009999", "t1", "err-1", 1007.0),
        ("cancel", "+15550000009", "+15550009999", None, None, 1008.0),
        ("hangup", "+15550000010", "+15550009999", None, None, 1009.0),
    ]
    for i, (cause, frm, to, tag, error_id, at) in enumerate(rows):
        store.record_callback(
            make_record(
                call_id=f"d-{i}",
                cause=cause,
                from_number=frm,
                to_number=to,
                tag=tag,
                error_id=error_id,
                received_at=at,
            )
        )
    store.record_callback(make_record(event_type="answer", call_id="d-answer"))
    return store


def call_ids(rows):
    return [r["call_id"] for r in rows]


def test_disconnects_filters(disconnect_set):
    store = disconnect_set
    # default: newest first, hangups excluded, no other event types
    assert call_ids(store.disconnects()) == ["d-8", "d-7", "d-6", "d-5", "d-3", "d-2", "d-1"]
    assert len(store.disconnects(exclude_hangup=False)) == 10
    assert call_ids(store.disconnects(causes=["busy", "cancel"])) == ["d-8", "d-6", "d-1"]
    assert call_ids(store.disconnects(causes=["hangup"])) == ["d-9", "d-4", "d-0"]
    assert store.disconnects(causes=[]) == []
    assert call_ids(store.disconnects(since=1003.0, until=1006.0)) == ["d-5", "d-3"]
    assert call_ids(store.disconnects(number="+15550000001", exclude_hangup=False)) == [
        "d-4",
        "d-2",
        "d-0",
    ]
    assert call_ids(store.disconnects(tag="t1")) == ["d-7", "d-3", "d-1"]
    assert call_ids(store.disconnects(error_id="err-1")) == ["d-7", "d-3"]
    assert call_ids(store.disconnects(tag="t1", error_id="err-1", causes=["error"])) == [
        "d-7",
        "d-3",
    ]
    [row] = store.disconnects(causes=["rejected"])
    assert row["payload"]["callId"] == "d-5" and row["error_id"] == "err-2"


def test_disconnects_keyset_pagination(disconnect_set):
    store = disconnect_set
    seen: list[str] = []
    before = None
    while True:
        page = store.disconnects(exclude_hangup=False, limit=3, before_id=before)
        if not page:
            break
        assert len(page) <= 3
        seen += call_ids(page)
        before = page[-1]["id"]
    assert seen == [f"d-{i}" for i in range(9, -1, -1)]


def test_rate_limit_is_shared_between_stores(make_store):
    first, second = make_store(), make_store()
    now = 1_000_020.0
    hits = [
        first.hit_rate_limit("ctc:203.0.113.9", 60, 3, now=now),
        second.hit_rate_limit("ctc:203.0.113.9", 60, 3, now=now + 1),
        first.hit_rate_limit("ctc:203.0.113.9", 60, 3, now=now + 2),
        second.hit_rate_limit("ctc:203.0.113.9", 60, 3, now=now + 3),
    ]
    assert hits == [True, True, True, False]
    assert first.hit_rate_limit("ctc:other", 60, 3, now=now)  # keys are independent
    assert second.hit_rate_limit("ctc:203.0.113.9", 60, 3, now=now + 60)  # next window


def test_rate_limit_under_concurrency(store):
    allowed: list[bool] = []
    barrier = threading.Barrier(8)

    def hit() -> None:
        barrier.wait(timeout=10)
        for _ in range(5):
            allowed.append(store.hit_rate_limit("burst", 3600, 12, now=7200.0))

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(allowed) == 40 and allowed.count(True) == 12


def test_outbound_attempt_lifecycle(store):
    store.record_outbound_attempt("att-1", {"to": "+15550001111", "tag": "ctc"})
    store.record_outbound_attempt("att-1", {"to": "changed"})  # idempotent
    store.record_outbound_attempt("att-2", {"to": "+15550002222"})
    attempt = store.outbound_attempt("att-1")
    assert attempt is not None
    assert attempt["outcome"] == "pending" and attempt["request"] == {
        "to": "+15550001111",
        "tag": "ctc",
    }
    assert [a["attempt_id"] for a in store.unsettled_outbound()] == ["att-1", "att-2"]

    store.settle_outbound("att-1", "created", call_id="c-out-1")
    store.settle_outbound("att-2", "unknown", error="read timeout")
    settled = store.outbound_for_call("c-out-1")
    assert settled is not None and settled["attempt_id"] == "att-1"
    assert settled["outcome"] == "created" and settled["settled_at"] is not None
    assert [a["attempt_id"] for a in store.unsettled_outbound()] == ["att-2"]
    assert store.outbound_attempt("att-2")["error"] == "read timeout"

    # reconciliation later finds the call: the outcome changes, the request stays
    store.settle_outbound("att-2", "created", call_id="c-out-2")
    assert store.outbound_for_call("c-out-2")["request"] == {"to": "+15550002222"}
    store.settle_outbound("att-2", "failed")  # a known callId is kept
    assert store.outbound_attempt("att-2")["call_id"] == "c-out-2"
    assert store.unsettled_outbound() == []
    assert store.outbound_attempt("nope") is None
    assert store.outbound_for_call("nope") is None


def test_purge(store):
    old = time.time() - 40 * 86400
    for i in range(3):
        store.record_callback(make_record(call_id=f"old-{i}", cause="busy", received_at=old))
    store.record_callback(make_record(call_id="new-0", cause="busy"))
    store.record_rejected("/callbacks/answer", "POST", 400, "bad", b"{", None)
    store.record_outbound_attempt("att-new", {})
    assert store.purge(30) == 3
    assert store.events_for_call("old-0") == []
    assert call_ids(store.disconnects()) == ["new-0"]
    assert len(store.rejected()) == 1
    assert store.outbound_attempt("att-new") is not None
    # the rollup keeps history (aggregate counts only)
    assert store.cause_counts() == {"busy": 4}
    assert store.purge(0) == 3  # the new event, the rejected row, the attempt
    assert count_rows(store) == 0


def test_health(store, make_store, dead_url):
    assert store.health() is True
    assert make_store(dead_url, busy_timeout=0.2).health() is False


def test_reads_on_a_dead_database_raise_store_unavailable(make_store, dead_url):
    dead = make_store(dead_url, busy_timeout=0.2)
    with pytest.raises(StoreUnavailable):
        dead.events_for_call("c-1")
    with pytest.raises(StoreUnavailable):
        dead.migrate()
    assert dead.find_callback("/callbacks/answer", "0" * 64) is None  # logged, not raised


def test_migrate_is_idempotent(make_store):
    first = make_store()
    first.migrate()
    first.migrate()
    make_store().migrate()  # another server
    with first.engine.connect() as conn:
        versions = conn.execute(select(schema_version.c.version)).scalars().all()
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert first.record_callback(make_record())[0] == "inserted"


def test_concurrent_migrations_do_not_collide(make_store):
    stores = [make_store() for _ in range(4)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def migrate(s: Store) -> None:
        try:
            barrier.wait(timeout=10)
            s.migrate()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert count_rows(stores[0], schema_version) == SCHEMA_VERSION


def test_first_use_migrates_without_an_explicit_call(store):
    assert store.events_for_call("nobody") == []


def test_nothing_connects_before_first_use(make_store, dead_url, tmp_path):
    lazy = make_store(dead_url)  # would fail to connect; construction must not try
    assert not lazy.connected
    sqlite_store = make_store(f"sqlite:///{tmp_path / 'lazy' / 'events.db'}")
    assert not (tmp_path / "lazy" / "events.db").exists()
    assert not sqlite_store.connected


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_uses_its_own_connections(store):
    """gunicorn forks after the app (and maybe the store) was used in the parent."""
    assert store.record_callback(make_record(call_id="c-parent"))[0] == "inserted"
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            ok = store.record_callback(make_record(call_id="c-child"))[0] == "inserted"
            code = 0 if ok and len(store.events_for_call("c-parent")) == 1 else 1
        finally:
            os._exit(code)  # no cleanup: the parent's connections are not the child's
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # the parent's pooled connections still work after the child used the store
    assert store.record_callback(make_record(call_id="c-parent-2"))[0] == "inserted"
    assert len(store.events_for_call("c-child")) == 1


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgres://u:p@db:5432/app", "postgresql+psycopg"),
        ("postgresql://u:p@db/app", "postgresql+psycopg"),
        ("postgresql+psycopg://u:p@db/app", "postgresql+psycopg"),
        ("sqlite:////tmp/x.db", "sqlite"),
    ],
)
def test_url_normalisation(given, driver):
    assert normalize_url(given).drivername == driver


def test_repr_hides_the_password(tmp_path):
    built = Store("postgres://user:s3cret@db/app", spool_path=str(tmp_path / "s"))
    assert "s3cret" not in repr(built)


def test_unsupported_database_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unsupported"):
        Store("mysql://u@db/app", spool_path=str(tmp_path / "s"))
    with pytest.raises(ValueError, match="sqlite_synchronous"):
        Store("sqlite:///x.db", spool_path=str(tmp_path / "s"), sqlite_synchronous="SOMETIMES")


def test_b_leg_events_are_found_by_their_a_leg(store):
    store.record_callback(
        make_record(call_id="c-agent", event_type="transferAnswer", parent_call_id="c-visitor")
    )
    store.record_callback(make_record(call_id="c-visitor", event_type="answer"))
    [leg] = store.events_for_parent_call("c-visitor")
    assert (leg["call_id"], leg["event_type"]) == ("c-agent", "transferAnswer")
    assert store.events_for_parent_call("c-agent") == []


def test_version_1_database_is_upgraded(make_store):
    """A database created by schema version 1 gains parent_call_id and the version 2
    indexes, and loses the unused event-type index (version 3)."""
    from sqlalchemy import inspect, text

    from store import schema

    old = make_store()
    engine = old.engine
    with engine.begin() as conn:
        schema.schema_version.create(conn, checkfirst=True)
        schema._v1(conn)
        conn.execute(text("DROP INDEX IF EXISTS ix_events_parent_call_id"))
        conn.execute(text("DROP INDEX IF EXISTS ix_disconnects_window"))
        conn.execute(text("DROP INDEX IF EXISTS ix_disconnects_failures_tag"))
        conn.execute(text("ALTER TABLE events DROP COLUMN parent_call_id"))
        conn.execute(text("CREATE INDEX ix_events_event_type ON events (event_type, id)"))
        conn.execute(schema.schema_version.insert().values(version=1, applied_at=0.0))
    old.dispose()
    upgraded = make_store()
    upgraded.migrate()
    with upgraded.engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("events")}
        indexes = {i["name"] for i in inspect(conn).get_indexes("disconnects")}
        event_indexes = {i["name"] for i in inspect(conn).get_indexes("events")}
        versions = conn.execute(select(schema_version.c.version)).scalars().all()
    assert "parent_call_id" in columns
    assert {"ix_disconnects_window", "ix_disconnects_failures_tag"} <= indexes
    assert "ix_events_event_type" not in event_indexes
    assert "ix_events_call_id" in event_indexes
    assert versions == list(range(1, schema.SCHEMA_VERSION + 1))
