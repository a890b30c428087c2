"""The kit itself: steps, the test clock, failures that name the step, every kind of action
and outcome, against real flows (tests/kit/flows.py and the demo IVR)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sandbox.kit import KitFailure
from tests.kit.conftest import CALLER, IVR_NUMBER, SUPPORT
from tests.kit.flows import MEET, SCREENED, SCREENER, SLOW_MENU, VOICEMAIL

ROOT = Path(__file__).resolve().parents[2]


def test_a_wrong_expectation_names_the_step_and_shows_the_transcript(voice_call):
    call = voice_call.dial(IVR_NUMBER, from_=CALLER)
    call.expect_heard("For support, press 2")
    call.press("2")
    with pytest.raises(KitFailure) as failure:
        call.expect_heard("Goodbye")
    message = str(failure.value)
    first, *rest = message.splitlines()
    assert first == (
        "step 4 (after pressing 2): expected to hear 'Goodbye', the caller heard: "
        "'Please enter your 4 digit order number.'"
    )
    assert "waiting for the caller's input" in rest[0]
    transcript = "\n".join(rest)
    assert "heard 'Thanks for calling. For sales, press 1. For support, press 2.'" in transcript
    assert "pressed '2'" in transcript
    assert transcript.index("pressed '2'") < transcript.index("4 digit order number")
    assert "Last callback: gather -> 200" in message


def test_a_failing_user_test_reports_the_step_under_pytest(tmp_path):
    """A user's suite, as the README sets it up, with a wrong expectation: pytest's report
    names the step, shows the transcript, and points at the user's line."""
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            import pytest

            pytest_plugins = ["sandbox.pytest_plugin"]


            @pytest.fixture
            def voice_app_config():
                return {"VOICE_FLOWS": "examples.ivr"}
            """
        )
    )
    (tmp_path / "test_menu.py").write_text(
        textwrap.dedent(
            """
            def test_menu(voice_call):
                call = voice_call.dial("+12025550199")
                call.press("1")
                call.expect_heard("Connecting you to support")
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert (
        "KitFailure: step 3 (after pressing 1): expected to hear 'Connecting you to support', "
        "the caller heard: 'Thanks for calling. For sales, press 1. For support, press 2.'; "
        "'Connecting you to sales.'" in out
    )
    assert "pressed '1'" in out and "transferred to +12025550142" in out  # the transcript
    assert 'call.expect_heard("Connecting you to support")' in out  # the user's line
    assert "1 failed" in out


def test_steps_actions_and_outcomes(voice_call):
    call = voice_call.dial(IVR_NUMBER, from_=CALLER)
    assert call.expect_heard(re.compile(r"for support, press (\d)", re.I)).startswith("Thanks")
    call.press("2")
    call.expect_heard("4 digit order number")
    call.press("1234")
    call.expect_heard("Order 1 2 3 4. Connecting you to support.")
    agent = call.expect_transfer_to(SUPPORT)
    agent.expect_heard("A caller from the demo IVR is on the line.")
    call.hang_up()
    assert call.ended and call.disconnect_cause == "hangup"
    assert [c.event_type for c in call.callbacks] == [
        "initiate",
        "gather",
        "gather",
        "transferAnswer",
        "transferDisconnect",
        "disconnect",
    ]
    assert call.callbacks[-1].event_type == "disconnect"
    assert call.callbacks[-1].payload["cause"] == "hangup"
    assert "<Gather" in call.replies[0] and "For sales, press 1" in call.replies[0]
    assert call.callbacks[2].payload["digits"] == "1234"
    assert call.callbacks[2].state == {"step": "order", "department": "support"}
    # The tag state after each step: dialled (1), heard (2), pressed 2 (3) ...
    assert call.tag_state(1) == {"step": "department"}
    assert call.tag_state(3) == {"step": "order", "department": "support"}
    with pytest.raises(ValueError, match="no step 99"):
        call.tag_state(99)
    # The agent's leg is a call of its own: its callbacks and what its person heard.
    assert [c.event_type for c in agent.callbacks] == ["transferAnswer", "transferDisconnect"]
    assert agent.heard == ["A caller from the demo IVR is on the line."]
    assert agent.disconnect_cause == "hangup"


