"""Searching for a number.  On SQLite the runs of seven digits of each search text
(``disconnect_digits``, schema version 8) answer a query that has one and no letter; the
rows, their order and their pages must be those of the substring rule (store.search), and
those FTS5 finds for the same query; the table must follow every write of a disconnect."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, text

from store import queries, schema
from store.search import DIGITS, query_digit_runs, search_text
from tests.store.conftest import make_record

OURS = "+12025550100"  # on every call, as a deployment's own number is


def disconnect(store, call_id: str, to: str, **overrides) -> dict:
    """Store a disconnect; its call id and search text (what a search is matched against)."""
    cause = overrides.pop("cause", "busy")
    payload = {"eventType": "disconnect", "callId": call_id, "from": OURS, "to": to}
    payload.update(overrides.pop("fields", {}), cause=cause)
    record = make_record(
        call_id=call_id, from_number=OURS, to_number=to, payload=payload, cause=cause, **overrides
    )
    assert store.record_callback(record).outcome == "inserted"
    stored = dict(sorted(payload.items()))  # the payload is kept as canonical JSON
    return {
        "call_id": call_id,
        "cause": cause,
        "text": search_text(stored, record["error_message"]),
    }


@pytest.fixture
def calls(store):
    """Callees sharing their first digits, digits in other fields, a handler error, hangups."""
    made = []
    for n in range(14):
        cause = "hangup" if n % 4 == 0 else "busy"
        fields = {"tag": f"order 31415926{n % 2}"} if n % 3 == 0 else {}
        made.append(
            disconnect(store, f"c-{n}", f"+1202555{n % 2}{n:03d}", cause=cause, fields=fields)
        )
    crash = make_record(
        event_type="answer",
        call_id="c-crash",
        error_detail="Traceback ...\nKeyError: 'order 2718281'\n",
        category="handler-error",
    )
    assert store.record_callback(crash).outcome == "inserted"
    made.append(disconnect(store, "c-crash", "+12025551013", cause="hangup"))
    made[-1]["text"] += "\nKeyError: 'order 2718281'"
    made.append(disconnect(store, "c-98765432", "+447700900123"))  # digits in the call id
    return made[::-1]  # newest first, as the list shows them


def expected(calls, query: str) -> list[str]:
    return [c["call_id"] for c in calls if query.lower() in c["text"].lower()]


def pages(store, query: str, **filters) -> list[str]:
    """Every page of two rows, following before_id."""
    seen: list[str] = []
    before = None
    while True:
        rows = store.disconnects(search=query, limit=2, before_id=before, **filters)
        seen += [row["call_id"] for row in rows]
        if len(rows) < 2:
            return seen
        before = rows[-1]["id"]


QUERIES = [
    OURS,  # every call
    "+12025551005",  # one callee, whole
    "5551005",  # its last seven digits
    "+1202555",  # a shared start: shorter than a run, FTS5 answers
    "1202555",  # a run every call has
    "12025551",  # half of them
    "314159260",  # inside a tag
    "order 2718281",  # a letter: FTS5 answers
    "2718281",  # a handler error's message
    "98765432",  # inside a call id
    "77009001",  # a number of another country
    "7777777",  # no call
    "0100\n+1202555100",  # across two fields of the search text
]


@pytest.mark.parametrize("query", QUERIES)
def test_a_number_finds_every_call_whose_text_has_it_newest_first_page_by_page(store, calls, query):
    assert pages(store, query, exclude_hangup=False) == expected(calls, query)


def test_the_default_view_a_category_and_a_number_filter_combine_with_it(store, calls):
    query = "1202555"
    busy = [c["call_id"] for c in calls if c["cause"] == "busy"]
    assert pages(store, query, causes=["busy"]) == [c for c in expected(calls, query) if c in busy]
    attention = pages(store, query)  # the default view: hangups without a failure left out
    assert "c-crash" in attention and "c-0" not in attention
    assert [
        r["call_id"] for r in store.disconnects(search="2718281", categories=["handler-error"])
    ] == ["c-crash"]
    assert store.disconnects(search="2718281", categories=["busy"]) == []
    one = store.disconnects(search="1202555", number="+12025551005", exclude_hangup=False)
    assert [r["call_id"] for r in one] == ["c-5"]
    assert store.disconnects(search="7777777", number="+12025551005") == []


def test_sqlite_answers_from_the_runs_what_fts5_answers(store, calls, monkeypatch):
    if store.backend != "sqlite":
        pytest.skip("the runs of digits are SQLite's")
    answers = {q: pages(store, q, exclude_hangup=False) for q in QUERIES}
    # A run on three calls or more is common: FTS5 answers those (the shared 1202555).
    monkeypatch.setattr(queries, "PROBE_LIMIT", 3)
    assert {q: pages(store, q, exclude_hangup=False) for q in QUERIES} == answers
    monkeypatch.setattr(queries, "query_digit_runs", lambda query: [])  # FTS5 for every query
    assert {q: pages(store, q, exclude_hangup=False) for q in QUERIES} == answers
    assert query_digit_runs("5551005") and not query_digit_runs("order 2718281")


def runs_of(value: str) -> set[str]:
    return {
        found[i : i + DIGITS]
        for found in re.findall(f"[0-9]{{{DIGITS},}}", value)
        for i in range(len(found) - DIGITS + 1)
    }


def assert_runs_follow_the_texts(store) -> None:
    """disconnect_digits holds exactly the runs of every stored search text."""
    with store.engine.connect() as conn:
        texts = conn.execute(text("SELECT event_id, search_text FROM disconnects")).all()
        stored = set(conn.execute(text("SELECT gram, event_id FROM disconnect_digits")).all())
    assert stored == {(run, event_id) for event_id, value in texts for run in runs_of(value or "")}
    assert stored  # the comparison saw some


def test_sqlite_runs_follow_inserts_updates_and_purges(store, calls):
    if store.backend != "sqlite":
        pytest.skip("the runs of digits are SQLite's")
    assert_runs_follow_the_texts(store)
    with store.engine.begin() as conn:  # what the version-5 backfill does
        conn.execute(
            text("UPDATE disconnects SET search_text = 'moved to 5559999999' WHERE event_id = 1")
        )
    assert_runs_follow_the_texts(store)
    assert [r["call_id"] for r in store.disconnects(search="5559999999", exclude_hangup=False)] == [
        "c-0"
    ]
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE events SET received_at = 0 WHERE call_id IN ('c-0', 'c-1')"))
    store.purge(30)
    assert_runs_follow_the_texts(store)
    assert store.disconnects(search="5559999999", exclude_hangup=False) == []


def test_a_version_7_store_gains_the_runs_of_its_disconnects(make_store):
    old = make_store()
    old.migrate()
    disconnect(old, "c-old", "+12025550144")
    with old.engine.begin() as conn:  # back to version 7
        if old.backend == "sqlite":
            for trigger in ("insert", "delete", "update"):
                conn.execute(text(f"DROP TRIGGER disconnect_digits_{trigger}"))
            conn.execute(text("DROP TABLE disconnect_digits"))
        conn.execute(schema.schema_version.delete().where(schema.schema_version.c.version >= 8))
    old.dispose()
    upgraded = make_store()
    upgraded.migrate()
    with upgraded.engine.connect() as conn:
        versions = conn.execute(select(schema.schema_version.c.version)).scalars().all()
    assert versions == list(range(1, schema.SCHEMA_VERSION + 1))
    rows = upgraded.disconnects(search="2025550144", exclude_hangup=False)
    assert [r["call_id"] for r in rows] == ["c-old"]
    if upgraded.backend == "sqlite":
        assert_runs_follow_the_texts(upgraded)
    disconnect(upgraded, "c-new", "+12025550145")  # and the triggers are back
    assert [r["call_id"] for r in upgraded.disconnects(search="2025550145")] == ["c-new"]
