"""Record: the callee speaks for its script's ``recordSeconds`` (``SANDBOX_RECORD_SECONDS``),
capped by ``maxDuration`` (and ``silenceTimeout`` after the speech); a terminating digit
(``#`` by default) ends it early.

Callbacks, in order: ``recordComplete`` to ``recordCompleteUrl`` (its reply replaces the
document; not sent when the call ended during the recording), ``recordingAvailable`` to
``recordingAvailableUrl``, and with ``transcribe="true"`` ``transcriptionAvailable`` to
``transcriptionAvailableUrl`` carrying the callee script's ``transcript``.

The recording is stored (Recordings API) with status ``processing`` when it ends, so its
media (generated, ``sandbox.media``) is downloadable once it is ``complete``, just before
``recordingAvailable``.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import bxml
from callbacks.payload import readable_duration
from sandbox import heard
from sandbox.catalog import Catalog
from sandbox.delivery import Hook
from sandbox.execution import SPOKE, CallEnded
from sandbox.payloads import iso, iso_duration, new_recording_id

if TYPE_CHECKING:
    from sandbox.call import Call
    from sandbox.execution import Document
    from sandbox.payloads import Leg

DEFAULT_TRANSCRIPT = "This is a sandbox recording."
CONFIDENCE = 0.9


def record(call: Call, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
    attrs = verb.attrs
    settings = call.settings
    terminators = str(attrs.get("terminatingDigits", "#"))
    max_duration = float(attrs.get("maxDuration", 60))  # type: ignore[arg-type]
    silence = float(attrs.get("silenceTimeout", 0))  # type: ignore[arg-type]
    script = call.script_of(leg)
    speech = settings.record_seconds if script.record_seconds is None else script.record_seconds
    limit = min(max_duration, speech + silence) if silence > 0 else max_duration
    started = time.time()
    mark = call.timeline()
    recording_id = new_recording_id()
    fields = {
        "recordingId": recording_id,
        "mediaUrl": f"{leg.call_url}/recordings/{recording_id}/media",
    }

    def recorded() -> dict[str, Any]:
        simulated = call.simulated_since(mark) if settings.time_scale else limit
        return {
            **fields,
            "startTime": iso(started),
            "endTime": iso(time.time()),
            "duration": iso_duration(min(simulated, limit)),
            "fileFormat": str(attrs.get("fileFormat", "wav")),
            "channels": 1,
        }

    call.gathering = leg.call_id
    try:
        deadline = call.deadline(limit)
        while True:
            pressed = call.wait_until(deadline, digits=True, speech=True)
            if not pressed or pressed is SPOKE or any(d in terminators for d in pressed):
                break
    except CallEnded:
        # The recording still becomes available (and transcribed); no recordComplete.
        result = recorded()
        store(call, leg, result, attrs, started)
        make_available(call, leg, result, attrs, base, said(call, leg, script.transcript))
        raise
    finally:
        call.gathering = None
    result = recorded()
    call.note(f"Record: {result['duration']} ({recording_id})")
    store(call, leg, result, attrs, started)
    replacement = None
    if "recordCompleteUrl" in attrs:
        replacement = call.bxml_callback(
            leg, call.hook(attrs, base, "recordComplete"), "recordComplete", result
        )
    make_available(call, leg, result, attrs, base, said(call, leg, script.transcript))
    return replacement


def said(call: Call, leg: Leg, scripted: str | None) -> str | None:
    """What the callee said into the recording: a phrase said during it (control API
    ``speech``, the kit's ``say``), else the script's ``transcript``."""
    spoken = call.program.get("spoken") or {}
    return spoken.pop(leg.call_id, None) or scripted


def store(call: Call, leg: Leg, result: dict[str, Any], attrs: dict, started: float) -> None:
    """Keep a finished recording's metadata for the Recordings API (status ``processing``)."""
    meta = {
        "applicationId": leg.application_id,
        "accountId": leg.account_id,
        "callId": leg.call_id,
        "parentCallId": leg.parent_call_id,
        "recordingId": result["recordingId"],
        "to": leg.to,
        "from": leg.from_,
        "transferCallerId": leg.transfer_caller_id,
        "transferTo": leg.transfer_to,
        "duration": result["duration"],
        "direction": leg.direction,
        "channels": result["channels"],
        "startTime": result["startTime"],
        "endTime": result["endTime"],
        "fileFormat": result["fileFormat"],
        "mediaUrl": result["mediaUrl"],
        "recordingName": attrs.get("recordingName"),
    }
    Catalog(call.db).add_recording({k: v for k, v in meta.items() if v is not None}, started)


def _hook(attrs: dict[str, Any], base: str, prefix: str) -> Hook | None:
    """An asynchronous callback's URL (no fallback), with the verb's credentials."""
    if f"{prefix}Url" not in attrs:
        return None
    return Hook(
        url=urljoin(base, str(attrs[f"{prefix}Url"])),
        method=str(attrs.get(f"{prefix}Method") or "POST"),
        username=attrs.get("username"),
        password=attrs.get("password"),
    )


def make_available(
    call: Call,
    leg: Leg,
    result: dict[str, Any],
    attrs: dict[str, Any],
    base: str,
    transcript: str | None,
) -> None:
    if not call.program.pop(f"spoke:{leg.call_id}", None):
        heard.add(
            call, leg, "said", transcript or f"(speech for {readable_duration(result['duration'])})"
        )
    catalog = Catalog(call.db)
    recording_id = result["recordingId"]
    catalog.set_recording(recording_id, status="complete")
    available = _hook(attrs, base, "recordingAvailable")
    if available is not None:
        call.async_callback(leg, available, "recordingAvailable", **result, status="complete")
    if str(attrs.get("transcribe", "false")).lower() != "true":
        return
    text = DEFAULT_TRANSCRIPT if transcript is None else transcript
    transcription = {
        "id": f"t-{uuid.uuid4()}",
        "url": result["mediaUrl"].removesuffix("/media") + "/transcription",
        "status": "available",
        "completedTime": iso(time.time()),
        "transcripts": [{"speaker": 0, "text": text, "confidence": CONFIDENCE}],
    }
    catalog.set_recording(recording_id, transcription=transcription)
    call.note(f"Record: transcribed {text!r}")
    hook = _hook(attrs, base, "transcriptionAvailable")
    if hook is None:
        return
    # The spec's transcription object is {speaker, text, confidence}; Bandwidth's docs show
    # {id, url, status, completedTime}.  Both sets are sent, so either reading works.
    shown = {k: v for k, v in transcription.items() if k != "transcripts"}
    shown.update(transcription["transcripts"][0])
    fields = {k: v for k, v in result.items() if k != "channels"}
    call.async_callback(leg, hook, "transcriptionAvailable", **fields, transcription=shown)


UNITS = {"Record": record}
