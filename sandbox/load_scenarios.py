"""The kinds of call ``python -m sandbox load`` places, and the mixes it runs.

A ``Scenario`` sets itself up once (callee scripts, Voice applications) and places one
instance: the A-leg call ids it started (``calls`` of them; a conference would start
several).  A mix cycles through its scenarios call by call.  Adding a scenario means adding
one here and naming it in a mix.

- ``outbound-ivr``: a call placed to the app's ``answerUrl``; the callee presses ``9`` at
  the demo IVR's menu (not a choice: goodbye and hang up).
- ``inbound-ivr``: a caller dials the demo IVR (``initiate``), presses 2 (support), then an
  order number, and is transferred to the agent, who talks for ``SANDBOX_BRIDGE_SECONDS``:
  ``initiate``, 2 x ``gather``, ``transferAnswer``, ``transferDisconnect``,
  ``transferComplete``, ``disconnect``.
- ``recorded``: a call placed from the voicemail flow's number (``examples.voicemail``,
  which the app must load: ``VOICE_FLOWS=examples.ivr,examples.voicemail``); the callee
  speaks 2 s into a transcribed Record: ``answer``, ``recordComplete``,
  ``recordingAvailable``, ``transcriptionAvailable``, ``disconnect``.
- ``conference``: three calls at once from the example conference line's number
  (``examples.conference``, which the app must load too), one room each
  (``sandbox.load_conference``): each member's ``answer``, ``conferenceMemberJoin``,
  ``conferenceMemberExit``, ``disconnect``, and the conference's ``conferenceCreated``,
  ``conferenceCompleted``, ``conferenceRecordingAvailable``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox import load_conference
from sandbox.core import Sandbox

API_URL = "http://sandbox/api/v2"
IVR_NUMBER = "+12025550123"
CALLEE = "+12025550123"  # the callee of outbound-ivr
FROM = "+12025550100"
CALLER = "+12025550177"  # the caller of inbound-ivr
VOICEMAIL_NUMBER = "+12025550166"  # examples.voicemail's number
MESSAGE_LEAVER = "+12025550178"  # the callee of recorded
LOAD_APPLICATION = "load-application"


@dataclass(frozen=True)
class Target:
    """The app under load: its base URL and the credentials its callback routes want."""

    app_url: str
    callback_user: str | None = None
    callback_password: str | None = None
    digits: str = "9"

    def url(self, path: str) -> str:
        return self.app_url.rstrip("/") + path

    def credentials(self) -> dict[str, str]:
        if self.callback_user and self.callback_password:
            return {"username": self.callback_user, "password": self.callback_password}
        return {}


@dataclass(frozen=True)
class Scenario:
    name: str
    setup: Callable[[Sandbox, Target], None]
    place: Callable[[Sandbox, Target, int], list[str]]
    calls: int = 1  # A-legs one instance starts


def _outbound(sandbox: Sandbox, target: Target, number: int, **body: Any) -> str:
    request = {
        "to": CALLEE,
        "from": FROM,
        "applicationId": "load-test",
        "answerUrl": target.url("/callbacks/answer"),
        "disconnectUrl": target.url("/callbacks/disconnect"),
        "tag": f"load-{number}",
        **target.credentials(),
        **body,
    }
    created = sandbox.create_call(sandbox.settings.account_id, request, API_URL)
    return str(created["callId"])


def _setup_outbound_ivr(sandbox: Sandbox, target: Target) -> None:
    sandbox.script(CALLEE, {"gatherDigits": [target.digits]})


def _setup_inbound_ivr(sandbox: Sandbox, target: Target) -> None:
    config: dict[str, Any] = {
        "callInitiatedCallbackUrl": target.url("/callbacks/initiate"),
        "callStatusCallbackUrl": target.url("/callbacks/disconnect"),
        "numbers": [IVR_NUMBER],
    }
    if target.callback_user and target.callback_password:
        config["callbackCreds"] = {
            "userId": target.callback_user,
            "password": target.callback_password,
        }
    sandbox.set_application(LOAD_APPLICATION, config)
    sandbox.script(CALLER, {"gatherDigits": ["2", "1234"]})


def _dial_in(sandbox: Sandbox, target: Target, number: int) -> list[str]:
    created = sandbox.dial_in({"to": IVR_NUMBER, "from": CALLER}, API_URL)
    return [str(created["callId"])]


def _setup_recorded(sandbox: Sandbox, target: Target) -> None:
    sandbox.script(MESSAGE_LEAVER, {"recordSeconds": 2, "transcript": "Call me back, please."})


SCENARIOS: dict[str, Scenario] = {
    "outbound-ivr": Scenario(
        "outbound-ivr",
        _setup_outbound_ivr,
        lambda sandbox, target, n: [_outbound(sandbox, target, n)],
    ),
    "inbound-ivr": Scenario("inbound-ivr", _setup_inbound_ivr, _dial_in),
    "recorded": Scenario(
        "recorded",
        _setup_recorded,
        lambda sandbox, target, n: [
            _outbound(sandbox, target, n, to=MESSAGE_LEAVER, **{"from": VOICEMAIL_NUMBER})
        ],
    ),
    "conference": Scenario(
        "conference",
        load_conference.setup,
        load_conference.place_conference,
        calls=len(load_conference.MEMBERS),
    ),
}

MIXES: dict[str, list[str]] = {
    "ivr": ["outbound-ivr"],
    "conference": ["conference"],
    "mixed": ["inbound-ivr", "conference", "recorded", "outbound-ivr"],
}


def mix(name: str) -> list[Scenario]:
    """The scenarios of mix ``name``, in the order calls cycle through them."""
    if name not in MIXES:
        raise ValueError(f"unknown scenario {name!r}: one of {', '.join(MIXES)}")
    return [SCENARIOS[each] for each in MIXES[name]]