def test_the_clock_moves_only_when_the_test_moves_it(voice_call):
    call = voice_call.dial(SLOW_MENU, from_=CALLER)
    # Two prompts and 3 s of audio play by themselves until the Gather listens.
    call.expect_heard("Press 1 to continue.")
    assert call.heard == ["Welcome.", "https://example.com/hold-music.mp3", "Press 1 to continue."]
    call.advance(29)  # firstDigitTimeout is 30 s
    assert [c.event_type for c in call.callbacks] == ["initiate"]
    call.advance(1)
    assert [c.event_type for c in call.callbacks] == ["initiate", "gather"]
    assert call.callbacks[1].payload["digits"] == ""
    call.expect_heard("Nothing pressed. Goodbye.")
    # Simulated times are exact: "Welcome." 0.48 s, the audio 3 s, the prompt 1.2 s, 30 s.
    said = {e["text"]: e["at"] for e in call.transcript if e["kind"] == "speech"}
    assert said["Press 1 to continue."] == 3.48
    assert said["Nothing pressed. Goodbye."] == 34.68


def test_staying_silent_times_the_gather_out(voice_call):
    call = voice_call.dial(IVR_NUMBER, from_=CALLER)
    call.stay_silent()
    call.expect_heard("We did not hear a choice. Goodbye.")
    assert call.expect_ended("hangup") == "hangup"
    assert call.callbacks[1].payload["digits"] == ""


def test_listen_plays_until_the_call_waits_for_the_caller(voice_call):
    call = voice_call.dial(SLOW_MENU, from_=CALLER)
    assert call.listen() == [
        "Welcome.",
        "https://example.com/hold-music.mp3",
        "Press 1 to continue.",
    ]
    call.press("1")
    assert call.listen() == ["You pressed one. Goodbye."]
    assert call.ended


def test_saying_a_phrase_into_a_record(voice_call):
    call = voice_call.dial(VOICEMAIL, from_=CALLER)
    call.expect_heard("Leave a message after the tone.")
    call.say("Please call me back about my order")
    call.expect_heard("Thanks, goodbye.")
    call.expect_ended("hangup")
    transcribed = next(c for c in call.callbacks if c.event_type == "transcriptionAvailable")
    assert transcribed.payload["transcription"]["text"] == "Please call me back about my order"
    [recording] = call.recordings
    assert recording["callId"] == call.call_id
    said = [e for e in call.transcript if e["kind"] == "said"]
    assert [e["text"] for e in said] == ["Please call me back about my order"]
    assert call.tag_state() == {"step": "done"}


def test_the_app_places_a_call_a_machine_answers(voice_call):
    voice_call.script("+12025550177", machine_detection="machine")
    call = voice_call.place_call(
        to="+12025550177", flow="kit-reminder", machine_detection={"mode": "sync"}
    )
    call.expect_heard("Sorry we missed you.")
    call.expect_ended("hangup")
    answer = call.callbacks[0]
    assert answer.event_type == "answer"
    assert answer.payload["machineDetectionResult"]["value"] == "answering-machine"


def test_the_app_places_a_call_a_person_answers(voice_call):
    call = voice_call.place_call(to="+12025550178", flow="kit-reminder", state={"at": "3 pm"})
    assert call.status == "initiated"  # ringing: the clock has not moved yet
    call.expect_heard("Reminder: your appointment is at 3 pm.")
    assert call.tag_state() == {"at": "3 pm", "reminded": True}
    call.expect_ended("hangup")


def test_async_machine_detection_arrives_as_its_own_callback(voice_call):
    voice_call.script("+12025550179", machine_detection="machine", greeting_seconds=12)
    cfg = voice_call.app.config
    detection = {
        "mode": "async",
        "callbackUrl": voice_call.base_url + "/callbacks/machineDetectionComplete",
        "username": cfg["CALLBACK_USERNAME"],
        "password": cfg["CALLBACK_PASSWORD"],
    }
    call = voice_call.place_call(
        to="+12025550179", flow="kit-reminder", state={"hold": 30}, machine_detection=detection
    )
    call.expect_heard("Reminder: your appointment is at noon.")  # answered at once
    detected = call.expect_callback("machineDetectionComplete")
    assert detected.payload["machineDetectionResult"]["value"] == "answering-machine"
    # At speechThreshold (10 s) after the answer (1 s of ringing).
    assert [c.event_type for c in call.callbacks] == ["answer", "machineDetectionComplete"]


