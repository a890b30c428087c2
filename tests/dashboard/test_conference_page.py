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
