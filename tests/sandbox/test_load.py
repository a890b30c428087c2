"""``python -m sandbox load``'s scenarios against the real app: nothing lost, no errors."""

from __future__ import annotations

import pytest

from sandbox.load import run_load
from sandbox.load_scenarios import MIXES, SCENARIOS
from tests.conftest import CALLBACK_PASSWORD, CALLBACK_USER


@pytest.fixture
def app_config(app_config):
    """The app with the demo IVR, the voicemail flow the recorded calls reach and the
    conference line."""
    flows = "examples.ivr,examples.voicemail,examples.conference"
    return {**app_config, "VOICE_FLOWS": flows}


def test_the_mixed_scenario_delivers_every_event_of_every_kind_of_call(app_config, live_app):
    figures = run_load(
        app_url=live_app.base_url,
        calls=8,  # each kind twice
        concurrency=6,
        callback_user=CALLBACK_USER,
        callback_password=CALLBACK_PASSWORD,
        app_database=app_config["DATABASE_URL"],
        scenario="mixed",
    )
    assert figures["scenario"] == "mixed"
    assert (figures["callback_errors"], figures["events_lost"]) == (0, 0)
    assert figures["unfinished_calls"] == 0
    assert figures["disconnect_causes"] == {"hangup": 12}
    assert figures["three_party_conferences"] == figures["completed_conferences"] == 2
    # 2 inbound IVR calls with a transfer (7 callbacks each), 2 conferences of 3 members (4
    # each), 2 recorded calls (5 each), 2 outbound IVR calls (3 each) ...
    assert figures["events_stored"] == 14 + 24 + 10 + 6
    # ... and each conference's created, completed and recording available, naming no call
    assert figures["conference_events_acknowledged"] == figures["conference_events_stored"] == 6
    assert figures["events_acknowledged"] == 14 + 24 + 10 + 6 + 6


def test_every_mix_names_known_scenarios():
    assert all(name in SCENARIOS for names in MIXES.values() for name in names)
