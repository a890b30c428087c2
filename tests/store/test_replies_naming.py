"""The replies that name a call (the <Bridge> that brought it in), found within a window."""

from __future__ import annotations

from tests.store.conftest import make_record


def bridge(target: str) -> str:
    return f"<Response><Bridge>{target}</Bridge></Response>"


def test_replies_naming_a_call_within_the_window(store):
    store.record_callback(make_record(call_id="c-a", received_at=100.0, reply_body=bridge("c-t")))
    store.record_callback(make_record(call_id="c-b", received_at=300.0, reply_body=bridge("c-t")))
    store.record_callback(make_record(call_id="c-c", received_at=110.0, reply_body=bridge("c-u")))
    found = store.replies_naming("c-t", 50.0, 200.0)
    assert [row["call_id"] for row in found] == ["c-a"]
    assert found[0]["payload"]["callId"] == "c-a"  # rows come back like events_for_call's
    assert [r["call_id"] for r in store.replies_naming("c-t", 50.0, 400.0)] == ["c-a", "c-b"]
    assert store.replies_naming("c-t", 400.0, 500.0) == []


def test_like_wildcards_in_the_call_id_are_literal(store):
    store.record_callback(make_record(call_id="c-a", received_at=100.0, reply_body=bridge("c-xy")))
    assert store.replies_naming("c-_y", 0.0, 200.0) == []
    assert store.replies_naming("c-%", 0.0, 200.0) == []
    assert [r["call_id"] for r in store.replies_naming("c-xy", 0.0, 200.0)] == ["c-a"]
