"""The example conference line (examples/conference.py) in the real app with its in-app
sandbox: three callers dial in, the conference's events reach the flow and the store, and the
recording is downloadable."""

from __future__ import annotations

import io
import wave

import pytest
import requests

from examples.conference import LINE_NUMBER, ROOM
from sandbox import credentials
from tests.sandbox.test_conferences import CALLERS, wait_until


@pytest.fixture
def app_config(app_config):
    app_config["VOICE_FLOWS"] = "examples.ivr,examples.conference"
    return app_config


def test_three_callers_meet_on_the_recorded_conference_line(live_app):
    from store import get_store

    account, username, password = credentials(live_app.app.config)
    api = f"{live_app.base_url}/sandbox/api/v2/accounts/{account}"
    store = get_store(live_app.app)
    with requests.Session() as http:
        http.trust_env = False
        http.auth = (username, password)
        calls = []
        for caller in CALLERS:
            reply = http.post(
                f"{live_app.base_url}/sandbox/sandbox-control/inbound",
                json={"to": LINE_NUMBER, "from": caller},
                timeout=10,
            )
            assert reply.status_code == 201, reply.text
            calls.append(reply.json()["callId"])
        (conference,) = wait_until(
            lambda: [
                c
                for c in http.get(f"{api}/conferences", params={"name": ROOM}, timeout=10).json()
                if len(http.get(f"{api}/conferences/{c['id']}", timeout=10).json()["activeMembers"])
                == 3
            ]
        )
        conference_id = conference["id"]
        assert conference["conferenceEventUrl"] == f"{live_app.base_url}/callbacks/conference"
        for call_id in calls:
            assert (
                http.post(
                    f"{live_app.base_url}/sandbox/sandbox-control/calls/{call_id}/hangup",
                    json={},
                    timeout=10,
                ).status_code
                == 202
            )
        stored = wait_until(
            lambda: (
                [
                    row
                    for row in store.events_for_conference(conference_id)
                    if row["event_type"] == "conferenceRecordingAvailable"
                ]
                and store.events_for_conference(conference_id)
            )
        )
        kinds = [row["event_type"] for row in stored]
        assert kinds[:4] == ["conferenceCreated"] + ["conferenceMemberJoin"] * 3
        assert kinds[-2:] == ["conferenceCompleted", "conferenceRecordingAvailable"]
        assert kinds.count("conferenceMemberExit") == 3
        # The events reached the conference line's flow (routed by the conference's tag).
        assert "<StartRecording" in stored[0]["reply_body"]
        assert "A caller joined" in stored[1]["reply_body"]
        assert not [row["error_detail"] for row in stored if row["error_detail"]]
        payload = stored[-1]["payload"]
        media = http.get(payload["mediaUrl"], timeout=10)
        assert media.status_code == 200
        with wave.open(io.BytesIO(media.content)) as audio:
            seconds = audio.getnframes() / audio.getframerate()
        assert abs(seconds - float(payload["duration"][2:-1])) < 0.001
        for call_id in calls:  # each member's own events: initiate, join, exit, disconnect
            live_app.app.extensions["sandbox"].wait_for(call_id, "disconnected", timeout=20)
            events = live_app.events(call_id)
            assert events[0] == "initiate" and events[-1] == "disconnect"
            assert "conferenceMemberJoin" in events and "conferenceMemberExit" in events


def test_the_load_commands_conference_scenario(live_app):
    """``python -m sandbox load --scenario conference``: trios meet on the line; nothing lost."""
    from sandbox.load import run_load
    from tests.conftest import CALLBACK_PASSWORD, CALLBACK_USER

    figures = run_load(
        app_url=live_app.base_url,
        calls=2,  # two rooms of three
        concurrency=6,
        callback_user=CALLBACK_USER,
        callback_password=CALLBACK_PASSWORD,
        app_database=live_app.app.config["DATABASE_URL"],
        time_scale=0.001,
        timeout=60,
        scenario="conference",
    )
    assert figures["conferences"] == 2 and figures["three_party_conferences"] == 2
    assert figures["completed_conferences"] == 2
    assert figures["callback_errors"] == 0 and figures["unfinished_calls"] == 0
    assert figures["events_lost"] == 0 and figures["events_stored"] == 6 * 4
    # Each conference's created, completed and recording available, all stored.
    assert figures["conference_events_acknowledged"] == 2 * 3
    assert figures["conference_events_stored"] == 2 * 3