def test_a_busy_callee(voice_call):
    voice_call.script("+12025550180", answer="busy")
    call = voice_call.place_call(to="+12025550180", flow="kit-reminder")
    assert call.expect_ended("busy") == "busy"
    assert [c.event_type for c in call.callbacks] == ["disconnect"]
    with pytest.raises(KitFailure, match=r"step 3 \(after the app called \+12025550180\)"):
        call.press("1")  # the call is over


def test_expect_ended_with_the_wrong_cause_says_which(voice_call):
    call = voice_call.dial(IVR_NUMBER, from_=CALLER)
    call.press("9")
    with pytest.raises(KitFailure) as failure:
        call.expect_ended("busy")
    assert str(failure.value).startswith(
        "step 3 (after pressing 9): expected the call to end with 'busy', it ended with 'hangup'"
    )
    assert "heard 'Sorry, that is not a choice. Goodbye.'" in str(failure.value)


def test_expect_call_finds_a_call_the_app_placed(voice_call):
    from calls.outbound import place_call

    with voice_call.app.app_context():
        place_call(to="+12025550181", flow="kit-reminder")
    with pytest.raises(
        KitFailure, match=r"placed a call to \+19995550000; calls in the sandbox: \+12025550181"
    ):
        voice_call.expect_call(to="+19995550000")
    call = voice_call.expect_call(to="+12025550181")
    call.expect_heard("Reminder")


def test_a_gather_on_the_agents_leg_waits_for_the_agent(voice_call):
    call = voice_call.dial(SCREENED, from_=CALLER)
    agent = call.expect_transfer_to(SCREENER)
    agent.expect_heard("Press 1 to accept the call.")
    # The caller's expectation does not run the agent's Gather out: it stops, failing.
    with pytest.raises(KitFailure) as failure:
        call.expect_heard("Accepted.")
    assert "waiting for input on another leg" in str(failure.value)
    agent.press("1")
    agent.expect_heard("Accepted.")
    assert [c.event_type for c in agent.callbacks] == ["transferAnswer", "gather"]
    assert agent.callbacks[1].payload["digits"] == "1"


def test_two_callers_bridged(voice_call):
    first = voice_call.dial(MEET, from_=CALLER)
    first.expect_heard("Please wait for the other party.")
    second = voice_call.dial(MEET, from_="+12025550112")
    second.expect_heard("Connecting you.")
    second.expect_bridge(first.call_id)
    second.hang_up()  # the bridging call leaves: the target, without bridgeTargetCompleteUrl,
    first.expect_ended("hangup")  # is hung up
    assert second.disconnect_cause == "hangup"


def test_a_suite_may_place_calls_faster_than_bandwidths_account_limits(voice_call):
    """Account limits count real seconds; on the manual clock they are off by default, so
    many quick calls (and their transfers' legs) all go through."""
    for _ in range(8):
        call = voice_call.dial(IVR_NUMBER, from_=CALLER)
        call.press("2")
        call.press("1234")
        agent = call.expect_transfer_to(SUPPORT)
        agent.hang_up()
        call.hang_up()
        call.expect_ended()


@pytest.fixture
def limited_app_config(voice_app_config):
    return {**voice_app_config, "SANDBOX_CALLS_PER_SECOND": 1}


def test_a_test_can_turn_the_account_limits_on(limited_app_config, voice_app_factory, tmp_path):
    from sandbox.errors import RateLimited
    from sandbox.kit import voice_kit

    with voice_kit(limited_app_config, directory=tmp_path, factory=voice_app_factory) as kit:
        first = kit.dial(IVR_NUMBER, from_=CALLER)
        with pytest.raises(RateLimited, match="rate limit"):
            kit.dial(IVR_NUMBER, from_=CALLER)
        first.hang_up()
