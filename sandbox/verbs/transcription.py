"""StartTranscription, StopTranscription: real-time transcription while the document goes
on (instant verbs).

Each transcription (``name``, default its id; unique per call; at most 4 track
transcriptions per call, ``both`` counting 2) collects, per track, what was said: the
``inbound`` track (the callee) hears the callee script's ``transcript``, the ``outbound``
track (the call) the SpeakSentence texts played while it runs.  StopTranscription (one
``name``, or all) or the end of the call ends it: it is stored for the API
(``.../calls/{callId}/transcriptions``) and ``realTimeTranscriptionAvailable`` goes to
``transcriptionEventUrl``.

With a ``destination``, the sandbox opens a real WebSocket to it (as for StartStream) and
sends ``start`` (``metadata``: ``accountId``, ``callId``, ``realTimeTranscriptionId``,
``transcriptionName``, ``tracks``, ``stabilized``; the ``CustomParam`` values as
``customParams``), one final ``transcription`` message per phrase (the callee script's
``transcript`` one sentence at a time on ``inbound`` at the start, each SpeakSentence on
``outbound`` as it plays; words as ``items``) and ``stop``.  With both a ``destination``
and a ``transcriptionEventUrl``: ``realTimeTranscriptionStarted`` once connected,
``realTimeTranscriptionRejected`` (``cause`` ``connection-error``, ``duplicate`` with
``originalTranscription``, or ``track-limit``) instead, and ``realTimeTranscriptionStopped``
(``cause: closed``, or ``connection-error`` when the app's side broke the connection)
before ``realTimeTranscriptionAvailable``.  Without both, a duplicate name or a fifth
track is only ignored (noted).  The events carry the transcription as
``realTimeTranscription``.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import bxml
from sandbox.catalog import Catalog
from sandbox.delivery import Hook
from sandbox.payloads import iso
from sandbox.verbs.stream import send_event
from sandbox.websocket import Socket, check_destination

if TYPE_CHECKING:
    from sandbox.call import Call
    from sandbox.execution import Document
    from sandbox.payloads import Leg

KEY = "transcriptions"
SOCKET = "transcription:"  # the key prefix of transcriptions' sockets in ``call.streams``
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
    hook = None
    if "transcriptionEventUrl" in attrs:
        hook = Hook(
            url=urljoin(base, str(attrs["transcriptionEventUrl"])),
            method=str(attrs.get("transcriptionEventMethod") or "POST"),
            username=attrs.get("username"),
            password=attrs.get("password"),
        ).__dict__
    destination = str(attrs["destination"]) if attrs.get("destination") else None
    item: dict[str, Any] = {
        "id": transcription_id,
        "name": name,
        "tracks": tracks,
        "started": time.time(),
        "startClock": call.clock,
        "callId": leg.call_id,
        "hook": hook,
        "spoken": [],
        "destination": destination,
        "stabilized": str(attrs.get("stabilized", "true")).lower() != "false",
    }
    rejected = None
    if name in running:
        rejected = ("duplicate", f"A transcription with the name {name} already exists")
    elif sum(len(each["tracks"]) for each in running.values()) + len(tracks) > TRACK_LIMIT:
        rejected = ("track-limit", f"A call may transcribe at most {TRACK_LIMIT} tracks")
    elif destination is not None:
        problem = check_destination(call.driver.deliverer.policy, destination)
        socket = Socket(
            destination,
            username=attrs.get("destinationUsername"),
            password=attrs.get("destinationPassword"),
        )
        problem = problem or socket.open(min(10.0, call.timeout))
        if problem is not None:
            rejected = ("connection-error", problem)
    if rejected is not None:
        cause, message = rejected
        call.note(f"StartTranscription {name!r} ignored: {cause} ({message})")
        if destination is not None and hook is not None:
            extra = {}
            if cause == "duplicate":
                extra["originalTranscription"] = _description(running[name])
            send_event(
                call,
                leg,
                hook,
                "realTimeTranscriptionRejected",
                cause=cause,
                errorMessage=message,
                realTimeTranscription=_description(item),
                **extra,
            )
        return None
    running[name] = item
    call.note(f"StartTranscription {name!r}: {', '.join(tracks)}")
    if destination is None:
        return None
    call.streams[SOCKET + name] = socket
    metadata = {
        "accountId": leg.account_id,
        "callId": leg.call_id,
        "realTimeTranscriptionId": transcription_id,
        "transcriptionName": name,
        "tracks": [{"name": track} for track in tracks],
        "stabilized": item["stabilized"],
    }
    params = {
        str(child.attrs.get("name")): str(child.attrs.get("value", "")) for child in verb.children
    }
    socket.send({"eventType": "start", "metadata": metadata, "customParams": params})
    item["metadata"] = metadata
    if hook is not None:
        send_event(
            call,
            leg,
            hook,
            "realTimeTranscriptionStarted",
            realTimeTranscription=_description(item),
        )
    if "inbound" in tracks:
        for sentence in re.findall(r"[^.!?]+[.!?]*", call.script_of(leg).transcript or ""):
            if sentence.strip():
                _say(socket, "inbound", sentence.strip())
    return None


def _description(item: dict[str, Any]) -> dict[str, Any]:
    described: dict[str, Any] = {
        "id": item["id"],
        "name": item["name"],
        "startTime": iso(item["started"]),
        "tracks": item["tracks"],
    }
    if item.get("destination"):
        described["destination"] = item["destination"]
        described["stabilized"] = "true" if item["stabilized"] else "false"
    return described


def _say(socket: Socket, track: str, text: str) -> None:
    """One final ``transcription`` message: ``text`` on ``track``, word by word."""
    now = time.time()
    words = re.findall(r"[\w'-]+|[^\w\s]", text)
    items = [
        {
            "content": word,
            "startTime": iso(now),
            "endTime": iso(now),
            "confidence": CONFIDENCE,
            "stable": True,
            "type": "PRONUNCIATION" if word[0].isalnum() else "PUNCTUATION",
        }
        for word in words
    ]
    socket.send(
        {
            "eventType": "transcription",
            "track": track,
            "startTime": iso(now),
            "endTime": iso(now),
            "isPartial": False,
            "language": "en-US",
            "transcript": text,
            "items": items,
        }
    )


def heard(call: Call, text: str) -> None:
    """The call played ``text`` (SpeakSentence): the outbound tracks running hear it."""
    for item in (call.program.get(KEY) or {}).values():
        if "outbound" in item["tracks"]:
            item["spoken"].append(text)
            socket = call.streams.get(SOCKET + item["name"])
            if socket is not None:
                _say(socket, "outbound", text)


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
    _close(call, leg, item)
    if item["hook"] is None:
        return
    details = {
        **_description(item),
        "status": "available",
        "url": f"{leg.call_url}/transcriptions/{item['id']}",
        "completedTime": iso(time.time()),
    }
    call.async_callback(
        leg, Hook(**item["hook"]), "realTimeTranscriptionAvailable", realTimeTranscription=details
    )


def _close(call: Call, leg: Leg, item: dict[str, Any]) -> None:
    """``stop`` and a normal close on the destination socket, then the Stopped event."""
    if not item.get("destination"):
        return
    socket = call.streams.pop(SOCKET + item["name"], None)
    if socket is not None and socket.send({"eventType": "stop", "metadata": item["metadata"]}):
        socket.close(1000, "transcription stopped")
        cause, message = "closed", None
    else:
        message = (socket.ended if socket is not None else None) or (
            "the transcription's connection was lost"
        )
        cause = "connection-error"
        call.note(f"transcription {item['name']!r}: {message}")
    if item["hook"] is not None:
        seconds = max(0.0, call.clock - float(item.get("startClock") or 0.0))
        send_event(
            call,
            leg,
            item["hook"],
            "realTimeTranscriptionStopped",
            cause=cause,
            errorMessage=message,
            realTimeTranscription={**_description(item), "duration": f"PT{seconds:.3f}S"},
        )


UNITS = {
    "StartTranscription": start_transcription,
    "StopTranscription": stop_transcription,
}
