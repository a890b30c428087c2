"""Duplicate deliveries: stored once, answered as the first time, also when concurrent."""

from __future__ import annotations

import threading

from bxml import Response, SpeakSentence
from tests.callbacks.conftest import events
from tests.callbacks.helpers import (
    Bandwidth,
    answer_event,
    call_event,
    call_id,
    disconnect_event,
)

# --- duplicates --------------------------------------------------------------------------------


def test_duplicate_delivery_is_stored_once_and_answered_the_same(app, voice, bandwidth):
    counter = iter(range(100))
    voice.on("answer")(lambda event: Response(SpeakSentence(f"reply {next(counter)}")))
    payload = answer_event()
    first = bandwidth.post("answer", payload)
    second = bandwidth.get("answer", payload)
    assert first.data == second.data
    assert len(events(app, payload["callId"])) == 1


def test_duplicate_answered_elsewhere_runs_the_handler_but_gets_the_stored_reply(
    app, voice, bandwidth
):
    """A copy this process has not answered (another worker did, or it restarted since) is
    handled, then answered with the reply stored first; still one row."""
    calls = []
    voice.on("answer")(lambda event: calls.append(1) or Response(SpeakSentence(f"n{len(calls)}")))
    payload = answer_event()
    first = bandwidth.post("answer", payload)
    again = bandwidth.post("answer", payload)
    assert len(calls) == 1  # answered from this process's memory
    app.extensions["callbacks"].recent.clear()  # as if another worker got the copy
    elsewhere = bandwidth.post("answer", payload)
    assert len(calls) == 2
    assert first.data == again.data == elsewhere.data
    assert b"n1" in elsewhere.data
    assert len(events(app, payload["callId"])) == 1


def test_recent_replies_are_bounded():
    from callbacks.views import RecentReplies

    recent = RecentReplies(capacity=3)
    for n in range(5):
        recent.remember(("answer", str(n)), {"reply_status": 200 + n})
    assert recent.get(("answer", "0")) is None and recent.get(("answer", "1")) is None
    assert [recent.get(("answer", str(n)))["reply_status"] for n in (2, 3, 4)] == [202, 203, 204]


def test_concurrent_duplicates_are_stored_once(app, bandwidth):
    payload = disconnect_event()
    statuses = []

    def deliver():
        statuses.append(Bandwidth(app.test_client()).post("disconnect", payload).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [204] * 10
    assert len(events(app, payload["callId"])) == 1


def test_distinct_events_of_one_call_are_all_kept(app, bandwidth):
    cid = call_id()
    for digit in "1231":
        payload = call_event(
            "dtmf",
            callId=cid,
            digit=digit,
            eventTime=f"2019-06-20T15:54:2{len(events(app, cid))}.000Z",
        )
        assert bandwidth.post("dtmf", payload).status_code == 204
    assert [row["payload"]["digit"] for row in events(app, cid)] == list("1231")
