"""A conference's page: every event of the conference, linked from its members' call pages."""

from __future__ import annotations

import re

from tests.callbacks.helpers import call_id, conference_event

CONFERENCE = "conf-11111111-22222222-3333-4444-5555-666666666666"


def test_a_conference_page_shows_its_events_and_links_the_members(operator, bw):
    first, second = call_id(), call_id()
    events = [
        conference_event("conferenceCreated", conferenceId=CONFERENCE),
        conference_event("conferenceMemberJoin", conferenceId=CONFERENCE, callId=first),
        conference_event("conferenceMemberJoin", conferenceId=CONFERENCE, callId=second),
        conference_event("conferenceMemberExit", conferenceId=CONFERENCE, callId=first),
        conference_event("conferenceMemberExit", conferenceId=CONFERENCE, callId=second),
        conference_event("conferenceCompleted", conferenceId=CONFERENCE),
    ]
    for payload in events:
        assert bw.post("conference", payload).status_code in (200, 204)

    member_page = operator.get(f"/dashboard/calls/{first}").get_data(as_text=True)
    assert f'href="/dashboard/conferences/{CONFERENCE}"' in member_page

    reply = operator.get(f"/dashboard/conferences/{CONFERENCE}")
    assert reply.status_code == 200
    html = reply.get_data(as_text=True)
    assert re.findall(r'<li class="entry (\w+)', html) == [e["eventType"] for e in events]
    assert "Conference <span" in html
    assert f'href="/dashboard/calls/{second}"' in html
    assert "Replay with the current handler" not in html  # replay lives on the call pages

    assert operator.get("/dashboard/conferences/conf-unknown").status_code == 404


def test_the_conference_page_needs_a_login(client):
    reply = client.get(f"/dashboard/conferences/{CONFERENCE}")
    assert reply.status_code in (302, 303, 401)


def _summary(html: str) -> str:
    start = html.index('id="conference-summary"')
    return html[start : html.index("</section>", start)]


def _field(summary: str, name: str) -> str:
    found = re.search(rf'id="summary-{name}">(.*?)</dd>', summary, re.S)
    assert found, name
    return found.group(1)


def test_a_conference_page_has_a_summary_header(operator, bw):
    first, second = call_id(), call_id()
    at = "2026-01-02T03:04:{:02d}.000Z".format
    events = [
        conference_event("conferenceCreated", conferenceId=CONFERENCE, name="standup", eventTime=at(0)),
        conference_event(
            "conferenceMemberJoin", conferenceId=CONFERENCE, name="standup", callId=first,
            eventTime=at(1), **{"from": "+12025550101", "to": "+12025550199"},
        ),
        conference_event(
            "conferenceMemberJoin", conferenceId=CONFERENCE, name="standup", callId=second,
            eventTime=at(2), **{"from": "+12025550102", "to": "+12025550199"},
        ),
        conference_event("conferenceMemberExit", conferenceId=CONFERENCE, name="standup", callId=first, eventTime=at(30)),
    ]  # fmt: skip
    for payload in events:
        assert bw.post("conference", payload).status_code in (200, 204)
    head = _summary(operator.get(f"/dashboard/conferences/{CONFERENCE}").get_data(as_text=True))
    assert _field(head, "name") == "standup"
    assert _field(head, "conference-id") == CONFERENCE
    assert _field(head, "created") == "2026-01-02 03:04:00.000 UTC"
    assert _field(head, "ended") == "not ended yet"
    assert "active" in _field(head, "state")
    assert _field(head, "recording") == "none"
    members = _field(head, "members")
    assert re.findall(r'href="/dashboard/calls/([^"]+)"', members) == [first, second]
    assert "+12025550101 → +12025550199" in members
    assert "left 2026-01-02 03:04:30.000 UTC" in members

    ended = conference_event(
        "conferenceCompleted", conferenceId=CONFERENCE, name="standup", eventTime=at(45)
    )
    assert bw.post("conference", ended).status_code in (200, 204)
    head = _summary(operator.get(f"/dashboard/conferences/{CONFERENCE}").get_data(as_text=True))
    assert _field(head, "ended") == "2026-01-02 03:04:45.000 UTC"
    assert _field(head, "duration") == "45.0 s"
    assert _field(head, "state") == "completed"
    # A call's page keeps its own header, not this one.
    call_page = operator.get(f"/dashboard/calls/{first}").get_data(as_text=True)
    assert 'id="conference-summary"' not in call_page
