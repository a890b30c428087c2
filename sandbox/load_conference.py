"""The three-party conference of ``python -m sandbox load --scenario conference`` (and of
``mixed``): one instance places three calls at once from the example conference line's number
(``examples/conference.py``: the app must run it, ``VOICE_FLOWS=examples.ivr,
examples.conference``), each trio tagged with its room, so the line puts them in one
conference; its events come back to the app (``/callbacks/conference``), which records the
conference.  Each member hangs up ``TALK_SECONDS`` (simulated) after it answered, so the
conference completes and its recording becomes available.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sandbox.conference_store import ConferenceStore
from sandbox.core import Sandbox

API_URL = "http://sandbox/api/v2"

LINE_NUMBER = "+12025550170"  # examples/conference.py answers calls from this number
MEMBERS = ("+12025550181", "+12025550182", "+12025550183")
# Simulated; 2 s at the benchmark's time scale of 0.001: long enough for the three calls of
# a room to meet although the app's first answers (cold workers) can take a second.
TALK_SECONDS = 2000


def setup(sandbox: Sandbox, target: Any) -> None:
    for number in MEMBERS:
        sandbox.script(number, {"hangupAfter": TALK_SECONDS})


def place_conference(sandbox: Sandbox, target: Any, room: int) -> list[str]:
    # ``target``: the load's sandbox.load_scenarios.Target (which names this scenario).
    """Three calls from the line, one to each member, tagged with room ``room``."""
    calls = []
    for member in MEMBERS:
        request = {
            "to": member,
            "from": LINE_NUMBER,
            "applicationId": "load-test",
            "answerUrl": target.url("/callbacks/answer"),
            "disconnectUrl": target.url("/callbacks/disconnect"),
            "tag": f"load-room-{room}",
            **target.credentials(),
        }
        created = sandbox.create_call(sandbox.settings.account_id, request, API_URL)
        calls.append(str(created["callId"]))
    return calls


def conference_figures(sandbox: Sandbox, account_id: str) -> dict[str, Any]:
    """How many conferences the load made, how many had all three members, and how many
    are completed."""
    store = ConferenceStore(sandbox.db)
    rows = store.page(
        account_id, None, name=None, min_created=None, created_before=None, limit=100_000
    )
    sizes = [len(store.members(row["conference_id"], active_only=False)) for row in rows]
    return {
        "conferences": len(rows),
        "three_party_conferences": sum(1 for size in sizes if size == len(MEMBERS)),
        "completed_conferences": sum(1 for row in rows if not row["active"]),
    }


def stored_conference_events(database: str) -> Counter[str]:
    """eventType counts of the app's stored events that name a conference and no call
    (conferenceCreated, conferenceCompleted, conferenceRecordingAvailable)."""
    from sqlalchemy import create_engine, text

    from store.core import normalize_url

    engine = create_engine(normalize_url(database))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT event_type FROM events"
                    " WHERE call_id IS NULL AND conference_id IS NOT NULL"
                )
            )
            return Counter(row[0] for row in rows)
    finally:
        engine.dispose()
