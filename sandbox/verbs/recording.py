"""StartRecording, PauseRecording, ResumeRecording, StopRecording: a background recording
while the document goes on (instant verbs).

- StartRecording starts one (a second one while it runs is ignored, and noted); its
  ``recordingAvailableUrl``, ``transcribe``, ``transcriptionAvailableUrl``, credentials,
  ``fileFormat`` and ``multiChannel`` (2 channels) are kept.
- PauseRecording/ResumeRecording (and Update Call Recording State) leave the paused time out.
- StopRecording, or the end of the call, ends it: the recording is stored, then
  ``recordingAvailable`` and, when transcribed, ``transcriptionAvailable`` (the callee
  script's ``transcript``) are sent, as for Record.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import bxml
from sandbox import recorder
from sandbox.payloads import iso, iso_duration, new_recording_id
from sandbox.verbs.record import make_available, store

if TYPE_CHECKING:
    from sandbox.call import Call
    from sandbox.execution import Document
    from sandbox.payloads import Leg

KEPT = (
    "recordingAvailableUrl",
    "recordingAvailableMethod",
    "transcribe",
    "transcriptionAvailableUrl",
    "transcriptionAvailableMethod",
    "username",
    "password",
    "recordingName",
)


def start_recording(call: Call, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
    attrs = verb.attrs
    recording_id = new_recording_id()
    started = recorder.start(
        call.program,
        call.clock,
        time.time(),
        recordingId=recording_id,
        callId=leg.call_id,
        base=base,
        fileFormat=str(attrs.get("fileFormat", "wav")),
        channels=2 if str(attrs.get("multiChannel", "false")).lower() == "true" else 1,
        attrs={key: str(attrs[key]) for key in KEPT if key in attrs},
    )
    call.note(
        f"StartRecording: {recording_id}"
        if started
        else "StartRecording ignored: a recording is already running"
    )
    return None


def pause_recording(call: Call, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
    if not recorder.pause(call.program, call.clock):
        call.note("PauseRecording: no recording running; nothing to do")
    return None


def resume_recording(call: Call, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
    if not recorder.resume(call.program, call.clock):
        call.note("ResumeRecording: no paused recording; nothing to do")
    return None


def stop_recording(call: Call, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
    if recorder.active(call.program) is None:
        call.note("StopRecording: no recording running; nothing to do")
        return None
    finish(call)
    return None


def finish(call: Call) -> None:
    """End the running background recording (if any) and make it available."""
    ended = recorder.stop(call.program, call.clock, time.time())
    if ended is None:
        return
    leg = call.leg_by_id(ended["callId"]) or call.leg
    recording_id = ended["recordingId"]
    result: dict[str, Any] = {
        "recordingId": recording_id,
        "mediaUrl": f"{leg.call_url}/recordings/{recording_id}/media",
        "startTime": iso(ended["started"]),
        "endTime": iso(ended["ended"]),
        "duration": iso_duration(ended["seconds"]),
        "fileFormat": ended["fileFormat"],
        "channels": ended["channels"],
    }
    call.note(f"StopRecording: {result['duration']} ({recording_id})")
    attrs = ended["attrs"]
    store(call, leg, result, attrs, ended["started"])
    make_available(call, leg, result, attrs, ended["base"], call.script_of(leg).transcript)


UNITS = {
    "StartRecording": start_recording,
    "PauseRecording": pause_recording,
    "ResumeRecording": resume_recording,
    "StopRecording": stop_recording,
}
