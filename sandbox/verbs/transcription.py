"""StartTranscription, StopTranscription: real-time transcription while the document goes
on (instant verbs).

Each transcription (``name``, default its id; unique per call; at most 4 track
transcriptions per call, ``both`` counting 2) collects, per track, what was said: the
``inbound`` track (the callee) hears the callee script's ``transcript``, the ``outbound``
track (the call) the SpeakSentence texts played while it runs.  StopTranscription (one
``name``, or all) or the end of the call ends it: it is stored for the API
(``.../calls/{callId}/transcriptions``) and ``realTimeTranscriptionAvailable`` goes to
``transcriptionEventUrl``.  The sandbox does not open the ``destination`` WebSocket, so
``realTimeTranscriptionStarted``/``Stopped``, which need one, are not sent (noted).
A duplicate name or a fifth track is ignored (noted).
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import bxml
from sandbox.catalog import Catalog
from sandbox.delivery import Hook
from sandbox.payloads import iso

if TYPE_CHECKING:
    from sandbox.call import Call
    from sandbox.execution import Document
    from sandbox.payloads import Leg

KEY = "transcriptions"
TRACK_LIMIT = 4
CONFIDENCE = 0.9


def _tracks(value: str) -> list[str]:
    return ["inbound", "outbound"] if value == "both" else [value]


def start_transcription(call: Call, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
    attrs = verb.attrs
    running: dict[str, dict[str, Any]] = call.program.setdefault(KEY, {})
    transcription_id = f"t-{uuid.uuid4()}"
    name = str(attrs.get("name") or transcription_id)
    tracks = _tracks(str(attrs.get("tracks") or "inbound"))
    if name in running:
        call.note(f"StartTranscription ignored: a transcription named {name!r} is running")
        return None
    if sum(len(item["tracks"]) for item in running.values()) + len(tracks) > TRACK_LIMIT:
        call.note(f"StartTranscription ignored: more than {TRACK_LIMIT} tracks")
        return None
    hook = None
    if "transcriptionEventUrl" in attrs:
        hook = Hook(
            url=urljoin(base, str(attrs["transcriptionEventUrl"])),
            method=str(attrs.get("transcriptionEventMethod") or "POST"),
            username=attrs.get("username"),
            password=attrs.get("password"),
        ).__dict__
    running[name] = {
        "id": transcription_id,
        "name": name,
        "tracks": tracks,
        "started": time.time(),
        "callId": leg.call_id,
        "hook": hook,
        "spoken": [],
    }
    call.note(f"StartTranscription {name!r}: {', '.join(tracks)}")
    if attrs.get("destination"):
        call.note("StartTranscription: the sandbox does not connect to destination WebSockets")
    return None


def heard(call: Call, text: str) -> None:
    """The call played ``text`` (SpeakSentence): the outbound tracks running hear it."""
    for item in (call.program.get(KEY) or {}).values():
        if "outbound" in item["tracks"]:
            item["spoken"].append(text)


def stop_transcription(call: Call, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
    name = verb.attrs.get("name")
    running = call.program.get(KEY) or {}
    names = [str(name)] if name else list(running)
    if not any(n in running for n in names):
        call.note("StopTranscription: no such transcription running; nothing to do")
    for each in names:
        if each in running:
            _finish(call, running.pop(each))
    return None


def finish_all(call: Call) -> None:
    """End every transcription still running (the call ends)."""
    running = call.program.pop(KEY, None) or {}
    for item in running.values():
        _finish(call, item)


def _finish(call: Call, item: dict[str, Any]) -> None:
    leg = call.leg_by_id(item["callId"]) or call.leg
    script = call.script_of(leg)
    said = {"inbound": script.transcript or "", "outbound": " ".join(item["spoken"])}
    tracks = [
        {
            "detectedLanguage": "en-US",
            "track": track,
            "transcript": said[track],
            "confidence": CONFIDENCE,
        }
        for track in item["tracks"]
    ]
    Catalog(call.db).add_transcription(
        item["id"], leg.call_id, leg.account_id, {"name": item["name"], "tracks": tracks}
    )
    call.note(f"StopTranscription {item['name']!r}")
    if item["hook"] is None:
        return
    details = {
        "id": item["id"],
        "name": item["name"],
        "startTime": iso(item["started"]),
        "tracks": item["tracks"],
        "status": "available",
        "url": f"{leg.call_url}/transcriptions/{item['id']}",
        "completedTime": iso(time.time()),
    }
    call.async_callback(
        leg, Hook(**item["hook"]), "realTimeTranscriptionAvailable", realTimeTranscription=details
    )


UNITS = {
    "StartTranscription": start_transcription,
    "StopTranscription": stop_transcription,
}
